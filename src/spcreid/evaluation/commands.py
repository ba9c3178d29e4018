"""`spcreid evaluate-dist` (score a saved distance matrix or features) and `spcreid bench evaluate`.

Heavy imports happen inside the handlers so that `spcreid --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path

from spcreid import cli_options
from spcreid.errors import SpcreidError

SETTING_CHOICES = ("general", "sc", "cc")
GALLERY_MODE_CHOICES = ("multi", "single", "single-cmc")
LABEL_KEYS = ("q_pids", "g_pids", "q_camids", "g_camids")
CLOTHES_KEYS = ("q_clothes", "g_clothes")


def register(subparsers) -> None:
    """Add this package's subcommands to the `spcreid` parser."""
    parser = subparsers.add_parser(
        "evaluate-dist",
        help="CMC / mAP of a distance matrix (or query/gallery features) stored in an .npz file",
        description=(
            "Read distmat (or qf and gf), q_pids, g_pids, q_camids, g_camids and, for the sc / cc settings, "
            "q_clothes and g_clothes from FILE.npz and print the metrics as JSON."
        ),
    )
    parser.add_argument("file", type=Path, metavar="FILE.npz", help="NumPy archive with the arrays listed above")
    parser.add_argument(
        "--setting",
        choices=SETTING_CHOICES,
        default="general",
        help="general, sc (same clothes) or cc (clothing change); default general",
    )
    parser.add_argument(
        "--gallery-mode", choices=GALLERY_MODE_CHOICES, default="multi", help="gallery mode (default multi)"
    )
    parser.add_argument("--trials", type=int, default=10, help="single-shot trials (default 10)")
    cli_options.add_parents(parser, cli_options.seed("seed of the single-shot gallery draws"))
    parser.add_argument(
        "--metric", choices=("cosine", "euclidean"), default="cosine", help="used only when the file holds qf / gf"
    )
    cli_options.add_parents(
        parser, cli_options.out("also write the JSON to this file (atomically)", required=False, type=Path)
    )
    parser.set_defaults(func=run_evaluate_dist)

    parser = subparsers.add_parser(
        "evaluate-colour-histogram",
        help="score a colour histogram of the person pixels: the lower-bound reference row",
        description="No learning at all: an HSV-free RGB histogram (bins^3) of each query and gallery image's "
        "person pixels (the parsing maps where the manifest has them), scored under the dataset's protocol "
        "in every gallery mode. Writes a metrics JSON and its per-query .npz like `spcreid evaluate`.",
        parents=[
            cli_options.manifest(),
            cli_options.protocol("evaluation protocol"),
            cli_options.profile("the params profile the row belongs to (recorded)", required=True),
            cli_options.dataset("the dataset key the row belongs to (recorded)"),
        ],
    )
    parser.add_argument("--bins", type=int, default=8, help="bins per colour channel (default 8)")
    cli_options.add_parents(parser, cli_options.out("metrics JSON to write; the .per_query.npz goes beside it"))
    parser.set_defaults(func=run_colour_histogram_reference)


def register_bench(bench_subparsers) -> None:
    parser = bench_subparsers.add_parser("evaluate", help="time evaluate() on a random distance matrix (multi-shot)")
    parser.add_argument("--nq", type=int, default=10000, help="queries (rows)")
    parser.add_argument("--ng", type=int, default=20000, help="gallery images (columns)")
    parser.add_argument("--ids", type=int, default=None, help="identities (default ng / 20)")
    parser.add_argument("--cameras", type=int, default=6, help="cameras (default 6)")
    parser.add_argument(
        "--setting", choices=SETTING_CHOICES, default="general", help="evaluation setting (default general)"
    )
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="distance matrix dtype")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats; the median is reported")
    cli_options.add_parents(parser, cli_options.seed("seed of the random matrix and labels"))
    parser.set_defaults(func=run_bench)


def load_npz(path: Path) -> dict:
    """All arrays of an .npz file, refusing pickled objects; errors name the file and the key."""
    import numpy as np

    if path.is_dir():
        raise SpcreidError(f"{path} is a folder, not an .npz file; pass the .npz file itself")
    if not path.is_file():
        raise SpcreidError(f"{path} does not exist")
    if not zipfile.is_zipfile(path):
        raise SpcreidError(f"{path} is not an .npz archive; save it with numpy.savez")
    arrays = {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            for key in archive.files:
                try:
                    arrays[key] = archive[key]
                except ValueError as exc:
                    # numpy refuses an .npy header over its max_header_size with advice to trust the file
                    # (allow_pickle=True); the array is not an object array and the advice is wrong here.
                    if "header" in str(exc).lower():
                        raise SpcreidError(
                            f"{path}: key '{key}' has an .npy header longer than numpy reads safely; save the "
                            "arrays again with numpy.savez (a normal array's header is under 200 bytes)"
                        ) from exc
                    raise SpcreidError(
                        f"{path}: key '{key}' holds Python objects, which are not loaded; store numeric arrays"
                    ) from exc
    except (OSError, zipfile.BadZipFile) as exc:
        raise SpcreidError(f"{path} is not a readable .npz archive ({exc})") from exc
    return arrays


def run_evaluate_dist(args: argparse.Namespace) -> int:
    # lazy: start-up time
    from spcreid.evaluation.metrics import distance, evaluate
    from spcreid.io import write_json

    arrays = load_npz(args.file)
    label_keys = list(LABEL_KEYS) + (list(CLOTHES_KEYS) if args.setting != "general" else [])
    distance_keys = [] if "distmat" in arrays else ["qf", "gf"]
    missing = [key for key in distance_keys + label_keys if key not in arrays]
    if missing:
        raise SpcreidError(
            f"{args.file}: missing key(s) {missing}; the file holds {sorted(arrays)} but setting "
            f"'{args.setting}' needs distmat (or qf and gf) and {label_keys}; save them with numpy.savez"
        )
    try:
        distmat = arrays["distmat"] if "distmat" in arrays else distance(arrays["qf"], arrays["gf"], args.metric)
        metrics = evaluate(
            distmat,
            *(arrays[key] for key in LABEL_KEYS),
            q_clothes=arrays.get("q_clothes"),
            g_clothes=arrays.get("g_clothes"),
            setting=args.setting,
            gallery_mode=args.gallery_mode,
            trials=args.trials,
            seed=args.seed,
        )
    except SpcreidError as exc:
        raise SpcreidError(f"{args.file}: {exc}") from exc
    metrics["source"] = "distmat" if "distmat" in arrays else f"qf/gf ({args.metric})"
    if args.out is not None:
        write_json(args.out, metrics)
    json.dump(metrics, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


def run_bench(args: argparse.Namespace) -> int:
    # lazy: start-up time
    import os
    import statistics
    import time

    import numpy as np

    from spcreid.evaluation.metrics import evaluate

    if min(args.nq, args.ng, args.repeats, args.cameras) < 1:
        raise SpcreidError("--nq, --ng, --repeats and --cameras must be positive")
    ids = args.ids or max(1, args.ng // 20)
    rng = np.random.default_rng(args.seed)
    distmat = rng.random((args.nq, args.ng), dtype=np.dtype(args.dtype))
    q_pids, g_pids = rng.integers(0, ids, args.nq), rng.integers(0, ids, args.ng)
    q_cams, g_cams = rng.integers(0, args.cameras, args.nq), rng.integers(0, args.cameras, args.ng)
    q_clothes, g_clothes = rng.integers(0, 3, args.nq), rng.integers(0, 3, args.ng)

    # CPU time beside wall time: on a shared machine the wall clock also measures the neighbours.
    seconds, cpu_seconds = [], []
    for _ in range(args.repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        metrics = evaluate(
            distmat, q_pids, g_pids, q_cams, g_cams, q_clothes, g_clothes, setting=args.setting, progress=False
        )
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
    report = {
        "nq": args.nq,
        "ng": args.ng,
        "ids": ids,
        "cameras": args.cameras,
        "setting": args.setting,
        "gallery_mode": "multi",
        "dtype": args.dtype,
        "repeats": args.repeats,
        "seconds_median": statistics.median(seconds),
        "seconds_all": seconds,
        "cpu_seconds_median": statistics.median(cpu_seconds),
        "cpu_count": os.cpu_count(),
        "n_valid_queries": metrics["n_valid_queries"],
        "rank1": metrics["rank1"],
        "mAP": metrics["mAP"],
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def run_colour_histogram_reference(args) -> int:
    # lazy: start-up time
    from spcreid.data.manifest import read_manifest
    from spcreid.evaluation import evaluate_report
    from spcreid.evaluation.colour_histogram import colour_histogram_features
    from spcreid.evaluation.metrics_file import run_identity
    from spcreid.evaluation.run_evaluation import write_evaluation

    frame = read_manifest(args.manifest)
    rows = frame[frame["role"].isin(["query", "gallery"])].reset_index(drop=True)
    if rows.empty:
        raise SpcreidError(f"{args.manifest} has no query/gallery rows (role query or gallery); nothing to score")
    parsing = rows["parsing"].tolist() if "parsing" in rows and rows["parsing"].notna().all() else None
    features = colour_histogram_features(rows["path"].tolist(), bins=args.bins, parsing=parsing)
    metrics, per_query = evaluate_report(args.protocol, features, rows)
    config = {
        "profile": args.profile,
        "dataset": args.dataset,
        "experiment": "colour-histogram",
        "seed": 0,
        "bins": args.bins,
        "person_pixels_only": parsing is not None,
    }
    metrics = {**run_identity(config), **metrics}
    write_evaluation(metrics, per_query, args.out, str(Path(args.out).with_suffix(".per_query.npz")))
    print(json.dumps({key: metrics[key] for key in metrics if key != "settings"}, sort_keys=True))
    return 0
