"""Single-shot gallery modes: sampling, trial averaging, and how they relate to multi-shot."""

from __future__ import annotations

import numpy as np
import pytest

from spcreid.evaluation import evaluate, single_shot_gallery

# One query: pid 1 on camera 1. Gallery, all on camera 0 (so nothing is junk):
#   g0 pid 1 at 0.1, g1 pid 2 at 0.3, g2 pid 1 at 0.5, g3 pid 3 at 0.7
# multi-shot: POS(1), neg, POS(3), neg -> rank1 = 1, AP = (1/1 + 2/3) / 2 = 5/6
# single-shot draws one pid-1 image per trial:
#   g0 drawn -> ranking g0, g1, g3 -> rank 1, AP 1
#   g2 drawn -> ranking g1, g2, g3 -> rank 2, AP 1/2
# so per trial AP = 1/2 + rank1 / 2, and rank-2 CMC is always 1.
TWO_SHOT_CASE = dict(
    distmat=np.array([[0.1, 0.3, 0.5, 0.7]]),
    q_pids=[1], g_pids=[1, 2, 1, 3],
    q_camids=[1], g_camids=[0, 0, 0, 0],
)  # fmt: skip


def test_multi_shot_by_hand():
    result = evaluate(**TWO_SHOT_CASE, ranks=(1, 2), progress=False)
    assert (result["rank1"], result["rank2"]) == (1.0, 1.0)
    assert result["mAP"] == pytest.approx(5 / 6)
    assert "rank1_std" not in result


def test_single_shot_by_hand():
    result = evaluate(**TWO_SHOT_CASE, gallery_mode="single", trials=200, seed=3, ranks=(1, 2), progress=False)
    assert 0.0 < result["rank1"] < 1.0  # both images of pid 1 get drawn in 200 trials
    assert result["mAP"] == pytest.approx(0.5 + result["rank1"] / 2)
    assert result["mAP_std"] == pytest.approx(result["rank1_std"] / 2)
    # rank1 per trial is 0 or 1, so its population std is sqrt(p (1 - p))
    assert result["rank1_std"] == pytest.approx(np.sqrt(result["rank1"] * (1 - result["rank1"])))
    assert (result["rank2"], result["rank2_std"]) == (1.0, 0.0)
    # n_gallery is the drawn gallery (one image of each of pids 1, 2, 3), not the full gallery of 4.
    assert (result["trials"], result["n_valid_queries"], result["n_gallery"], result["n_gallery_full"]) == (
        200,
        1,
        3,
        4,
    )


def test_single_cmc_takes_mAP_from_the_full_gallery():
    single = evaluate(**TWO_SHOT_CASE, gallery_mode="single", trials=50, seed=1, progress=False)
    mixed = evaluate(**TWO_SHOT_CASE, gallery_mode="single-cmc", trials=50, seed=1, progress=False)
    assert (mixed["rank1"], mixed["rank1_std"]) == (single["rank1"], single["rank1_std"])
    assert (mixed["mAP"], mixed["mAP_std"]) == (pytest.approx(5 / 6), 0.0)
    assert mixed["gallery_mode"] == "single-cmc"


def test_single_shot_is_deterministic_given_the_seed():
    first = evaluate(**TWO_SHOT_CASE, gallery_mode="single", trials=40, seed=11, progress=False)
    assert evaluate(**TWO_SHOT_CASE, gallery_mode="single", trials=40, seed=11, progress=False) == first
    others = [evaluate(**TWO_SHOT_CASE, gallery_mode="single", trials=40, seed=s, progress=False) for s in range(5)]
    assert len({r["rank1"] for r in others}) > 1


def random_problem(seed, one_image_per_id):
    rng = np.random.default_rng(seed)
    n_query, n_ids = 30, 25
    g_pids = np.arange(n_ids) if one_image_per_id else rng.integers(0, n_ids, 200)
    return dict(
        distmat=rng.random((n_query, g_pids.size)),
        q_pids=rng.integers(0, n_ids, n_query),
        g_pids=g_pids,
        q_camids=rng.integers(0, 2, n_query),
        g_camids=rng.integers(0, 2, g_pids.size),
        q_clothes=rng.integers(0, 2, n_query),
        g_clothes=rng.integers(0, 2, g_pids.size),
    )


@pytest.mark.parametrize("mode", ["single", "single-cmc"])
def test_single_shot_with_one_image_per_id_equals_multi_shot(mode):
    problem = random_problem(2, one_image_per_id=True)
    multi = evaluate(**problem, progress=False)
    single = evaluate(**problem, gallery_mode=mode, trials=3, progress=False)
    for key in ("rank1", "rank5", "rank10", "rank20", "mAP"):
        assert single[key] == pytest.approx(multi[key], abs=1e-12)
        assert single[f"{key}_std"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("setting", ["general", "cc", "sc"])
def test_pure_single_shot_never_has_rank1_above_mAP(setting):
    # one positive per query per trial: AP = 1 / rank >= the rank-1 hit, query by query
    problem = random_problem(4, one_image_per_id=False)
    result = evaluate(**problem, setting=setting, gallery_mode="single", trials=5, progress=False)
    assert result["mAP"] >= result["rank1"]


def test_queries_whose_drawn_image_is_junk_drop_out_of_that_trial():
    # q0 pid 1 cam 0; pid 1 has a same-camera image (junk) and an other-camera one (positive):
    # in a trial drawing the junk image q0 has no positive. q1 (pid 2) always has its positive.
    case = dict(
        distmat=np.array([[0.1, 0.2, 0.9], [0.9, 0.8, 0.1]]),
        q_pids=[1, 2], g_pids=[1, 1, 2],
        q_camids=[0, 0], g_camids=[0, 1, 1],
    )  # fmt: skip
    result = evaluate(**case, gallery_mode="single", trials=100, seed=0, progress=False)
    assert (result["n_valid_queries"], result["n_skipped_queries"]) == (2, 0)
    assert 0 < result["n_skipped_query_trials"] < 100
    # whenever q0 takes part it ranks its positive first, and so does q1
    assert (result["rank1"], result["mAP"]) == (1.0, 1.0)


def test_single_shot_gallery_draws_one_image_per_identity_in_pid_order():
    g_pids = np.array([7, 3, 7, 5, 3, 7])
    rng = np.random.default_rng(0)
    draws = np.array([single_shot_gallery(g_pids, rng) for _ in range(300)])
    assert draws.shape == (300, 3)
    np.testing.assert_array_equal(g_pids[draws], np.tile([3, 5, 7], (300, 1)))
    assert set(draws[:, 0]) == {1, 4} and set(draws[:, 1]) == {3} and set(draws[:, 2]) == {0, 2, 5}
    # roughly uniform within an identity: each of pid 7's three images about 100 times in 300
    counts = np.bincount(draws[:, 2], minlength=6)[[0, 2, 5]]
    assert counts.min() > 60
    again = np.random.default_rng(0)
    np.testing.assert_array_equal(single_shot_gallery(g_pids, again), draws[0])


def test_all_modes_in_one_pass_equal_each_mode_alone():
    from spcreid.evaluation import score_modes

    modes = ("multi", "single", "single-cmc")
    together, per_query = score_modes(**TWO_SHOT_CASE, modes=modes, trials=30, seed=4, ranks=(1, 2), progress=False)
    assert list(together) == list(modes)
    for mode in modes:
        alone = evaluate(**TWO_SHOT_CASE, gallery_mode=mode, trials=30, seed=4, ranks=(1, 2), progress=False)
        assert together[mode] == alone
    # single-cmc: the single-shot trials' CMC, the multi-shot mAP
    assert together["single-cmc"]["rank1"] == together["single"]["rank1"]
    assert together["single-cmc"]["mAP"] == together["multi"]["mAP"] == pytest.approx(5 / 6)
    # per query: multi (n_query,), single (trials, n_query); rank 1 when g0 was drawn, else rank 2
    assert per_query["multi"]["first_rank"].tolist() == [1] and per_query["multi"]["ap"] == pytest.approx([5 / 6])
    ranks = per_query["single"]["first_rank"]
    assert ranks.shape == (30, 1) and set(ranks.ravel().tolist()) == {1, 2}
    assert per_query["single"]["ap"][:, 0] == pytest.approx(1 / ranks[:, 0])
    assert together["single"]["rank1"] == pytest.approx((ranks == 1).mean())
    assert np.array_equal(per_query["single-cmc"]["first_rank"], ranks)
    assert per_query["single-cmc"]["ap"] == pytest.approx([5 / 6])
