# Pretrained weights. Paper profile: downloaded. `spcreid fetch-weights` verifies the sha256 and skips a file that is
# already there, e.g. after `dvc pull`; consumers wrap these paths in ancient() for the same reason.


rule fetch_weights:
    output:
        f"{DATA}/weights/{{name}}.pth",
    log:
        log_path("fetch_weights/{name}"),
    benchmark:
        bench_path("fetch_weights/{name}")
    wildcard_constraints:
        name=one_of(WEIGHT_NAMES),
    container:
        MAIN_IMAGE
    params:
        source=lambda wildcards: local_weights_args(wildcards.name),
    shell:
        "spcreid fetch-weights --name {wildcards.name:q} --dest {output:q} {params.source:q} > {log:q} 2>&1"


rule fetch_pise_checkpoint:
    # PISE's loader wants a folder holding latest_net_G.pth.
    output:
        f"{DATA}/weights/pise-texture/latest_net_G.pth",
    log:
        log_path("fetch_weights/pise-texture"),
    benchmark:
        bench_path("fetch_weights/pise-texture")
    container:
        MAIN_IMAGE
    params:
        source=lambda wildcards: local_weights_args("pise-texture"),
    shell:
        "spcreid fetch-weights --name pise-texture --dest {output:q} {params.source:q} > {log:q} 2>&1"


# Embedded profile: the ImageNet stand-in is trained here (docs/METHOD.md, "Embedded profile: pretrained start").
# A third toy set, generated with the profile's toy settings (two outfits per person, see pretrain_toy_args) but
# its own seed, so that no person of it is ever evaluated; `spcreid pretrain-backbone` trains train.arch on it with
# outfit labels and writes the trunk to train.pretrained, which every train job then loads.
PRETRAIN = PROFILE.get("pretrain")
PRETRAIN_TOY = f"{DATA}/toy/pretrain"

if PRETRAIN:
    if not PROFILE["train"].get("pretrained"):
        raise WorkflowError(
            f"{PARAMS_FILE}: profiles.{PROFILE_NAME}.pretrain is set but train.pretrained is null; "
            "set train.pretrained to the weights file to write (e.g. data/<profile>/weights/toy-pretrained.pth)"
        )
    _seed_clash = sorted(key for key in TOY_KEYS if DATASETS[key]["toy_seed"] == PRETRAIN["toy_seed"])
    if _seed_clash or "pretrain" in DATASETS:
        raise WorkflowError(
            f"{PARAMS_FILE}: profiles.{PROFILE_NAME}.pretrain.toy_seed {PRETRAIN['toy_seed']} must differ from the "
            f"toy_seed of every dataset (clash: {_seed_clash or ['dataset key pretrain']}): the pretraining people "
            "must never be evaluated"
        )

    # per_seed_inputs: one trunk per run seed, pretrained with that seed (pretrain.seed is then unused).
    TRUNK_PART = "-seed{trunk_seed}" if PER_SEED_INPUTS else ""
    TRUNK = (
        seeded_path(PROFILE["train"]["pretrained"], "{trunk_seed}")
        if PER_SEED_INPUTS
        else PROFILE["train"]["pretrained"]
    )

    rule make_pretrain_toy_data:
        output:
            directory(PRETRAIN_TOY),
        log:
            log_path("make_toy_data/pretrain"),
        benchmark:
            bench_path("make_toy_data/pretrain")
        container:
            MAIN_IMAGE
        params:
            seed=PRETRAIN["toy_seed"],
            toy=pretrain_toy_args,
        shell:
            "spcreid make-toy-data --out {output:q} --seed {params.seed:q} {params.toy:q} --quiet > {log:q} 2>&1"

    rule pretrain_backbone:
        input:
            PRETRAIN_TOY,
        output:
            TRUNK,
        log:
            log_path(f"pretrain_backbone{TRUNK_PART}"),
        benchmark:
            bench_path(f"pretrain_backbone{TRUNK_PART}")
        container:
            MAIN_IMAGE
        # Every train job waits for this one (with per-seed trunks, for its seed's): it gets both cores.
        threads: 2
        params:
            arch=PROFILE["train"]["arch"],
            height=PROFILE["train"]["height"],
            width=PROFILE["train"]["width"],
            epochs=PRETRAIN["epochs"],
            seed=lambda wildcards: int(wildcards.trunk_seed) if PER_SEED_INPUTS else PRETRAIN["seed"],
        shell:
            "spcreid pretrain-backbone --data {input:q} --arch {params.arch:q} --height {params.height:q}"
            " --width {params.width:q} --epochs {params.epochs:q} --seed {params.seed:q} --threads {threads}"
            " --out {output:q} --quiet > {log:q} 2>&1"
