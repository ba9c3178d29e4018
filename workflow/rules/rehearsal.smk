# The rehearsal's inputs (docs/WORKFLOW.md, "The DAG"). A profile that runs the stand-in networks
# (parsing.network and synthesis.network: stand-in, which load only stand-in weights) fetches its datasets and
# weights from its local_weights folder, and this rule writes that folder: tiny PRCC / VC-Clothes / LTCC archives in
# the real layouts, stand-in weights in the real checkpoint formats and their SHA256SUMS. A fresh clone's
# `snakemake --config profile=rehearsal` needs no step before it.

STAND_IN_INPUTS = PLAN.stand_in_outputs()

if STAND_IN_INPUTS:

    rule make_rehearsal_inputs:
        output:
            **STAND_IN_INPUTS,
        log:
            log_path("make_rehearsal_inputs"),
        benchmark:
            bench_path("make_rehearsal_inputs")
        container:
            MAIN_IMAGE
        params:
            out=lambda wildcards, output: os.path.dirname(output.sums),
        shell:
            "spcreid make-rehearsal-inputs --out {params.out:q} > {log:q} 2>&1"
