# Evaluation of every trained model under its dataset's protocol, once: features are extracted once and
# scored in every gallery mode of the protocol (PRCC: multi, single, single-cmc). The per-run JSON files and
# their per-query arrays (.per_query.npz, for paired tests) are small and committed
# (results/<profile>/metrics), so tables can be rebuilt without the models.

PER_QUERY = METRICS.removesuffix(".json") + ".per_query.npz"


rule evaluate:
    input:
        model=f"{RUN_DIR}/model.pt",
        manifest=MANIFEST,
    output:
        metrics=METRICS,
        per_query=PER_QUERY,
    log:
        log_path("evaluate/{key}/{experiment}/seed{seed}"),
    benchmark:
        bench_path("evaluate/{key}/{experiment}/seed{seed}")
    wildcard_constraints:
        seed=r"\d+",
        experiment=one_of(TRAINED_EXPERIMENTS + ["supervised", "pretrained-start"]),
    container:
        MAIN_IMAGE
    # One thread on CPU: the evaluations of two runs proceed side by side on two cores.
    threads: 8 if ON_GPU else 1
    resources:
        gpu=1 if ON_GPU else 0,
    params:
        run_dir=lambda wildcards, input: os.path.dirname(input.model),
        protocol=lambda wildcards: DATASETS[wildcards.key]["protocol"],
        gallery_mode=gallery_mode_arg,
    shell:
        "spcreid evaluate --run {params.run_dir:q} --manifest {input.manifest:q} --protocol {params.protocol:q}"
        " {params.gallery_mode:q} --threads {threads} --out {output.metrics:q} --per-query {output.per_query:q}"
        " > {log:q} 2>&1"


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
        protocol=lambda wildcards: DATASETS[wildcards.key]["protocol"],
        profile=PROFILE_NAME,
    shell:
        "spcreid evaluate-colour-histogram --manifest {input.manifest:q} --protocol {params.protocol:q}"
        " --profile {params.profile:q} --dataset {wildcards.key:q} --out {output.metrics:q} > {log:q} 2>&1"
