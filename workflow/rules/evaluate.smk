# Evaluation of every trained model under its dataset's protocol, once: features are extracted once and
# scored in every gallery mode of the protocol (PRCC: multi, single, single-cmc). The per-run JSON files and
# their per-query arrays (.per_query.npz, for paired tests) are small and committed
# (results/<profile>/metrics), so tables can be rebuilt without the models.


rule evaluate:
    # The seeds of one configuration in one job: they share the test images' decoding and the start-up of torch,
    # which on the embedded profile's CPU are most of an evaluation.
    input:
        models=lambda wildcards: expand(f"{RUN_DIR}/model.pt", **wildcards, seed=SEEDS),
        manifest=MANIFEST,
    output:
        metrics=expand(METRICS, seed=SEEDS, allow_missing=True),
        per_query=expand(PER_QUERY, seed=SEEDS, allow_missing=True),
    log:
        log_path("evaluate/{key}/{experiment}"),
    benchmark:
        bench_path("evaluate/{key}/{experiment}")
    wildcard_constraints:
        key=one_of(DATASETS),
        experiment=one_of(TRAINED_EXPERIMENTS + PER_SEED_REFERENCES),
    container:
        MAIN_IMAGE
    # One thread on CPU: the evaluations of two configurations proceed side by side on two cores.
    threads: 8 if ON_GPU else 1
    resources:
        gpu=1 if ON_GPU else 0,
        mem_mb=16000 if ON_GPU else 8000,
        runtime=60,
    params:
        runs=evaluation_runs_arg,
        protocol=lookup(dpath="{key}/protocol", within=DATASETS),
        # --config gallery_mode=...: one gallery mode for every run instead of the protocol's own.
        gallery_mode=branch(PLAN.gallery_mode, then=["--gallery-mode", PLAN.gallery_mode]),
    shell:
        "spcreid evaluate {params.runs:q} --manifest {input.manifest:q} --protocol {params.protocol:q}"
        " {params.gallery_mode:q} --threads {threads} > {log:q} 2>&1"


# The untrained start is a single deterministic run (seed 0).
use rule evaluate as evaluate_pretrained_start with:
    input:
        models=f"{RUN_DIR}/model.pt",
        manifest=MANIFEST,
    output:
        metrics=METRICS,
        per_query=PER_QUERY,
    log:
        log_path("evaluate/{key}/{experiment}/seed{seed}"),
    benchmark:
        bench_path("evaluate/{key}/{experiment}/seed{seed}")
    wildcard_constraints:
        key=one_of(DATASETS),
        seed="0",
        experiment="pretrained-start",


# The colour-histogram lower bound has no model: its features are the images' colours.
rule evaluate_colour_histogram:
    input:
        manifest=MANIFEST,
    output:
        metrics=METRICS,
        per_query=PER_QUERY,
    log:
        log_path("evaluate/{key}/{experiment}/seed{seed}"),
    benchmark:
        bench_path("evaluate/{key}/{experiment}/seed{seed}")
    wildcard_constraints:
        seed="0",
        experiment="colour-histogram",
    container:
        MAIN_IMAGE
    params:
        protocol=lookup(dpath="{key}/protocol", within=DATASETS),
        profile=PROFILE_NAME,
    shell:
        "spcreid evaluate-colour-histogram --manifest {input.manifest:q} --protocol {params.protocol:q}"
        " --profile {params.profile:q} --dataset {wildcards.key:q} --out {output.metrics:q} > {log:q} 2>&1"
