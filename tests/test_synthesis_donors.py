"""Donor choice: label-free (only image keys enter), distinct, never the source, deterministic per source."""

import numpy as np
import pandas as pd
import pytest

from spcreid.errors import SpcreidError
from spcreid.synthesis.donors import choose_donors
from spcreid.synthesis.precompute import plan_jobs


def keys(n=30):
    return [f"{pid:04d}-{cam:02d}.jpg" for pid in range(n // 3) for cam in range(3)]


def test_donors_are_distinct_and_never_the_source():
    names = keys()
    for i, chosen in enumerate(choose_donors(names, copies=4, seed=0)):
        assert len(set(chosen)) == 4 and i not in chosen
        assert all(0 <= d < len(names) for d in chosen)


def test_donors_spread_over_the_split():
    names = keys(300)
    counts = np.bincount(np.concatenate(choose_donors(names, copies=4, seed=1)), minlength=len(names))
    # Uniform draws: every image donates about 4 times, none is a favourite.
    assert counts.max() <= 14 and (counts > 0).mean() > 0.95


def test_choice_depends_on_seed_and_key_not_on_order():
    names = keys()
    by_key = {names[i]: [names[d] for d in ds] for i, ds in enumerate(choose_donors(names, 4, seed=7))}
    order = np.random.default_rng(0).permutation(len(names))
    shuffled = [names[i] for i in order]
    again = {shuffled[i]: [shuffled[d] for d in ds] for i, ds in enumerate(choose_donors(shuffled, 4, seed=7))}
    assert by_key == again
    other = {names[i]: [names[d] for d in ds] for i, ds in enumerate(choose_donors(names, 4, seed=8))}
    assert other != by_key


def test_permuting_identity_and_outfit_labels_changes_no_donor(tmp_path):
    """The production planner on a real manifest layout: pid / clothes_id columns do not enter the choice."""
    rows = pd.DataFrame(
        {
            "path": [str(tmp_path / "train" / name) for name in keys()],
            "pid": [int(name[:4]) for name in keys()],
            "clothes_id": [1 + int(name[5:7]) % 2 for name in keys()],
            "parsing": [str(tmp_path / "parsing" / name.replace(".jpg", ".png")) for name in keys()],
        }
    )
    shuffled = rows.copy()
    rng = np.random.default_rng(3)
    shuffled["pid"] = rng.permutation(rows["pid"].to_numpy())
    shuffled["clothes_id"] = rng.permutation(rows["clothes_id"].to_numpy())
    plan = [(str(j.source), str(j.donor), j.copy) for j in plan_jobs(rows, 4, 0, tmp_path / "out")]
    again = [(str(j.source), str(j.donor), j.copy) for j in plan_jobs(shuffled, 4, 0, tmp_path / "out")]
    assert plan == again and len(plan) == 4 * len(rows)


def test_too_few_images_or_copies_is_a_clear_error():
    with pytest.raises(SpcreidError, match="fewer than --copies 3"):
        choose_donors(["a.jpg", "b.jpg", "c.jpg"], copies=3, seed=0)
    with pytest.raises(SpcreidError, match="at least 1"):
        choose_donors(keys(), copies=0, seed=0)
    with pytest.raises(SpcreidError, match="not unique"):
        choose_donors(["a.jpg", "a.jpg", "b.jpg"], copies=1, seed=0)
