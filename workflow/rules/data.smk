# Datasets -> manifests. Embedded profile: the procedural toy generator. Paper profile: fetch (or `dvc pull`)
# the distributed archives under the dataset's root, verify them, scan them into a manifest, and parse every
# train image (human parsing) into the manifest synthesis reads.


rule make_toy_data:
    output:
        directory("data/toy/{key}"),
    wildcard_constraints:
        key=one_of(TOY_KEYS),
    params:
        seed=lambda wildcards: DATASETS[wildcards.key]["toy_seed"],
        identities=toy_option("identities"),
        images_per_camera=toy_option("images_per_camera"),
        height=toy_option("height"),
        width=toy_option("width"),
    log:
        "work/logs/make_toy_data/{key}.log",
    benchmark:
        "work/benchmarks/make_toy_data/{key}.tsv"
    container:
        MAIN_IMAGE
    shell:
        "spcreid make-toy-data --out {output} --seed {params.seed} --identities {params.identities}"
        " --images-per-camera {params.images_per_camera} --height {params.height} --width {params.width}"
        " --quiet > {log} 2>&1"


rule prepare_toy_manifest:
    input:
        "data/toy/{key}",
    output:
        MANIFEST,
    wildcard_constraints:
        key=one_of(TOY_KEYS),
    log:
        "work/logs/prepare_data/{key}.log",
    benchmark:
        "work/benchmarks/prepare_data/{key}.tsv"
    container:
        MAIN_IMAGE
    shell:
        "spcreid prepare-data --dataset toy --root {input} --out {output} > {log} 2>&1"


rule fetch_data:
    # Skipped when the folder is already there, e.g. after `dvc pull` of the DVC-tracked copy.
    output:
        directory("{root}/{folder}"),
    wildcard_constraints:
        folder=one_of(RAW_FOLDER[DATASETS[key]["source"]] for key in REAL_KEYS),
    params:
        source=fetch_source,
        extra=fetch_args,
    log:
        "work/logs/fetch_data/{root}/{folder}.log",
    benchmark:
        "work/benchmarks/fetch_data/{root}/{folder}.tsv"
    container:
        MAIN_IMAGE
    shell:
        "spcreid fetch-data --dataset {params.source} --dest {wildcards.root} {params.extra} > {log} 2>&1"


rule verify_data:
    input:
        raw_dataset_input,
    output:
        "data/verified/{key}.json",
    wildcard_constraints:
        key=one_of(REAL_KEYS),
    params:
        source=lambda wildcards: DATASETS[wildcards.key]["source"],
        root=lambda wildcards: DATASETS[wildcards.key]["root"],
        # params.yaml verify.strict_counts: false accepts a copy whose image counts differ from the published
        # ones; the verification JSON then records count_mismatch_allowed and the differences.
        counts=[] if VERIFY["strict_counts"] else ["--allow-count-mismatch"],
    threads: 4
    log:
        "work/logs/verify_data/{key}.log",
    benchmark:
        "work/benchmarks/verify_data/{key}.tsv"
    container:
        MAIN_IMAGE
    shell:
        "spcreid verify-data --dataset {params.source} --root {params.root} --workers {threads}"
        " {params.counts:q} --json {output} > {log} 2>&1"


rule prepare_manifest:
    input:
        raw=raw_dataset_input,
        verified="data/verified/{key}.json",
    output:
        MANIFEST,
    wildcard_constraints:
        key=one_of(REAL_KEYS),
    params:
        source=lambda wildcards: DATASETS[wildcards.key]["source"],
        root=lambda wildcards: DATASETS[wildcards.key]["root"],
    log:
        "work/logs/prepare_data/{key}.log",
    benchmark:
        "work/benchmarks/prepare_data/{key}.tsv"
    container:
        MAIN_IMAGE
    shell:
        "spcreid prepare-data --dataset {params.source} --root {params.root} --out {output} > {log} 2>&1"


rule parse:
    # Human parsing: an 8-class map for every train image (SCHP, docs/PARSING.md), or the user's own maps
    # (params.yaml parsing.source: maps). Its manifest, the train rows with their maps, is what synthesis reads.
    input:
        manifest=MANIFEST,
        weights=parse_weights_input,
    output:
        PARSED_MANIFEST,
    wildcard_constraints:
        key=one_of(REAL_KEYS),
    params:
        out=lambda wildcards, output: os.path.dirname(output[0]),
        source=parse_args,
    threads: 4
    resources:
        gpu=1 if PARSING["source"] == "schp" and str(PARSING["device"]).startswith("cuda") else 0,
        mem_mb=8000,
    log:
        f"work/{PROFILE_NAME}/logs/parse/{{key}}.log",
    benchmark:
        f"work/{PROFILE_NAME}/benchmarks/parse/{{key}}.tsv"
    container:
        MAIN_IMAGE
    shell:
        "spcreid parse --manifest {input.manifest:q} --out {params.out:q} {params.source:q} > {log:q} 2>&1"
