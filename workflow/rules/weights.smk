# Pretrained weights (paper profile only). `spcreid fetch-weights` verifies the sha256 and skips a file that is
# already there, e.g. after `dvc pull`; consumers wrap these paths in ancient() for the same reason.


rule fetch_weights:
    output:
        "data/weights/{name}.pth",
    wildcard_constraints:
        name=one_of(WEIGHT_NAMES),
    log:
        "work/logs/fetch_weights/{name}.log",
    benchmark:
        "work/benchmarks/fetch_weights/{name}.tsv"
    container:
        MAIN_IMAGE
    shell:
        "spcreid fetch-weights --name {wildcards.name} --dest {output} > {log} 2>&1"


rule fetch_pise_checkpoint:
    # PISE's loader wants a folder holding latest_net_G.pth.
    output:
        "data/weights/pise-texture/latest_net_G.pth",
    log:
        "work/logs/fetch_weights/pise-texture.log",
    benchmark:
        "work/benchmarks/fetch_weights/pise-texture.tsv"
    container:
        MAIN_IMAGE
    shell:
        "spcreid fetch-weights --name pise-texture --dest {output} > {log} 2>&1"
