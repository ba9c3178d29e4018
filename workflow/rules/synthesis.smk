# Clothing-changed copies of every train image, computed once per dataset and shared by all experiments that
# augment (Ca) or use the self-identity loss (Ci).


rule synthesize_parsing_swap:
    input:
        MANIFEST,
    output:
        "data/synth/{key}/parsing-swap/index.csv",
    params:
        copies=SYNTH_COPIES,
        seed=SYNTH_SEED,
        out=lambda wildcards, output: os.path.dirname(output[0]),
    log:
        "work/logs/synthesize/{key}-parsing-swap.log",
    benchmark:
        "work/benchmarks/synthesize/{key}-parsing-swap.tsv"
    container:
        MAIN_IMAGE
    shell:
        "spcreid synthesize --manifest {input} --backend parsing-swap --copies {params.copies}"
        " --seed {params.seed} --out {params.out} > {log} 2>&1"


rule synthesize_pise:
    # PISE (Python 3.6 / PyTorch 1.2) cannot share spcreid's environment: it lives in its own image, built from
    # containers/pise/ and pinned as PISE_IMAGE. This job runs spcreid in the main image; `spcreid synthesize`
    # stages PISE's inputs there, starts PISE_IMAGE itself (`apptainer exec --nv`, see
    # spcreid.synthesis.pise.runner) and collects the copies into the cache.
    input:
        manifest=MANIFEST,
        checkpoint=ancient("data/weights/pise-texture/latest_net_G.pth"),
        keypoints=ancient("data/weights/keypointrcnn-coco.pth"),
        vgg=ancient("data/weights/vgg19-imagenet.pth"),
    output:
        "data/synth/{key}/pise/index.csv",
    params:
        copies=SYNTH_COPIES,
        seed=SYNTH_SEED,
        out=lambda wildcards, output: os.path.dirname(output[0]),
        checkpoint_dir=lambda wildcards, input: os.path.dirname(input.checkpoint),
        pise_image=PISE_IMAGE,
    resources:
        gpu=1,
    log:
        "work/logs/synthesize/{key}-pise.log",
    benchmark:
        "work/benchmarks/synthesize/{key}-pise.tsv"
    container:
        MAIN_IMAGE
    shell:
        "spcreid synthesize --manifest {input.manifest} --backend pise --copies {params.copies}"
        " --seed {params.seed} --pise-image {params.pise_image} --pise-checkpoint {params.checkpoint_dir}"
        " --vgg-weights {input.vgg} --keypoint-weights {input.keypoints} --out {params.out} > {log} 2>&1"
