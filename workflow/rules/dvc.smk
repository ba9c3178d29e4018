# `snakemake --config profile=paper dvc_track` (`make dvc-track`): put this profile's downloads under DVC. The
# downloads are the fetch rules' outputs that the DAG reads, the raw datasets and the pretrained weights
# (spcreid.config.workflow.Plan.downloads); each gets its .dvc pointer beside it (committed to git), and `dvc push`
# sends the data to the remote (docs/WORKFLOW.md, "DVC"). dvc runs on the launching machine, like snakemake itself,
# outside the image; the conda environment below documents it (envs/workflow.in pins the same dvc) and serves
# `--sdm conda`.


DOWNLOADS = PLAN.downloads()

if DOWNLOADS:

    localrules:
        dvc_track,

    rule dvc_track:
        input:
            [ancient(path) for path in DOWNLOADS],
        output:
            [f"{path}.dvc" for path in DOWNLOADS],
        log:
            log_path("dvc_track"),
        benchmark:
            bench_path("dvc_track")
        conda:
            "../envs/dvc_track.yaml"
        shell:
            "dvc add {input:q} > {log:q} 2>&1"
