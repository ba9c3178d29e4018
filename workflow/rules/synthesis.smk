# Clothing-changed copies of every train image, computed once per dataset and shared by all experiments that
# augment (Ca) or use the self-identity loss (Ci).


rule synthesize_parsing_swap:
    input:
        synthesis_manifest,
    output:
        SYNTH_INDEX.replace("{backend}", "parsing-swap"),
    log:
        log_path(f"synthesize/{{key}}-parsing-swap{SEED_FOLDER}"),
    benchmark:
        bench_path(f"synthesize/{{key}}-parsing-swap{SEED_FOLDER}")
    container:
        MAIN_IMAGE
    params:
        copies=SYNTH_COPIES,
        seed=synthesis_seed_arg,
        out=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        "spcreid synthesize --manifest {input:q} --backend parsing-swap --copies {params.copies:q}"
        " --seed {params.seed:q} --replace-changed --out {params.out:q} > {log:q} 2>&1"


rule synthesize_pise:
    # PISE's texture-transfer generator runs in process in the main image (spcreid.synthesis.pise.adapter,
    # PISE's source at its pinned commit is part of the image), on the GPU, with keypoints from keypoint R-CNN.
    input:
        manifest=synthesis_manifest,
        checkpoint=ancient(f"{DATA}/weights/pise-texture/latest_net_G.pth"),
        keypoints=ancient(f"{DATA}/weights/keypointrcnn-coco.pth"),
    output:
        SYNTH_INDEX.replace("{backend}", "pise"),
    log:
        log_path(f"synthesize/{{key}}-pise{SEED_FOLDER}"),
    benchmark:
        bench_path(f"synthesize/{{key}}-pise{SEED_FOLDER}")
    container:
        MAIN_IMAGE
    threads: 4
    resources:
        gpu=1 if str(SYNTHESIS["device"]).startswith("cuda") else 0,
        mem_mb=16000,
        runtime=720,
    params:
        copies=SYNTH_COPIES,
        seed=synthesis_seed_arg,
        out=lambda wildcards, output: os.path.dirname(output[0]),
        # --pise-network, --device, --pise-batch, --keypoint-min-size and --pise-fit from params.yaml's synthesis.
        pise=lambda wildcards: PLAN.pise_flags(),
    shell:
        "spcreid synthesize --manifest {input.manifest:q} --backend pise --copies {params.copies:q}"
        " --seed {params.seed:q} --pise-checkpoint {input.checkpoint:q} --keypoint-weights {input.keypoints:q}"
        " {params.pise:q} --replace-changed --out {params.out:q} > {log:q} 2>&1"
