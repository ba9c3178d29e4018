"""Donor choice: other outfits only, other identities first, deterministic per source."""

import pytest

from spcreid.errors import SpcreidError
from spcreid.synthesis.donors import choose_donors


def dataset(identities=5, outfits=2, images=3):
    keys, pids, clothes = [], [], []
    for pid in range(identities):
        for outfit in range(outfits):
            for idx in range(images):
                keys.append(f"{pid:04d}-{outfit}-{idx}.jpg")
                pids.append(pid)
                clothes.append(outfit)
    return keys, pids, clothes


def test_donors_are_distinct_outfits_of_other_identities_when_enough_exist():
    keys, pids, clothes = dataset()
    donors = choose_donors(keys, pids, clothes, copies=4, seed=0)
    assert len(donors) == len(keys)
    for i, chosen in enumerate(donors):
        assert len(chosen) == 4
        assert len({(pids[d], clothes[d]) for d in chosen}) == 4  # four different outfits
        assert all(pids[d] != pids[i] for d in chosen)


def test_repeated_outfits_only_when_the_split_has_too_few():
    keys, pids, clothes = dataset(identities=2, outfits=1, images=5)  # one other outfit, five images of it
    for i, chosen in enumerate(choose_donors(keys, pids, clothes, copies=3, seed=0)):
        assert len(set(chosen)) == 3 and all(pids[d] != pids[i] for d in chosen)


def test_same_identity_other_outfit_fills_in_when_few_identities():
    keys, pids, clothes = dataset(identities=2, outfits=2, images=1)  # 4 images: 2 other-id donors each
    donors = choose_donors(keys, pids, clothes, copies=3, seed=0)
    for i, chosen in enumerate(donors):
        other_id = [d for d in chosen if pids[d] != pids[i]]
        same_id = [d for d in chosen if pids[d] == pids[i]]
        assert len(other_id) == 2 and len(same_id) == 1
        assert clothes[same_id[0]] != clothes[i]  # never the source's own outfit
        assert i not in chosen


def test_too_few_candidates_is_a_clear_error():
    keys, pids, clothes = dataset(identities=1, outfits=2, images=1)
    with pytest.raises(SpcreidError, match="fewer than --copies 2"):
        choose_donors(keys, pids, clothes, copies=2, seed=0)
    with pytest.raises(SpcreidError, match="at least 1"):
        choose_donors(keys, pids, clothes, copies=0, seed=0)


def test_choice_depends_on_seed_and_key_not_on_order():
    keys, pids, clothes = dataset()
    by_key = {keys[i]: [keys[d] for d in ds] for i, ds in enumerate(choose_donors(keys, pids, clothes, 4, seed=7))}
    order = list(reversed(range(len(keys))))
    shuffled = choose_donors([keys[i] for i in order], [pids[i] for i in order], [clothes[i] for i in order], 4, seed=7)
    for j, ds in enumerate(shuffled):
        assert [keys[order[d]] for d in ds] == by_key[keys[order[j]]]
    other_seed = choose_donors(keys, pids, clothes, 4, seed=8)
    assert sum(a != [keys[d] for d in b] for a, b in zip(by_key.values(), other_seed)) > len(keys) // 2
