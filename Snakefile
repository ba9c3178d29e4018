# spcreid: reproduction of "Unsupervised clothing change adaptive person ReID" (Sync-Person-Cloud).
#
#   snakemake --cores 2                               embedded profile (toy data, CPU, minutes)
#   snakemake --profile workflow/profiles/default --config profile=paper     paper profile (GPU, containers)
#   snakemake --report results/<profile>/report.html  HTML report with the tables and plots
#
# Jobs are derived from params.yaml through spcreid.workflow.experiments (see docs/WORKFLOW.md).

from snakemake.utils import min_version

min_version("9.0")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/synthesis.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"


report: "workflow/report/workflow.rst"


localrules:
    all,
    metrics,


rule all:
    input:
        rules.tables.output,
        rules.plots.output,
    default_target: True


rule metrics:
    # `snakemake metrics`: train and evaluate every run, no tables.
    input:
        expand_runs(METRICS) + expand_runs(METRICS, REFERENCE_RUNS),
