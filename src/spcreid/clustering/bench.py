"""Scaling benchmark of the pseudo-label step on synthetic clustered features."""

from __future__ import annotations

import resource
import sys
import time

import numpy as np
import psutil
import torch

from spcreid.clustering.pseudo_labels import pseudo_labels_with_stats
from spcreid.device import resolve_device
from spcreid.errors import SpcreidError

# Images per identity in the synthetic data: about what ReID training sets have (Market ~26,
# MSMT ~30, PRCC ~60 per person across cameras).
IMAGES_PER_CLUSTER = 40
GENERATION_CHUNK = 8192


def synthetic_clustered_features(n: int, dim: int, clusters: int, seed: int = 0, noise: float = 1.0) -> np.ndarray:
    """``n`` L2-normalised float32 features around ``clusters`` random unit centres.

    Each feature is a centre plus isotropic noise of total norm about ``noise``, so members of
    one cluster have cosine about 1 / (1 + noise^2) (0.5 by default) and strangers about 0.
    Cluster sizes vary, as identities in real data do.
    """
    if n < 1 or dim < 1 or clusters < 1:
        raise SpcreidError(f"--n, --dim and --clusters must be >= 1 (got {n}, {dim}, {clusters})")
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    membership = rng.integers(0, clusters, size=n)
    features = rng.standard_normal((n, dim), dtype=np.float32)
    # In place and in row chunks, so the benchmark's peak memory is not inflated by temporaries.
    for start in range(0, n, GENERATION_CHUNK):
        chunk = features[start : start + GENERATION_CHUNK]
        chunk *= np.float32(noise / np.sqrt(dim))
        chunk += centres[membership[start : start + GENERATION_CHUNK]]
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
    return features


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (ru_maxrss is KB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_bytes = peak if sys.platform == "darwin" else peak * 1024
    return max(peak_bytes, psutil.Process().memory_info().rss) / 2**20


def run_pseudo_label_benchmark(
    n: int,
    dim: int = 2048,
    clusters: int | None = None,
    eps: float = 0.4,
    seed: int = 0,
    threads: int | None = None,
    device: str | None = None,
    progress: bool = True,
) -> dict:
    """Time the full pseudo-label computation on synthetic features; returns the figures as a dict."""
    if threads is not None:
        torch.set_num_threads(threads)
    clusters = clusters or max(1, n // IMAGES_PER_CLUSTER)
    features = synthetic_clustered_features(n, dim, clusters, seed)
    start, cpu_start = time.perf_counter(), time.process_time()
    resolved = None if device is None else resolve_device(device, "the pseudo-label benchmark")
    result = pseudo_labels_with_stats(features, eps=eps, device=resolved, progress=progress)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return {
        "n": n,
        "dim": dim,
        "clusters_generated": clusters,
        "eps": eps,
        "seed": seed,
        "threads": torch.get_num_threads(),
        "seconds": round(seconds, 3),
        # CPU time next to wall time: on a shared machine the ratio shows how much CPU we got.
        "cpu_seconds": round(cpu_seconds, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "n_clusters": result.n_clusters,
        "n_outliers": result.n_outliers,
        "stage_seconds": {name: round(value, 3) for name, value in result.stats["stage_seconds"].items()},
        "knn_rows_redone_exactly": result.stats["knn_rows_redone_exactly"],
        "encoding_nonzeros": result.stats["encoding_nonzeros"],
        "stored_pairs": result.stats["stored_pairs"],
        "load_average_1min": round(psutil.getloadavg()[0], 2),
    }
