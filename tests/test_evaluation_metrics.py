"""CMC / mAP under the general, clothing-change and same-clothes settings (multi-shot gallery)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spcreid.errors import SpcreidError
from spcreid.evaluation import distance, evaluate
from spcreid.evaluation import metrics as metrics_module


def reference_scores(distmat, q_pids, g_pids, q_cams, g_cams, q_clothes, g_clothes, setting, ranks):
    """Independent textbook implementation: one query at a time, full argsort, explicit junk list."""
    hits = {k: [] for k in ranks}
    aps = []
    for i in range(distmat.shape[0]):
        kept_is_positive = []
        for j in np.argsort(distmat[i], kind="stable"):
            if g_pids[j] != q_pids[i]:
                kept_is_positive.append(False)
                continue
            same_cam = g_cams[j] == q_cams[i]
            same_clothes = g_clothes[j] == q_clothes[i]
            junk = {
                "general": same_cam,
                "cc": same_cam or same_clothes,
                "sc": same_cam or not same_clothes,
            }[setting]
            if not junk:
                kept_is_positive.append(True)
        positive_ranks = np.flatnonzero(kept_is_positive) + 1
        if positive_ranks.size == 0:
            continue
        for k in ranks:
            hits[k].append(positive_ranks[0] <= k)
        aps.append(np.mean(np.arange(1, positive_ranks.size + 1) / positive_ranks))
    return {f"rank{k}": float(np.mean(hits[k])) for k in ranks} | {"mAP": float(np.mean(aps)), "n_valid": len(aps)}


def random_problem(seed, n_query=40, n_gallery=300, n_ids=15, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return dict(
        distmat=rng.random((n_query, n_gallery)).astype(dtype),
        q_pids=rng.integers(0, n_ids, n_query),
        g_pids=rng.integers(0, n_ids, n_gallery),
        q_camids=rng.integers(0, 3, n_query),
        g_camids=rng.integers(0, 3, n_gallery),
        q_clothes=rng.integers(0, 2, n_query),
        g_clothes=rng.integers(0, 2, n_gallery),
    )


# --- hand-computed cases --------------------------------------------------------------------------


def test_general_setting_by_hand():
    # q0 (pid 1, cam 0), gallery by distance: g0 pid1/cam0 junk, g1 pid2 neg, g2 pid1/cam1 POS,
    #   g3 pid3 neg, g4 pid1/cam2 POS, g5 pid2 neg. Without junk: neg, POS(2), neg, POS(4), neg
    #   -> first hit at rank 2, AP = (1/2 + 2/4) / 2 = 0.5
    # q1 (pid 2, cam 1): g5 pid2/cam2 at 0.1 is POS at rank 1 (g1 pid2/cam1 is junk) -> AP = 1
    # q2 (pid 3, cam 0): its only image g3 is on cam 0 -> junk -> no positive, skipped
    distmat = np.array(
        [
            [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
            [0.5, 0.9, 0.4, 0.3, 0.2, 0.1],
            [0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
        ]
    )
    g_pids, g_cams = [1, 2, 1, 3, 1, 2], [0, 1, 1, 0, 2, 2]
    result = evaluate(distmat, [1, 2, 3], g_pids, [0, 1, 0], g_cams, ranks=(1, 2, 5), progress=False)
    assert result["rank1"] == pytest.approx(0.5)
    assert result["rank2"] == pytest.approx(1.0)
    assert result["rank5"] == pytest.approx(1.0)
    assert result["mAP"] == pytest.approx(0.75)
    assert (result["n_valid_queries"], result["n_skipped_queries"]) == (2, 1)
    assert (result["setting"], result["gallery_mode"]) == ("general", "multi")


# One query: pid 1, camera 0, clothes 0. Gallery (pid, cam, clothes, distance):
#   g0 1/0/1 0.10  same cam                      -> junk in every setting
#   g1 1/1/0 0.20  other cam, same clothes       -> sc POS, cc junk, general POS
#   g2 2/1/0 0.30  negative
#   g3 1/2/1 0.40  other cam, other clothes      -> cc POS, sc junk, general POS
#   g4 3/1/0 0.35  negative
#   g5 1/1/1 0.60  other cam, other clothes      -> cc POS, sc junk, general POS
#   g6 1/2/0 0.70  other cam, same clothes       -> sc POS, cc junk, general POS
CLOTHES_CASE = dict(
    distmat=np.array([[0.10, 0.20, 0.30, 0.40, 0.35, 0.60, 0.70]]),
    q_pids=[1], g_pids=[1, 1, 2, 1, 3, 1, 1],
    q_camids=[0], g_camids=[0, 1, 1, 2, 1, 1, 2],
    q_clothes=[0], g_clothes=[1, 0, 0, 1, 0, 1, 0],
)  # fmt: skip


@pytest.mark.parametrize(
    "setting, first_rank, expected_ap",
    [
        # cc ranking without junk: g2 neg, g4 neg, g3 POS(3), g5 POS(4) -> AP = (1/3 + 2/4) / 2
        ("cc", 3, (1 / 3 + 2 / 4) / 2),
        # sc ranking without junk: g1 POS(1), g2 neg, g4 neg, g6 POS(4) -> AP = (1/1 + 2/4) / 2
        ("sc", 1, (1 + 2 / 4) / 2),
        # general: g1 POS(1), g2, g4, g3 POS(4), g5 POS(5), g6 POS(6) -> AP = (1 + 2/4 + 3/5 + 4/6) / 4
        ("general", 1, (1 + 2 / 4 + 3 / 5 + 4 / 6) / 4),
    ],
)
def test_clothes_settings_by_hand(setting, first_rank, expected_ap):
    result = evaluate(**CLOTHES_CASE, setting=setting, ranks=(1, 2, 3), progress=False)
    for k in (1, 2, 3):
        assert result[f"rank{k}"] == (1.0 if first_rank <= k else 0.0)
    assert result["mAP"] == pytest.approx(expected_ap, abs=1e-12)
    assert result["n_valid_queries"] == 1


def test_tie_between_positive_and_negative_counts_against_the_query():
    # positive and negative both at 0.5: the negative ranks first, whatever the gallery order
    for g_pids in ([1, 2], [2, 1]):
        result = evaluate([[0.5, 0.5]], [1], g_pids, [0], [1, 1], ranks=(1, 2), progress=False)
        assert (result["rank1"], result["rank2"], result["mAP"]) == (0.0, 1.0, 0.5)


# --- properties -----------------------------------------------------------------------------------


@pytest.mark.parametrize("setting", ["general", "cc", "sc"])
def test_perfect_ranking_scores_one(setting):
    problem = random_problem(3)
    same_pid = problem["q_pids"][:, None] == problem["g_pids"][None, :]
    # every same-identity image nearer than every other: positives lead once junk is removed
    problem["distmat"] = np.where(same_pid, 0.1, 0.9) + 0.01 * problem["distmat"]
    result = evaluate(**problem, setting=setting, progress=False)
    assert result["rank1"] == result["mAP"] == 1.0
    assert result["n_valid_queries"] > 0


@pytest.mark.parametrize("setting", ["general", "cc", "sc"])
def test_permuting_the_gallery_changes_nothing_even_with_ties(setting):
    problem = random_problem(4)
    problem["distmat"] = np.round(problem["distmat"] * 8)  # 9 distinct values: ties everywhere
    permutation = np.random.default_rng(5).permutation(problem["distmat"].shape[1])
    permuted = dict(problem, distmat=problem["distmat"][:, permutation])
    for key in ("g_pids", "g_camids", "g_clothes"):
        permuted[key] = problem[key][permutation]
    assert evaluate(**permuted, setting=setting, progress=False) == evaluate(**problem, setting=setting, progress=False)


@pytest.mark.parametrize("setting", ["general", "cc", "sc"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_agrees_with_reference_loop_on_random_data(setting, dtype):
    problem = random_problem(7, dtype=dtype)
    ranks = (1, 5, 10, 20)
    expected = reference_scores(*problem.values(), setting=setting, ranks=ranks)
    result = evaluate(**problem, setting=setting, ranks=ranks, progress=False)
    for key in [f"rank{k}" for k in ranks] + ["mAP"]:
        assert result[key] == pytest.approx(expected[key], abs=1e-8)
    assert result["n_valid_queries"] == expected["n_valid"]
    assert result["n_valid_queries"] + result["n_skipped_queries"] == 40


def test_chunking_does_not_change_the_result(monkeypatch):
    problem = random_problem(8)
    whole = evaluate(**problem, setting="cc", progress=False)
    monkeypatch.setattr(metrics_module, "CHUNK_ELEMENTS", 700)  # 2 queries per chunk
    assert evaluate(**problem, setting="cc", progress=False) == whole


def test_accepts_torch_tensors():
    problem = random_problem(9)
    as_tensors = {key: torch.as_tensor(value) for key, value in problem.items()}
    assert evaluate(**as_tensors, progress=False) == evaluate(**problem, progress=False)


# --- distances ------------------------------------------------------------------------------------


def test_distance_by_hand():
    qf = np.array([[2.0, 0.0]])  # cosine normalises: same as [1, 0]
    gf = np.array([[1.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])
    np.testing.assert_allclose(distance(qf, gf, "cosine"), [[0.0, 1.0, 2.0]], atol=1e-12)
    np.testing.assert_allclose(distance(qf, gf, "euclidean"), [[1.0, np.sqrt(13.0), 3.0]], atol=1e-12)


def test_cosine_and_euclidean_rank_normalised_features_alike():
    rng = np.random.default_rng(10)
    qf, gf = rng.normal(size=(20, 16)), rng.normal(size=(60, 16))
    qf /= np.linalg.norm(qf, axis=1, keepdims=True)
    gf /= np.linalg.norm(gf, axis=1, keepdims=True)
    cos, euc = distance(torch.as_tensor(qf), gf, "cosine"), distance(qf, gf, "euclidean")
    np.testing.assert_allclose(euc**2, 2 * cos, atol=1e-12)
    np.testing.assert_array_equal(np.argsort(cos, axis=1), np.argsort(euc, axis=1))
    assert distance(qf.astype(np.float32), gf.astype(np.float32)).dtype == np.float32


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(q_pids=[1, 2]), "q_pids has 2 entries"),
        (dict(g_camids=[0, 1, 1]), "g_camids has 3 entries"),
        (dict(g_clothes=[0]), "g_clothes has 1 entries"),
        (dict(distmat=np.array([[0.1, np.nan, 0.3, 0.4, 0.35, 0.6, 0.7]])), "NaN/inf"),
        (dict(distmat=np.array([[0.1, 0.2, 0.3, np.inf, 0.35, 0.6, 0.7]])), "first at query 0, gallery 3"),
        (dict(distmat=np.zeros(7)), "n_query, n_gallery"),
        (dict(setting="clothes"), "unknown evaluation setting 'clothes'"),
        (dict(gallery_mode="few-shot"), "unknown gallery mode 'few-shot'"),
        (dict(gallery_mode="single", trials=0), "trials must be a positive integer"),
        (dict(setting="cc", q_clothes=None), "pass q_clothes and g_clothes"),
        (dict(setting="sc", g_clothes=None), "pass q_clothes and g_clothes"),
        (dict(ranks=(1, 0)), "ranks must be positive integers"),
        (dict(g_pids=[5] * 7), "no query has a positive"),
    ],
)
def test_bad_input_raises_a_clear_error(change, message):
    with pytest.raises(SpcreidError, match=message.replace("(", r"\(").replace(")", r"\)")):
        evaluate(**(CLOTHES_CASE | change), progress=False)


def test_distance_errors():
    with pytest.raises(SpcreidError, match="unknown distance metric"):
        distance(np.ones((2, 3)), np.ones((2, 3)), "manhattan")
    with pytest.raises(SpcreidError, match="qf has 3-d features but gf has 4-d"):
        distance(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(SpcreidError, match="gf contains NaN"):
        distance(np.ones((2, 3)), np.full((2, 3), np.nan))
