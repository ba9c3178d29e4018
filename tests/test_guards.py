"""The one "refuse to resume with other settings" guard that parsing, synthesis and training share."""

from __future__ import annotations

import re

import pytest

from spcreid.errors import SpcreidError
from spcreid.guards import check_recorded_settings, read_recorded_settings

REFUSAL, REMEDY = "out holds a cache built with other settings", "use another --out or delete it"


def check(recorded, wanted, **options):
    check_recorded_settings(recorded, wanted, REFUSAL, REMEDY, **options)


def test_nothing_recorded_or_the_same_settings_pass():
    check(None, {"seed": 1})
    check({"seed": 1, "split": "train"}, {"split": "train", "seed": 1})


def test_every_difference_is_named_with_both_values_then_the_remedy():
    with pytest.raises(SpcreidError) as refused:
        check({"seed": 0, "copies": 4, "split": "train"}, {"seed": 1, "copies": 2, "split": "train"})
    assert str(refused.value) == (
        "out holds a cache built with other settings (copies: 4 -> 2; seed: 0 -> 1); use another --out or delete it"
    )


def test_sections_are_compared_setting_by_setting_except_those_that_may_change():
    saved = {"method": {"alpha": 0.3, "lr": 1e-3}, "train": {"epochs": 2, "device": "cpu"}, "seed": 1}
    longer = {"method": {"alpha": 0.3, "lr": 1e-3}, "train": {"epochs": 5, "device": "cuda"}, "seed": 1}
    check(saved, longer, may_change={"train.epochs", "train.device"})
    other = {**longer, "method": {"alpha": 0.5, "lr": 1e-3}, "dataset": "prcc"}
    with pytest.raises(SpcreidError, match=r"\(dataset: None -> 'prcc'; method.alpha: 0.3 -> 0.5\);"):
        check(saved, other, may_change={"train.epochs", "train.device"})


def test_only_the_given_fields_are_compared_in_their_order():
    check({"weights": "a.pth", "network": "schp"}, {"weights": "b.pth", "network": "schp"}, fields=("network",))
    with pytest.raises(SpcreidError, match=r"\(split: 'train' -> 'all'; network: 'schp' -> 'stand-in'\)"):
        check(
            {"network": "schp", "split": "train"}, {"network": "stand-in", "split": "all"}, fields=("split", "network")
        )


def test_recorded_settings_file(tmp_path):
    assert read_recorded_settings(tmp_path / "settings.json") is None  # a new output
    (tmp_path / "settings.json").write_text('{"seed": 1}')
    assert read_recorded_settings(tmp_path / "settings.json") == {"seed": 1}
    for content in ("{not json", "[1, 2]"):
        (tmp_path / "settings.json").write_text(content)
        with pytest.raises(
            SpcreidError, match=rf"settings.json is unreadable .*; delete {re.escape(str(tmp_path))} and rerun"
        ):
            read_recorded_settings(tmp_path / "settings.json")


def test_clear_if_changed_removes_only_the_steps_own_entries(tmp_path):
    from spcreid.guards import clear_if_changed

    (tmp_path / "copies" / "a").mkdir(parents=True)
    (tmp_path / "copies" / "a" / "x.png").write_bytes(b"png")
    (tmp_path / "index.csv").write_text("source,copy\n")
    (tmp_path / "keep.txt").write_text("user's")
    names = ("copies", "index.csv", "settings.json")
    assert clear_if_changed(tmp_path, {"copies": 4}, {"copies": 4}, names) == []
    assert (tmp_path / "copies" / "a" / "x.png").exists()
    assert clear_if_changed(tmp_path, None, {"copies": 2}, names) == []
    assert clear_if_changed(tmp_path, {"copies": 4}, {"copies": 2}, names) == ["copies: 4 -> 2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
