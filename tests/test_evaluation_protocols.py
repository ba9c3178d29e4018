"""Dataset protocols (PRCC, VC-Clothes, LTCC) on hand-built manifest rows and features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from spcreid.errors import SpcreidError
from spcreid.evaluation import evaluate, evaluate_protocol, evaluate_report


def unit(degrees):
    """2-d unit vector at the given angle: cosine distance 1 - cos(angle difference) by hand."""
    radians = np.deg2rad(degrees)
    return [np.cos(radians), np.sin(radians)]


def manifest(rows):
    """rows: (role, pid, camid, clothes_id, angle) -> manifest rows and aligned features."""
    frame = pd.DataFrame(
        [
            dict(path=f"img{i}.jpg", pid=p, camid=c, clothes_id=k, split="test", role=r)
            for i, (r, p, c, k, _) in enumerate(rows)
        ]
    )
    return frame, np.array([unit(angle) for *_, angle in rows])


# PRCC: gallery = camera A (0), one image per identity, identity 0 at 0 deg, identity 1 at 90 deg.
# Same-clothes queries (camera B) sit next to their identity -> all rank 1.
# Clothing-change queries (camera C): identity 0 at 80 deg is nearer identity 1 -> rank 2, AP 1/2;
#   identity 1 at 60 deg is nearer identity 1 (30 deg away vs 60) -> rank 1, AP 1.
PRCC_ROWS = [
    ("gallery", 0, 0, 0, 0),
    ("gallery", 1, 0, 0, 90),
    ("query", 0, 1, 0, 10),
    ("query", 1, 1, 0, 80),
    ("query", 0, 2, 1, 80),
    ("query", 1, 2, 1, 60),
]


def test_prcc_by_hand_single_shot():
    rows, features = manifest(PRCC_ROWS)
    results = evaluate_protocol("prcc", features, rows, gallery_mode="single", trials=4)
    assert set(results) == {"sc", "cc"}
    assert (results["sc"]["rank1"], results["sc"]["mAP"]) == (1.0, 1.0)
    assert results["cc"]["rank1"] == pytest.approx(0.5)
    assert results["cc"]["mAP"] == pytest.approx(0.75)
    for name, query_camera in (("sc", 1), ("cc", 2)):
        metrics = results[name]
        assert (metrics["setting"], metrics["rule"], metrics["protocol"]) == (name, "general", "prcc")
        assert (metrics["gallery_mode"], metrics["trials"], metrics["rank1_std"]) == ("single", 4, 0.0)
        assert (metrics["query_cameras"], metrics["n_valid_queries"], metrics["n_gallery"]) == ([query_camera], 2, 2)


def test_prcc_headline_mode_is_multi_shot():
    rows, features = manifest(PRCC_ROWS)
    assert {m["gallery_mode"] for m in evaluate_protocol("prcc", features, rows).values()} == {"multi"}


def test_prcc_report_scores_every_mode_once_by_hand():
    """Gallery G0 pid 0 at 0 deg, G1 pid 1 at 90 deg, G6 pid 0 at 45 deg; CC queries Q4 pid 0 at 80, Q5 pid 1 at 60.

    multi: Q4 ranks G1 (neg), G6, G0: first positive 2, AP (1/2 + 2/3) / 2 = 7/12; Q5 ranks G6 (neg), G1:
    rank 2, AP 1/2; so R1 0, mAP 13/24. single draws G0 or G6 for pid 0: with G0, Q4 rank 2 and Q5 rank 1
    (trial R1 1/2, mAP 3/4); with G6, both rank 2 (R1 0, mAP 1/2): per trial mAP = 1/2 + R1 / 2.
    """
    rows, features = manifest(PRCC_ROWS + [("gallery", 0, 0, 0, 45)])
    report, arrays = evaluate_report("prcc", features, rows, trials=20, seed=2, progress=False)
    assert (report["headline_gallery_mode"], report["gallery_modes"]) == ("multi", ["multi", "single", "single-cmc"])
    cc = report["settings"]["cc"]
    assert report["cc"] == cc["multi"]  # the flat keys tables read are the headline mode's
    assert (cc["multi"]["rank1"], cc["multi"]["n_gallery"]) == (0.0, 3)
    assert cc["multi"]["mAP"] == pytest.approx(13 / 24)
    single = cc["single"]
    assert (single["n_gallery"], single["n_gallery_full"], single["trials"]) == (2, 3, 20)
    assert 0 < single["rank1"] < 0.5 and single["mAP"] == pytest.approx(0.5 + single["rank1"] / 2)
    assert single["rank1_std"] > 0 and single["mAP"] >= single["rank1"]
    assert cc["single-cmc"]["rank1"] == single["rank1"]
    assert (cc["single-cmc"]["mAP"], cc["single-cmc"]["mAP_std"]) == (pytest.approx(13 / 24), 0.0)
    assert all(m["protocol"] == "prcc" and m["setting"] == "cc" for m in cc.values())
    assert report["settings"]["sc"]["multi"]["rank1"] == report["settings"]["sc"]["multi"]["mAP"] == 1.0
    # per query, paired by manifest row and path
    assert arrays["cc/query_row"].tolist() == [4, 5]
    assert arrays["cc/query_path"].tolist() == ["img4.jpg", "img5.jpg"]
    assert arrays["cc/multi/first_rank"].tolist() == [2, 2]
    assert arrays["cc/multi/ap"] == pytest.approx([7 / 12, 1 / 2])
    trial_ranks = arrays["cc/single/first_rank"]
    assert trial_ranks.shape == (20, 2) and (trial_ranks[:, 0] == 2).all()
    assert single["rank1"] == pytest.approx((trial_ranks == 1).mean())
    assert arrays["cc/single/ap"] == pytest.approx(1 / trial_ranks)
    # another headline mode changes the flat keys only
    again, _ = evaluate_report("prcc", features, rows, gallery_mode="single", trials=20, seed=2, progress=False)
    assert again["cc"] == single and again["settings"] == report["settings"]


def test_prcc_gallery_mode_is_a_choice():
    # a second gallery image of identity 0 at 45 deg: the CC query of identity 0 (80 deg) now has
    # identity 1 (10 deg away) first, then 45 deg (35 deg away, POS rank 2), then 0 deg (POS rank 3):
    #   AP = (1/2 + 2/3) / 2. The CC query of identity 1 (60 deg) has 45 deg first (negative),
    #   then 90 deg (POS rank 2): AP = 1/2.
    rows, features = manifest(PRCC_ROWS + [("gallery", 0, 0, 0, 45)])
    multi = evaluate_protocol("prcc", torch.as_tensor(features), rows, gallery_mode="multi")["cc"]
    assert multi["gallery_mode"] == "multi"
    assert multi["rank1"] == 0.0
    assert multi["mAP"] == pytest.approx(((1 / 2 + 2 / 3) / 2 + 1 / 2) / 2)
    single = evaluate_protocol("prcc", features, rows, gallery_mode="single", trials=30)["cc"]
    assert single["rank1_std"] > 0  # the identity-0 draw decides the identity-1 query's rank


# VC-Clothes: (role, pid, camid, clothes, angle)
VC_ROWS = [
    ("gallery", 0, 2, 0, 0),    # G0
    ("gallery", 0, 4, 1, 20),   # G1
    ("gallery", 1, 3, 0, 90),   # G2
    ("gallery", 1, 1, 0, 100),  # G3
    ("gallery", 1, 4, 1, 110),  # G4
    ("gallery", 0, 3, 1, 30),   # G5: same camera as Q0 -> junk for Q0 in every setting
    ("query", 0, 3, 0, 5),      # Q0
    ("query", 1, 2, 0, 95),     # Q1
    ("query", 0, 1, 0, 10),     # Q2
]  # fmt: skip


def test_vcclothes_cameras_and_rules():
    rows, features = manifest(VC_ROWS)
    results = evaluate_protocol("vcclothes", features, rows)
    assert set(results) == {"general", "sc", "cc"}
    # sc: cameras 2 and 3 -> gallery G0, G2, G5; queries Q0, Q1 (Q2 is on camera 1)
    #   Q0 positive G0 (cam 2, same clothes); G5 junk. Q1 positive G2.
    # cc: cameras 3 and 4 -> gallery G1, G2, G4, G5; query Q0 only; positive G1 (cam 4, other clothes)
    # general: every camera: Q2 (cam 1) has positives G0, G1, G5
    counts = {name: (m["n_gallery"], m["n_valid_queries"], m["n_skipped_queries"]) for name, m in results.items()}
    assert counts == {"sc": (3, 2, 0), "cc": (4, 1, 0), "general": (6, 3, 0)}
    assert results["sc"]["query_cameras"] == [2, 3] and results["cc"]["gallery_cameras"] == [3, 4]
    assert [results[name]["rule"] for name in ("general", "sc", "cc")] == ["general", "sc", "cc"]
    assert all(m["gallery_mode"] == "multi" for m in results.values())
    # by hand: every query's nearest non-junk image is a positive
    assert all(m["rank1"] == 1.0 for m in results.values())
    # Q2 at 10 deg: G0 (10 away) POS 1, G1 (10 away) POS 2, G5 (20 away) POS 3 -> AP 1
    assert results["general"]["mAP"] == 1.0


def test_vcclothes_matches_evaluate_on_the_hand_picked_subset():
    rows, _ = manifest(VC_ROWS)
    features = np.random.default_rng(0).normal(size=(len(rows), 8)).astype(np.float32)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    got = evaluate_protocol("vcclothes", features, rows)["cc"]
    query, gallery = [6], [1, 2, 4, 5]  # Q0; G1, G2, G4, G5 (cameras 3 and 4)
    distmat = 1 - features[query] @ features[gallery].T
    columns = {c: rows[c].to_numpy() for c in ("pid", "camid", "clothes_id")}
    expected = evaluate(
        distmat,
        columns["pid"][query], columns["pid"][gallery],
        columns["camid"][query], columns["camid"][gallery],
        columns["clothes_id"][query], columns["clothes_id"][gallery],
        setting="cc", progress=False,
    )  # fmt: skip
    for key in ("rank1", "rank5", "mAP", "n_valid_queries"):
        assert got[key] == pytest.approx(expected[key], abs=1e-6)


def test_ltcc_clothing_change_drops_same_clothes_matches():
    # query pid 0 cam 1 clothes 0 at 0 deg; gallery: pid 0 cam 2 same clothes at 5 deg,
    # pid 1 at 10 deg, pid 0 cam 3 other clothes at 20 deg.
    # general: POS(1), neg, POS(3) -> rank1 1, AP (1 + 2/3) / 2
    # cc: same-clothes image is junk -> neg, POS(2) -> rank1 0, AP 1/2
    rows, features = manifest(
        [("gallery", 0, 2, 0, 5), ("gallery", 1, 2, 0, 10), ("gallery", 0, 3, 1, 20), ("query", 0, 1, 0, 0)]
    )
    results = evaluate_protocol("ltcc", features, rows)
    assert set(results) == {"general", "cc"}
    assert (results["general"]["rank1"], results["general"]["mAP"]) == (1.0, pytest.approx((1 + 2 / 3) / 2))
    assert (results["cc"]["rank1"], results["cc"]["mAP"]) == (0.0, pytest.approx(0.5))


def test_protocol_errors():
    rows, features = manifest(PRCC_ROWS)
    with pytest.raises(SpcreidError, match="unknown evaluation protocol 'market'"):
        evaluate_protocol("market", features, rows)
    with pytest.raises(SpcreidError, match=r"lack column\(s\) \['clothes_id'\]"):
        evaluate_protocol("prcc", features, rows.drop(columns="clothes_id"))
    with pytest.raises(SpcreidError, match="features have shape"):
        evaluate_protocol("prcc", features[:-1], rows)
    with pytest.raises(SpcreidError, match="unknown gallery mode"):
        evaluate_protocol("prcc", features, rows, gallery_mode="all")
    queries_only = rows.assign(role="query")
    with pytest.raises(SpcreidError, match="found 6 query and 0 gallery rows"):
        evaluate_protocol("prcc", features, queries_only)
    no_camera_c = rows[rows.camid != 2]
    with pytest.raises(SpcreidError, match=r"setting 'cc': no query image on camera\(s\) \[2\]"):
        evaluate_protocol("prcc", features[no_camera_c.index], no_camera_c)


def test_vcclothes_report_is_multi_shot_only():
    rows, features = manifest(VC_ROWS)
    report, arrays = evaluate_report("vcclothes", features, rows, progress=False)
    assert report["gallery_modes"] == ["multi"] and set(report["settings"]) == {"general", "sc", "cc"}
    for name in ("general", "sc", "cc"):
        assert report[name] == report["settings"][name]["multi"]
        assert arrays[f"{name}/multi/first_rank"].shape == arrays[f"{name}/query_row"].shape
