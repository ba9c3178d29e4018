# Tables (ours beside the paper's, diff = ours - paper) and plots, from the per-run metrics JSON files of this
# profile and the paper's numbers in results/published/. In the HTML report (`snakemake --report`) every table and
# every figure is an entry of its own: category Tables (one subcategory per table), Verdict, or Plots (one
# subcategory per figure, its PNG, SVG, PDF and data side by side).

TABLE_FORMATS = ("html", "csv", "md", "tex")
FIGURE_FORMATS = ("png", "svg", "pdf")


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
            for fmt in TABLE_FORMATS
        ],
        # The paper's claims (params.yaml: claims), each confirmed, contradicted or unresolved, seed as the unit.
        verdict=[
            report(
                f"{RESULTS}/tables/verdict.{fmt}",
                category="Verdict",
                subcategory="claims",
                caption="../report/tables.rst",
            )
            for fmt in ("md", "csv")
        ],
        # DVC's metrics file (dvc.yaml: metrics): ours per table cell.
        summary=f"{RESULTS}/tables/summary.json",
    log:
        log_path("tables"),
    benchmark:
        bench_path("tables")
    container:
        MAIN_IMAGE
    params:
        command="make-tables",
        profile=PROFILE_NAME,
        published=lambda wildcards, input: os.path.dirname(input.paper[0]),
        # METRICS is <metrics dir>/{key}/{experiment}/seed{seed}.json
        metrics_dir=lambda wildcards, input: os.path.dirname(os.path.dirname(os.path.dirname(input.metrics[0]))),
        out=lambda wildcards, output: os.path.dirname(output.summary),
    shell:
        "spcreid {params.command:q} --params {input.params:q} --profile {params.profile:q}"
        " --metrics-dir {params.metrics_dir:q} --paper-dir {params.published:q} --out {params.out:q} > {log:q} 2>&1"


# The same inputs and command line, `spcreid make-plots`: each figure as PNG (shown in the report), SVG and PDF.
use rule tables as plots with:
    output:
        components=[
            report(
                f"{RESULTS}/plots/ablation_components.{fmt}",
                category="Plots",
                subcategory="component ablation (Table 2)",
                caption="../report/ablation.rst",
            )
            for fmt in FIGURE_FORMATS
        ],
        sampling=[
            report(
                f"{RESULTS}/plots/ablation_sampling.{fmt}",
                category="Plots",
                subcategory="sampling ablation (Table 3)",
                caption="../report/ablation.rst",
            )
            for fmt in FIGURE_FORMATS
        ],
        eps=[
            report(
                f"{RESULTS}/plots/eps_curve.{fmt}",
                category="Plots",
                subcategory="DBSCAN eps (Table 4)",
                caption="../report/eps_curve.rst",
            )
            for fmt in (*FIGURE_FORMATS, "csv")
        ],
    log:
        log_path("plots"),
    benchmark:
        bench_path("plots")
    params:
        command="make-plots",
        out=lambda wildcards, output: os.path.dirname(output.eps[0]),


# The trainer writes log.jsonl (one record per epoch, with the pseudo-labels' ARI / NMI against identities and
# outfits) into the run folder beside model.pt; model.pt is the input because it is the run's declared output.
rule label_quality:
    input:
        models=expand_runs(f"{RUN_DIR}/model.pt"),
    output:
        # The tidy table, then the figure in each format.
        table=report(
            f"{RESULTS}/plots/label_quality.csv",
            category="Plots",
            subcategory="label quality",
            caption="../report/label_quality.rst",
        ),
        figures=[
            report(
                f"{RESULTS}/plots/label_quality.{fmt}",
                category="Plots",
                subcategory="label quality",
                caption="../report/label_quality.rst",
            )
            for fmt in FIGURE_FORMATS
        ],
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
