# One job per distinct (dataset, experiment, seed) of runs(params): a configuration shared by several table
# cells is trained once, and evaluated once, by the evaluate rule (--skip-evaluation). Only the final file is
# an output; checkpoint.pt stays behind when a job is
# interrupted, and the rerun (`--rerun-incomplete`) continues from it.


rule train:
    input:
        manifest=MANIFEST,
        synthesis=synthesis_input,
        pretrained=pretrained_input,
    output:
        model="work/runs/{key}/{experiment}/seed{seed}/model.pt",
    wildcard_constraints:
        seed=r"\d+",
    params:
        params_file=PARAMS_FILE,
        profile=PROFILE_NAME,
        run_dir=lambda wildcards, output: os.path.dirname(output.model),
        synthesis=synthesis_arg,
        resume=resume_flag,
        run_config=run_config_json,
    # CPU: one thread per job, so `--cores 2` trains two runs side by side; small-batch CPU training scales
    # poorly with threads, two single-threaded jobs finish sooner than two jobs sharing both cores.
    threads: 8 if ON_GPU else 1
    resources:
        gpu=1 if ON_GPU else 0,
        mem_mb=32000 if ON_GPU else 4000,
        runtime=24 * 60 if ON_GPU else 60,
    log:
        "work/logs/train/{key}/{experiment}/seed{seed}.log",
    benchmark:
        "work/benchmarks/train/{key}/{experiment}/seed{seed}.tsv"
    container:
        MAIN_IMAGE
    shell:
        "spcreid train --params {params.params_file} --profile {params.profile} --dataset {wildcards.key}"
        " --experiment {wildcards.experiment} --seed {wildcards.seed} --manifest {input.manifest}"
        " {params.synthesis} {params.resume} --skip-evaluation --threads {threads} --out {params.run_dir}"
        " > {log} 2>&1"
