# Tables (ours beside the paper's, diff = ours - paper) and plots, from the per-run metrics JSON files and
# the paper's numbers in results/paper/.


rule tables:
    input:
        metrics=expand_runs(METRICS),
        paper=expand("results/paper/{table}.csv", table=TABLES),
        params=PARAMS_FILE,
    output:
        tables=[
            report(f"results/tables/{table}.{fmt}", category="Tables", subcategory=table, caption="../report/tables.rst")
            for table in TABLES
            for fmt in ("html", "csv")
        ],
        text=[f"results/tables/{table}.{fmt}" for table in TABLES for fmt in ("md", "tex")],
        summary="results/tables/summary.json",
    params:
        profile=PROFILE_NAME,
    log:
        "work/logs/tables.log",
    benchmark:
        "work/benchmarks/tables.tsv"
    container:
        MAIN_IMAGE
    shell:
        "spcreid make-tables --params {input.params} --profile {params.profile} --metrics-dir results/metrics"
        " --paper-dir results/paper --out results/tables > {log} 2>&1"


rule plots:
    input:
        metrics=expand_runs(METRICS),
        paper=expand("results/paper/{table}.csv", table=TABLES),
        params=PARAMS_FILE,
    output:
        components=report("results/plots/ablation_components.png", category="Plots", caption="../report/ablation.rst"),
        sampling=report("results/plots/ablation_sampling.png", category="Plots", caption="../report/ablation.rst"),
        eps=report("results/plots/eps_curve.png", category="Plots", caption="../report/eps_curve.rst"),
        eps_data="results/plots/eps_curve.csv",
    params:
        profile=PROFILE_NAME,
    log:
        "work/logs/plots.log",
    benchmark:
        "work/benchmarks/plots.tsv"
    container:
        MAIN_IMAGE
    shell:
        "spcreid make-plots --params {input.params} --profile {params.profile} --metrics-dir results/metrics"
        " --paper-dir results/paper --out results/plots > {log} 2>&1"
