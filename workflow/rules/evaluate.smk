# Evaluation of every trained model under its dataset's protocol; the per-run JSON files are small and
# committed (results/metrics), so tables can be rebuilt without the models.


rule evaluate:
    input:
        model="work/runs/{key}/{experiment}/seed{seed}/model.pt",
        manifest=MANIFEST,
    output:
        METRICS,
    wildcard_constraints:
        seed=r"\d+",
    params:
        run_dir=lambda wildcards, input: os.path.dirname(input.model),
        protocol=lambda wildcards: DATASETS[wildcards.key]["protocol"],
        gallery_mode=gallery_mode_arg,
    # One thread on CPU: the evaluations of two runs proceed side by side on two cores.
    threads: 8 if ON_GPU else 1
    resources:
        gpu=1 if ON_GPU else 0,
    log:
        "work/logs/evaluate/{key}/{experiment}/seed{seed}.log",
    benchmark:
        "work/benchmarks/evaluate/{key}/{experiment}/seed{seed}.tsv"
    container:
        MAIN_IMAGE
    shell:
        "spcreid evaluate --run {params.run_dir} --manifest {input.manifest} --protocol {params.protocol}"
        " {params.gallery_mode} --threads {threads} --out {output} > {log} 2>&1"
