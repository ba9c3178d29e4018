# Datasets -> manifests. Embedded profile: the procedural toy generator. Paper profile: fetch (or `dvc pull`)
# the distributed archives under the dataset's root, verify them, scan them into a manifest, and parse every
# train image (human parsing) into the manifest synthesis reads.


rule make_toy_data:
    output:
        directory(f"{DATA}/toy/{{key}}"),
    log:
        log_path("make_toy_data/{key}"),
    benchmark:
        bench_path("make_toy_data/{key}")
    wildcard_constraints:
        key=one_of(TOY_KEYS),
    container:
        MAIN_IMAGE
    params:
        seed=lookup(dpath="{key}/toy_seed", within=DATASETS),
        toy=lambda wildcards: PLAN.toy_flags(),
    shell:
        "spcreid make-toy-data --out {output:q} --seed {params.seed:q} {params.toy:q} --quiet > {log:q} 2>&1"


rule prepare_toy_manifest:
    input:
        f"{DATA}/toy/{{key}}",
    output:
        MANIFEST,
    log:
        log_path("prepare_data/{key}"),
    benchmark:
        bench_path("prepare_data/{key}")
    wildcard_constraints:
        key=one_of(TOY_KEYS),
    container:
        MAIN_IMAGE
    shell:
        "spcreid prepare-data --dataset toy --root {input:q} --out {output:q} > {log:q} 2>&1"


rule fetch_data:
    # Skipped when the folder is already there, e.g. after `dvc pull` of the DVC-tracked copy.
    input:
        archive=archive_input,
    output:
        directory("{root}/{folder}"),
    log:
        log_path("fetch_data/{root}/{folder}"),
    benchmark:
        bench_path("fetch_data/{root}/{folder}")
    wildcard_constraints:
        folder=one_of(RAW_FOLDER[DATASETS[key]["source"]] for key in REAL_KEYS),
    container:
        MAIN_IMAGE
    resources:
        runtime=120,
    params:
        source=lookup(dpath="{folder}", within=SOURCE_OF_FOLDER),
        extra=fetch_args,
    shell:
        "spcreid fetch-data --dataset {params.source:q} --dest {wildcards.root:q} {params.extra:q} > {log:q} 2>&1"


rule verify_data:
    input:
        raw_dataset_input,
    output:
        f"{DATA}/verified/{{key}}.json",
    log:
        log_path("verify_data/{key}"),
    benchmark:
        bench_path("verify_data/{key}")
    wildcard_constraints:
        key=one_of(REAL_KEYS),
    container:
        MAIN_IMAGE
    threads: 4
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        source=lookup(dpath="{key}/source", within=DATASETS),
        root=lookup(dpath="{key}/root", within=DATASETS),
        # params.yaml verify.strict_counts: false accepts a copy whose image counts differ from the published
        # ones; the verification JSON then records count_mismatch_allowed and the differences.
        counts=branch(VERIFY["strict_counts"], otherwise=["--allow-count-mismatch"]),
    shell:
        "spcreid verify-data --dataset {params.source:q} --root {params.root:q} --workers {threads}"
        " {params.counts:q} --json {output:q} > {log:q} 2>&1"


rule prepare_manifest:
    input:
        raw=raw_dataset_input,
        verified=f"{DATA}/verified/{{key}}.json",
    output:
        MANIFEST,
    log:
        log_path("prepare_data/{key}"),
    benchmark:
        bench_path("prepare_data/{key}")
    wildcard_constraints:
        key=one_of(REAL_KEYS),
    container:
        MAIN_IMAGE
    params:
        source=lookup(dpath="{key}/source", within=DATASETS),
        root=lookup(dpath="{key}/root", within=DATASETS),
    shell:
        "spcreid prepare-data --dataset {params.source:q} --root {params.root:q} --out {output:q} > {log:q} 2>&1"


rule parse:
    # Human parsing: an 8-class map for every train image (SCHP, docs/PARSING.md), or the user's own maps
    # (params.yaml parsing.source: maps). Its manifest, the train rows with their maps, is what synthesis reads.
    input:
        manifest=MANIFEST,
        weights=branch(
            PARSING["source"] == "schp",
            then=ancient(f"{DATA}/weights/schp-lip.pth"),
        ),
    output:
        PARSED_MANIFEST,
    log:
        log_path("parse/{key}"),
    benchmark:
        bench_path("parse/{key}")
    wildcard_constraints:
        key=one_of(REAL_KEYS),
    container:
        MAIN_IMAGE
    threads: 4
    resources:
        gpu=1 if PARSING["source"] == "schp" and str(PARSING["device"]).startswith("cuda") else 0,
        mem_mb=16000 if str(PARSING["device"]).startswith("cuda") else 8000,
        runtime=240,
    params:
        out=lambda wildcards, output: os.path.dirname(output[0]),
        source=parse_args,
    shell:
        "spcreid parse --manifest {input.manifest:q} --out {params.out:q} {params.source:q} --replace-changed"
        " > {log:q} 2>&1"
