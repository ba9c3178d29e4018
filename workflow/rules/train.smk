# One job per distinct (dataset, experiment, seed) of runs(params): a configuration shared by several table
# cells is trained once, and evaluated once, by the evaluate rule (--skip-evaluation). Only the final file is
# an output; checkpoint.pt stays behind when a job is
# interrupted, and the rerun (`--rerun-incomplete`) continues from it.


rule pack_images:
    # Only with train.pack_images (the embedded profile): every train job of the dataset loads this file in a
    # fraction of a second instead of decoding all train images and copies on its one core.
    input:
        manifest=MANIFEST,
        synthesis=pack_synthesis_input,
    output:
        PACKED,
    log:
        log_path(f"pack_images/{{key}}{SEED_FOLDER}"),
    benchmark:
        bench_path(f"pack_images/{{key}}{SEED_FOLDER}")
    container:
        MAIN_IMAGE
    params:
        copies=pack_copies_arg,
        height=PROFILE["train"]["height"],
        width=PROFILE["train"]["width"],
    shell:
        "spcreid pack-images --manifest {input.manifest:q} {params.copies:q} --height {params.height:q}"
        " --width {params.width:q} --threads 1 --out {output:q} > {log:q} 2>&1"


rule train:
    input:
        manifest=MANIFEST,
        synthesis=branch(uses_synthesis, then=synthesis_index),
        packed=branch(PACK_IMAGES, then=packed_store),
        pretrained=pretrained_input,
    output:
        model=f"{RUN_DIR}/model.pt",
    log:
        log_path("train/{key}/{experiment}/seed{seed}"),
    benchmark:
        bench_path("train/{key}/{experiment}/seed{seed}")
    wildcard_constraints:
        seed=r"\d+",
        experiment=one_of(TRAINED_EXPERIMENTS),
    container:
        MAIN_IMAGE
    # CPU: one thread per job, so `--cores 2` trains two runs side by side; small-batch CPU training scales
    # poorly with threads, two single-threaded jobs finish sooner than two jobs sharing both cores.
    threads: 8 if ON_GPU else 1
    resources:
        gpu=1 if ON_GPU else 0,
        # CPU: a rehearsal train job (ResNet-50, 256x128, real-layout tree) peaked at 5.7 GB resident.
        mem_mb=32000 if ON_GPU else 8000,
        runtime=24 * 60 if ON_GPU else 60,
    params:
        params_file=PARAMS_FILE,
        profile=PROFILE_NAME,
        run_dir=lambda wildcards, output: os.path.dirname(output.model),
        synthesis=synthesis_arg,
        packed=packed_arg,
        resume=resume_flag,
        run_config=run_config_json,
    shell:
        "spcreid train --params {params.params_file:q} --profile {params.profile:q} --dataset {wildcards.key:q}"
        " --experiment {wildcards.experiment:q} --seed {wildcards.seed:q} --manifest {input.manifest:q}"
        " {params.synthesis:q} {params.packed:q} {params.resume:q} --skip-evaluation --threads {threads} --out {params.run_dir:q}"
        " > {log:q} 2>&1"


# Reference rows: the supervised upper bound (true identity labels, the baseline's recipe and budget) and the
# untrained pretrained start (lower bound). Their model.pt is scored by the evaluate rule like any run's. Each keeps
# a shell line of its own: `use rule ... with:` cannot replace a command, and a changed command line would make
# Snakemake's `code` rerun trigger retrain every finished run.
rule train_supervised:
    input:
        manifest=MANIFEST,
        packed=branch(PACK_IMAGES, then=packed_store),
        pretrained=pretrained_input,
    output:
        model=f"{RUN_DIR}/model.pt",
    log:
        log_path("train/{key}/{experiment}/seed{seed}"),
    benchmark:
        bench_path("train/{key}/{experiment}/seed{seed}")
    wildcard_constraints:
        seed=r"\d+",
        experiment="supervised",
    container:
        MAIN_IMAGE
    threads: 8 if ON_GPU else 1
    resources:
        gpu=1 if ON_GPU else 0,
        mem_mb=32000 if ON_GPU else 8000,
        runtime=24 * 60 if ON_GPU else 60,
    params:
        params_file=PARAMS_FILE,
        profile=PROFILE_NAME,
        run_dir=lambda wildcards, output: os.path.dirname(output.model),
        packed=packed_arg,
        run_config=baseline_config_json,
    shell:
        "spcreid train-supervised --params {params.params_file:q} --profile {params.profile:q}"
        " --dataset {wildcards.key:q} --seed {wildcards.seed:q} --manifest {input.manifest:q} {params.packed:q}"
        " --skip-evaluation"
        " --threads {threads} --out {params.run_dir:q} > {log:q} 2>&1"


rule pretrained_start:
    input:
        manifest=MANIFEST,
        pretrained=pretrained_input,
    output:
        model=f"{RUN_DIR}/model.pt",
    log:
        log_path("train/{key}/{experiment}/seed{seed}"),
    benchmark:
        bench_path("train/{key}/{experiment}/seed{seed}")
    wildcard_constraints:
        seed=r"\d+",
        experiment="pretrained-start",
    container:
        MAIN_IMAGE
    threads: 8 if ON_GPU else 1
    resources:
        gpu=1 if ON_GPU else 0,
        mem_mb=16000 if ON_GPU else 8000,
        runtime=60,
    params:
        params_file=PARAMS_FILE,
        profile=PROFILE_NAME,
        run_dir=lambda wildcards, output: os.path.dirname(output.model),
        run_config=baseline_config_json,
    shell:
        "spcreid pretrained-start --params {params.params_file:q} --profile {params.profile:q}"
        " --dataset {wildcards.key:q} --seed {wildcards.seed:q} --manifest {input.manifest:q}"
        " --threads {threads} --out {params.run_dir:q} > {log:q} 2>&1"
