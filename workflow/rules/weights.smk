# Pretrained weights. Paper profile: downloaded. `spcreid fetch-weights` verifies the sha256 and skips a file that is
# already there, e.g. after `dvc pull`; consumers wrap these paths in ancient() for the same reason. A profile with a
# local_weights folder (params.yaml) takes each file from there instead, pinned to the sha256 its SHA256SUMS lists.


rule fetch_weights:
    input:
        unpack(lambda wildcards: local_weight_input(wildcards.name)),
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
        source=local_weights_args(),
    shell:
        "spcreid fetch-weights --name {wildcards.name:q} --dest {output:q} {params.source:q} > {log:q} 2>&1"


rule fetch_pise_checkpoint:
    # PISE's loader wants a folder holding latest_net_G.pth.
    input:
        unpack(lambda wildcards: local_weight_input("pise-texture")),
    output:
        f"{DATA}/weights/pise-texture/latest_net_G.pth",
    log:
        log_path("fetch_weights/pise-texture"),
    benchmark:
        bench_path("fetch_weights/pise-texture")
    container:
        MAIN_IMAGE
    params:
        source=local_weights_args("pise-texture"),
    shell:
        "spcreid fetch-weights --name pise-texture --dest {output:q} {params.source:q} > {log:q} 2>&1"


# Embedded profile: the ImageNet stand-in is trained here (docs/METHOD.md, "Embedded profile: pretrained start").
# A third toy set, generated with the profile's toy settings (two outfits per person, see Plan.pretrain_toy_flags)
# but its own seed, so that no person of it is ever evaluated; `spcreid pretrain-backbone` trains train.arch on it
# with outfit labels and writes the trunk to train.pretrained (per_seed_inputs: one per run seed, pretrained with
# that seed), which every train job then loads.
if PRETRAIN:

    use rule make_toy_data as make_pretrain_toy_data with:
        output:
            directory(PLAN.pretrain_toy),
        log:
            log_path("make_toy_data/pretrain"),
        benchmark:
            bench_path("make_toy_data/pretrain")
        params:
            seed=PRETRAIN["toy_seed"],
            toy=lambda wildcards: PLAN.pretrain_toy_flags(),

    rule pretrain_backbone:
        input:
            PLAN.pretrain_toy,
        output:
            PLAN.trunk,
        log:
            log_path(f"pretrain_backbone{PLAN.trunk_part}"),
        benchmark:
            bench_path(f"pretrain_backbone{PLAN.trunk_part}")
        container:
            MAIN_IMAGE
        # Every train job waits for this one (with per-seed trunks, for its seed's): it asks for both cores. The
        # torch thread count is a fixed parameter, not {threads}: kernels sum in another order with another thread
        # count, and Snakemake scales {threads} down to --cores, so `--cores 1` made another trunk than `--cores 2`.
        threads: 2
        params:
            torch_threads=2,
            arch=PROFILE["train"]["arch"],
            height=PROFILE["train"]["height"],
            width=PROFILE["train"]["width"],
            epochs=PRETRAIN["epochs"],
            seed=lambda wildcards: PLAN.pretrain_seed(getattr(wildcards, "trunk_seed", None)),
        shell:
            "spcreid pretrain-backbone --data {input:q} --arch {params.arch:q} --height {params.height:q}"
            " --width {params.width:q} --epochs {params.epochs:q} --seed {params.seed:q} --threads {params.torch_threads:q}"
            " --out {output:q} --quiet > {log:q} 2>&1"
