"""Command-line entry points of the clustering package: `spcreid bench pseudo-labels`."""

from __future__ import annotations

import argparse
import json

from spcreid import cli_options


def register(subparsers) -> None:
    """No workflow step of its own: training calls :func:`spcreid.clustering.pseudo_labels` each epoch."""


def register_bench(bench_subparsers) -> None:
    parser = bench_subparsers.add_parser(
        "pseudo-labels",
        help="time sparse k-reciprocal Jaccard + DBSCAN on synthetic clustered features",
        description="Generate N synthetic clustered features, compute pseudo labels (k1=30, k2=6, "
        "min_samples=4) and print {n, dim, seconds, peak_rss_mb, n_clusters, n_outliers, "
        "stage_seconds} as JSON.",
    )
    parser.add_argument("--n", type=int, required=True, help="number of features")
    parser.add_argument("--dim", type=int, default=2048, help="feature dimension (default 2048)")
    parser.add_argument("--clusters", type=int, default=None, help="cluster centres to generate (default N/40)")
    parser.add_argument("--eps", type=float, default=0.4, help="DBSCAN eps on the Jaccard distance")
    cli_options.add_parents(
        parser,
        cli_options.seed("seed of the synthetic features"),
        cli_options.threads("torch CPU threads (default: torch's choice)"),
        cli_options.device("torch device for the kNN stage, e.g. cuda", default=None),
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=_bench_pseudo_labels)


def _bench_pseudo_labels(args: argparse.Namespace) -> int:
    # lazy: start-up time
    from spcreid.clustering.bench import run_pseudo_label_benchmark

    figures = run_pseudo_label_benchmark(
        n=args.n,
        dim=args.dim,
        clusters=args.clusters,
        eps=args.eps,
        seed=args.seed,
        threads=args.threads,
        device=args.device,
        progress=not args.no_progress,
    )
    print(json.dumps(figures, indent=2))
    return 0
