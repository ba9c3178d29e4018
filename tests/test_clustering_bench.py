"""`spcreid bench pseudo-labels` and its synthetic features."""

import json
import subprocess
import sys

import numpy as np

from spcreid.cli import main
from spcreid.clustering.bench import synthetic_clustered_features


def test_synthetic_features_are_normalised_clustered_and_seeded():
    x = synthetic_clustered_features(200, 256, clusters=5, seed=1)
    assert x.shape == (200, 256) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(x, synthetic_clustered_features(200, 256, clusters=5, seed=1))
    assert not np.array_equal(x, synthetic_clustered_features(200, 256, clusters=5, seed=2))
    # Default noise: members of a cluster meet at cosine ~0.5, strangers at ~0, so each point's
    # best match (other than itself) is far more similar than a typical pair.
    sim = x @ x.T
    np.fill_diagonal(sim, -1)
    assert np.median(sim.max(axis=1)) > 0.4
    assert abs(np.median(sim)) < 0.1


def test_bench_command_prints_the_figures(capsys):
    code = main(["bench", "pseudo-labels", "--n", "400", "--dim", "64", "--clusters", "8", "--no-progress"])
    assert code == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["n"] == 400 and figures["dim"] == 64
    assert figures["n_clusters"] == 8  # well-separated synthetic identities are all found
    assert 0 <= figures["n_outliers"] < 400
    # Timed figures are only checked for presence and sign: sums of rounded times flake.
    assert figures["seconds"] >= 0 and figures["stage_seconds"]
    assert all(value >= 0 for value in figures["stage_seconds"].values())
    assert figures["peak_rss_mb"] > 10


def test_bench_rejects_bad_sizes(capsys):
    assert main(["bench", "pseudo-labels", "--n", "0", "--no-progress"]) == 2
    assert "--n" in capsys.readouterr().err


def test_peak_rss_sees_a_large_allocation():
    # A fresh interpreter, so the peak is not already set by earlier tests.
    script = (
        "import numpy as np; from spcreid.clustering.bench import peak_rss_mb; "
        "block = np.ones(300 * 2**20 // 8); print(peak_rss_mb())"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert 300 <= float(out) < 3000
