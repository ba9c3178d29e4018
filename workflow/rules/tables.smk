# Tables (ours beside the paper's, diff = ours - paper) and plots, from the per-run metrics JSON files of this
# profile and the paper's numbers in results/published/.


rule tables:
    input:
        metrics=expand_runs(METRICS) + expand_runs(METRICS, REFERENCE_RUNS),
        per_query=expand_runs(PER_QUERY) + expand_runs(PER_QUERY, REFERENCE_RUNS),
        paper=expand(f"{PUBLISHED}/{{table}}.csv", table=TABLES),
        params=PARAMS_FILE,
    output:
        tables=[
            report(
                f"{RESULTS}/tables/{table}.{fmt}",
                category="Tables",
                subcategory=table,
                caption="../report/tables.rst",
            )
            for table in TABLES
            for fmt in ("html", "csv")
        ],
        text=[f"{RESULTS}/tables/{table}.{fmt}" for table in TABLES for fmt in ("md", "tex")],
        # The paper's claims (params.yaml: claims), each confirmed, contradicted or unresolved, seed as the unit.
        verdict=report(f"{RESULTS}/tables/verdict.md", category="Verdict", caption="../report/tables.rst"),
        verdict_csv=f"{RESULTS}/tables/verdict.csv",
        summary=f"{RESULTS}/tables/summary.json",
    log:
        log_path("tables"),
    benchmark:
        bench_path("tables")
    container:
        MAIN_IMAGE
    params:
        profile=PROFILE_NAME,
        published=lambda wildcards, input: os.path.dirname(input.paper[0]),
        # METRICS is <metrics dir>/{key}/{experiment}/seed{seed}.json
        metrics_dir=lambda wildcards, input: os.path.dirname(os.path.dirname(os.path.dirname(input.metrics[0]))),
        out=lambda wildcards, output: os.path.dirname(output.summary),
    shell:
        "spcreid make-tables --params {input.params:q} --profile {params.profile:q}"
        " --metrics-dir {params.metrics_dir:q} --paper-dir {params.published:q} --out {params.out:q} > {log:q} 2>&1"


rule plots:
    input:
        metrics=expand_runs(METRICS) + expand_runs(METRICS, REFERENCE_RUNS),
        per_query=expand_runs(PER_QUERY) + expand_runs(PER_QUERY, REFERENCE_RUNS),
        paper=expand(f"{PUBLISHED}/{{table}}.csv", table=TABLES),
        params=PARAMS_FILE,
    output:
        components=report(PLOTS[0], category="Plots", caption="../report/ablation.rst"),
        sampling=report(PLOTS[1], category="Plots", caption="../report/ablation.rst"),
        eps=report(PLOTS[2], category="Plots", caption="../report/eps_curve.rst"),
        eps_data=PLOTS[3],
        # The same figures for papers: SVG and PDF beside every PNG.
        vector=[p.removesuffix(".png") + ext for p in PLOTS[:3] for ext in (".svg", ".pdf")],
    log:
        log_path("plots"),
    benchmark:
        bench_path("plots")
    container:
        MAIN_IMAGE
    params:
        profile=PROFILE_NAME,
        published=lambda wildcards, input: os.path.dirname(input.paper[0]),
        metrics_dir=lambda wildcards, input: os.path.dirname(os.path.dirname(os.path.dirname(input.metrics[0]))),
        out=lambda wildcards, output: os.path.dirname(output.eps_data),
    shell:
        "spcreid make-plots --params {input.params:q} --profile {params.profile:q}"
        " --metrics-dir {params.metrics_dir:q} --paper-dir {params.published:q} --out {params.out:q} > {log:q} 2>&1"


# The trainer writes log.jsonl (one record per epoch, with the pseudo-labels' ARI / NMI against identities and
# outfits) into the run folder beside model.pt; model.pt is the input because it is the run's declared output.
rule label_quality:
    input:
        models=expand_runs(f"{RUN_DIR}/model.pt"),
    output:
        table=LABEL_QUALITY[0],
        figure=report(LABEL_QUALITY[1], category="Plots", caption="../report/label_quality.rst"),
        vector=LABEL_QUALITY[2:],
    log:
        log_path("label_quality"),
    benchmark:
        bench_path("label_quality")
    container:
        MAIN_IMAGE
    params:
        runs=lambda wildcards, input: [os.path.dirname(model) for model in input.models],
        out=lambda wildcards, output: os.path.dirname(output.table),
    shell:
        "spcreid make-label-quality --runs {params.runs:q} --out {params.out:q} > {log:q} 2>&1"
