# spcreid: reproduction of "Unsupervised clothing change adaptive person ReID" (Sync-Person-Cloud).
#
#   snakemake --cores 2                               embedded profile (toy data, CPU, minutes)
#   snakemake --profile workflow/profiles/default --config profile=paper     paper profile (GPU, containers)
#   snakemake --report results/<profile>/report.html  HTML report with the tables and plots
#   after a kill (SIGKILL, power loss): snakemake --unlock, then rerun with --rerun-incomplete (docs/WORKFLOW.md)
#
# Jobs are derived from params.yaml through spcreid.config.experiments (see docs/WORKFLOW.md).

from snakemake.utils import min_version

min_version("9.0")


# params.yaml is the configuration; `--configfile FILE` is merged over it, `--config KEY=VALUE` over both, and
# workflow/rules/common.smk validates the result against the params schema through spcreid.config.workflow
# (docs/WORKFLOW.md, "Running it").
configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/synthesis.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/rehearsal.smk"
include: "workflow/rules/dvc.smk"


report: "workflow/report/workflow.rst"


onstart:
    # Real runs only (not -n), once the DAG is built and before the first job. Snakemake pulls docker:// images
    # before this, but never a local .sif, so a missing build is caught here rather than by the first job.
    check_images()


onsuccess:
    # Where the tables, plots and metrics are: Snakemake's own last line says only how many steps ran.
    print_summary(PROFILE_NAME, RESULTS, WORK)


localrules:
    all,
    metrics,


rule all:
    default_target: True
    input:
        rules.tables.output,
        rules.plots.output,
        rules.label_quality.output,


rule metrics:
    # `snakemake metrics`: train and evaluate every run, no tables.
    input:
        expand_runs(METRICS) + expand_runs(METRICS, REFERENCE_RUNS),
