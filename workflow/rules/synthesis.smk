# Clothing-changed copies of every train image, computed once per dataset and shared by all experiments that
# augment (Ca) or use the self-identity loss (Ci).


rule synthesize_parsing_swap:
    input:
        MANIFEST,
    output:
        f"{DATA}/synth/{{key}}/parsing-swap/index.csv",
    params:
        copies=SYNTH_COPIES,
        seed=SYNTH_SEED,
        out=lambda wildcards, output: os.path.dirname(output[0]),
    log:
        log_path("synthesize/{key}-parsing-swap"),
    benchmark:
        bench_path("synthesize/{key}-parsing-swap")
    container:
        MAIN_IMAGE
    shell:
        "spcreid synthesize --manifest {input:q} --backend parsing-swap --copies {params.copies:q}"
        " --seed {params.seed:q} --out {params.out:q} > {log:q} 2>&1"


rule synthesize_pise:
    # PISE (Python 3.6 / PyTorch 1.2) cannot share spcreid's environment: it lives in its own image, built from
    # containers/pise/ and pinned as PISE_IMAGE. This job runs spcreid in the main image; `spcreid synthesize`
    # stages PISE's inputs there, starts PISE_IMAGE itself (`apptainer exec --nv`, see
    # spcreid.synthesis.pise.runner) and collects the copies into the cache.
    input:
        manifest=MANIFEST,
        checkpoint=ancient(f"{DATA}/weights/pise-texture/latest_net_G.pth"),
        keypoints=ancient(f"{DATA}/weights/keypointrcnn-coco.pth"),
        vgg=ancient(f"{DATA}/weights/vgg19-imagenet.pth"),
    output:
        f"{DATA}/synth/{{key}}/pise/index.csv",
    params:
        copies=SYNTH_COPIES,
        seed=SYNTH_SEED,
        out=lambda wildcards, output: os.path.dirname(output[0]),
        checkpoint_dir=lambda wildcards, input: os.path.dirname(input.checkpoint),
        pise_image=PISE_IMAGE,
    resources:
        gpu=1,
    log:
        log_path("synthesize/{key}-pise"),
    benchmark:
        bench_path("synthesize/{key}-pise")
    container:
        MAIN_IMAGE
    shell:
        "spcreid synthesize --manifest {input.manifest:q} --backend pise --copies {params.copies:q}"
        " --seed {params.seed:q} --pise-image {params.pise_image:q} --pise-checkpoint {params.checkpoint_dir:q}"
        " --vgg-weights {input.vgg:q} --keypoint-weights {input.keypoints:q} --out {params.out:q} > {log:q} 2>&1"
