"""``spcreid make-tables`` and ``spcreid make-plots``: the paper's tables and figures from our metrics."""

from __future__ import annotations

import argparse
from pathlib import Path

from spcreid import cli_options
from spcreid.errors import SpcreidError

# The paper's own numbers: reference values that no command may overwrite.
PUBLISHED = Path("results/published")


def _add_common(parser: argparse.ArgumentParser, out_help: str) -> None:
    cli_options.add_parents(
        parser, cli_options.params(), cli_options.profile("override params.yaml's profile (it sets the seeds)")
    )
    parser.add_argument(
        "--metrics-dir",
        default=None,
        help="per-run metrics: DIR/<dataset>/<experiment>/seed<N>.json and .per_query.npz "
        "(default results/<profile>/metrics)",
    )
    parser.add_argument(
        "--paper-dir", default="results/published", help="the paper's values, <table>.csv (default results/published)"
    )
    cli_options.add_parents(parser, cli_options.out(out_help))
    parser.add_argument(
        "--allow-missing",
        action="store_true",
        help="leave cells without metrics (missing or NaN files) and rows without per-query files "
        "(<metrics>.npz) out of the means and paired tests instead of stopping",
    )


def register(subparsers) -> None:
    """Add this package's subcommands to the `spcreid` parser."""
    tables = subparsers.add_parser(
        "make-tables",
        help="rebuild the paper's tables (ours mean ± std, paper, diff, paired tests, reference rows) as CSV, "
        "Markdown, LaTeX (booktabs) and HTML",
        description="Writes OUT/<table>.{csv,md,tex,html} for every table of params.yaml and OUT/summary.json "
        "(ours: mean / std per cell, the DVC metric). Refuses metrics files of another profile and NaN metrics.",
    )
    _add_common(tables, "output folder, e.g. results/embedded/tables")
    tables.set_defaults(func=run_make_tables)

    plots = subparsers.add_parser(
        "make-plots",
        help="ablation bar charts and the eps curve (PNG, SVG, PDF) beside the paper's values",
        description="Writes OUT/ablation_components.{png,svg,pdf}, OUT/ablation_sampling.{png,svg,pdf}, "
        "OUT/eps_curve.{png,svg,pdf} and OUT/eps_curve.csv.",
    )
    _add_common(plots, "output folder, e.g. results/embedded/plots")
    plots.set_defaults(func=run_make_plots)

    quality = subparsers.add_parser(
        "make-label-quality",
        help="pseudo-label ARI / NMI against identities and outfits per epoch, every run: CSV + figure",
        description="Reads RUN/config.json and RUN/log.jsonl of each training run and writes "
        "OUT/label_quality.csv (one row per run and epoch) and OUT/label_quality.{png,svg,pdf} (mean +- std over "
        "seeds per dataset and experiment).",
    )
    quality.add_argument("--runs", nargs="+", required=True, help="training run folders (beside their model.pt)")
    cli_options.add_parents(quality, cli_options.out("output folder, e.g. results/embedded/plots"))
    quality.set_defaults(func=run_make_label_quality)


def _metrics_dir(args: argparse.Namespace, params: dict) -> str:
    return args.metrics_dir or f"results/{params['profile']}/metrics"


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def check_out(out: str, inputs: dict[str, str]) -> None:
    """Refuse an output folder that is (or lies inside) an input folder or results/published.

    Writing there replaced the paper's reference CSVs (``--out results/published``) with our tables.
    """
    for what, folder in {"the paper's published values": str(PUBLISHED), **inputs}.items():
        if _inside(Path(out), Path(folder)):
            raise SpcreidError(
                f"--out {out} would write into {folder} ({what}), which must stay as it is; "
                "choose another --out, e.g. results/<profile>/tables"
            )


def run_make_tables(args: argparse.Namespace) -> int:
    # lazy: start-up time
    from spcreid.config.experiments import load_params
    from spcreid.report.tables import write_tables

    params = load_params(args.params, profile=args.profile)
    check_out(args.out, {"--metrics-dir": _metrics_dir(args, params), "--paper-dir": args.paper_dir})
    frames = write_tables(params, _metrics_dir(args, params), args.paper_dir, args.out, args.allow_missing)
    print(f"make-tables: {', '.join(frames)} -> {args.out}")
    return 0


def run_make_plots(args: argparse.Namespace) -> int:
    # lazy: start-up time
    from spcreid.config.experiments import load_params
    from spcreid.report.plots import write_plots

    params = load_params(args.params, profile=args.profile)
    check_out(args.out, {"--metrics-dir": _metrics_dir(args, params), "--paper-dir": args.paper_dir})
    written = write_plots(params, _metrics_dir(args, params), args.paper_dir, args.out, args.allow_missing)
    print(f"make-plots: {len(written)} files -> {args.out}")
    return 0


def run_make_label_quality(args: argparse.Namespace) -> int:
    # lazy: start-up time
    from spcreid.report.label_quality import write_label_quality

    check_out(args.out, {f"--runs {run}": run for run in args.runs})
    written = write_label_quality(args.runs, args.out)
    print(f"make-label-quality: {len(args.runs)} runs, {len(written)} files -> {args.out}")
    return 0
