"""Loaders: real layouts in tmp_path -> manifests with hand-assigned labels and roles."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from spcreid.data.manifest import read_manifest
from spcreid.data.registry import load_dataset
from spcreid.errors import SpcreidError
from test_data_trees import TREES, VCCLOTHES_FILES, build_tree, expected_rows, run_cli, write_image, write_parsing


def as_tuples(frame: pd.DataFrame) -> list[tuple]:
    return [tuple(r) for r in frame[["path", "pid", "camid", "clothes_id", "split", "role"]].itertuples(index=False)]


@pytest.mark.parametrize("name", ["prcc", "vcclothes", "ltcc"])
def test_manifest_matches_hand_labels(tmp_path, name):
    root = build_tree(tmp_path / "raw", TREES[name])
    frame = load_dataset(name, root)
    assert as_tuples(frame) == expected_rows(root.absolute(), TREES[name])
    assert "parsing" not in frame.columns


@pytest.mark.parametrize("name", ["prcc", "vcclothes", "ltcc"])
def test_order_does_not_depend_on_creation_order(tmp_path, name):
    forward = load_dataset(name, build_tree(tmp_path / "a", TREES[name]))
    backward = load_dataset(name, build_tree(tmp_path / "b", TREES[name], reverse=True))
    strip = lambda frame, root: [p.removeprefix(str(root)) for p in frame["path"]]  # noqa: E731
    assert strip(forward, tmp_path / "a") == strip(backward, tmp_path / "b")
    assert forward.drop(columns="path").equals(backward.drop(columns="path"))


def test_prcc_roles_and_clothes(tmp_path):
    frame = load_dataset("prcc", build_tree(tmp_path, TREES["prcc"]))
    test = frame[frame["split"] == "test"]
    # camera A is the gallery; B (same clothes as A) and C (changed clothes) are the queries
    assert set(test[test["role"] == "gallery"]["camid"]) == {0}
    assert set(test[test["role"] == "query"]["camid"]) == {1, 2}
    assert set(frame[frame["camid"] == 2]["clothes_id"]) == {1}
    assert set(frame[frame["camid"] < 2]["clothes_id"]) == {0}


@pytest.mark.parametrize(
    "name, decoy",
    [
        # parent folders that look like image names of the same dataset must not leak into labels
        ("vcclothes", "9999-04-09-99.jpg"),
        ("ltcc", "999_9_c9_999999.png"),
        ("prcc", "C_cropped_rgb999.jpg"),
    ],
)
def test_labels_come_from_basename_only(tmp_path, name, decoy):
    root = build_tree(tmp_path / decoy / "raw", TREES[name])
    frame = load_dataset(name, root)
    assert as_tuples(frame) == expected_rows(root.absolute(), TREES[name])
    assert 9999 not in set(frame["pid"]) and 999 not in set(frame["pid"])


def test_parsing_column_mirrors_root(tmp_path):
    root = build_tree(tmp_path / "raw", VCCLOTHES_FILES)
    parsing_root = tmp_path / "parsing"
    for rel, *_ in VCCLOTHES_FILES:
        write_parsing((parsing_root / rel).with_suffix(".png"))
    frame = load_dataset("vcclothes", root, parsing_root=parsing_root)
    for path, parsing in zip(frame["path"], frame["parsing"]):
        rel = Path(path).relative_to(root.absolute())
        assert parsing == str((parsing_root.absolute() / rel).with_suffix(".png"))


def test_missing_parsing_maps_are_named(tmp_path):
    root = build_tree(tmp_path / "raw", VCCLOTHES_FILES)
    parsing_root = tmp_path / "parsing"
    for rel, *_ in VCCLOTHES_FILES[1:]:
        write_parsing((parsing_root / rel).with_suffix(".png"))
    with pytest.raises(SpcreidError, match=r"(?s)1 of 9 parsing maps are missing.*0001-01-01-01\.png"):
        load_dataset("vcclothes", root, parsing_root=parsing_root)


def test_toy_reads_parsing_maps_from_root_parsing(tmp_path):
    build_tree(tmp_path, VCCLOTHES_FILES)
    for rel, *_ in VCCLOTHES_FILES:
        write_parsing((tmp_path / "parsing" / rel).with_suffix(".png"))
    frame = load_dataset("toy", tmp_path)
    assert frame["parsing"].iloc[0].startswith(str(tmp_path.absolute() / "parsing" / "VC-Clothes"))
    assert as_tuples(frame) == expected_rows(tmp_path.absolute(), VCCLOTHES_FILES)


def test_toy_without_parsing_maps_fails(tmp_path):
    build_tree(tmp_path, VCCLOTHES_FILES)
    with pytest.raises(SpcreidError, match="9 of 9 parsing maps are missing"):
        load_dataset("toy", tmp_path)


def test_bad_names_fail_listing_every_file(tmp_path):
    root = build_tree(tmp_path, VCCLOTHES_FILES)
    write_image(root / "VC-Clothes/train/0001-01-01.jpg")
    write_image(root / "VC-Clothes/query/0005-07-01-01.jpg")  # camera 7 does not exist
    with pytest.raises(SpcreidError) as info:
        load_dataset("vcclothes", root)
    assert "0001-01-01.jpg: file name does not match PID-CAM-CLOTHES-IDX.jpg" in str(info.value)
    assert "0005-07-01-01.jpg: camera 7 is outside 1..4" in str(info.value)


def test_unknown_dataset_lists_choices(tmp_path):
    with pytest.raises(SpcreidError, match="unknown dataset 'market'.*prcc, vcclothes, ltcc, toy"):
        load_dataset("market", tmp_path)


def test_prepare_data_writes_manifest_and_summary(tmp_path, capsys):
    root = build_tree(tmp_path / "raw", TREES["prcc"])
    out = tmp_path / "manifests" / "prcc.csv"
    assert run_cli(["prepare-data", "--dataset", "prcc", "--root", str(root), "--out", str(out)]) == 0
    frame = read_manifest(out)
    assert as_tuples(frame) == expected_rows(root.resolve(), TREES["prcc"])
    printed = capsys.readouterr().out
    assert "prcc: 12 images, 4 ids" in printed
    # the gallery row of the summary: split test, role gallery, 2 ids, 2 images
    assert any(line.split() == ["test", "gallery", "2", "2"] for line in printed.splitlines())
    assert [p.name for p in out.parent.iterdir()] == ["prcc.csv"]  # no temporary left behind


def test_prepare_data_error_leaves_no_output(tmp_path, capsys):
    out = tmp_path / "prcc.csv"
    assert run_cli(["prepare-data", "--dataset", "prcc", "--root", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not out.exists()


def test_paths_resolve_like_pathlib_with_symlinked_folders(tmp_path):
    """resolve_file (manifests, synthesis indexes) gives Path.resolve()'s answer for every folder layout."""
    from spcreid.io import resolve_file

    (tmp_path / "real" / "train").mkdir(parents=True)
    (tmp_path / "real" / "train" / "a.jpg").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "elsewhere" / "deep").mkdir(parents=True)
    (tmp_path / "jump").symlink_to(tmp_path / "elsewhere" / "deep", target_is_directory=True)
    cases = [
        ("link/train/a.jpg", tmp_path),  # a symlinked folder is followed
        ("../real/train/a.jpg", tmp_path / "link"),
        ("jump/../x.jpg", tmp_path),  # ".." after a symlink leaves its target, not the link's folder
        ("train/./a.jpg", tmp_path / "real"),
    ]
    for relative, base in cases:
        assert resolve_file(relative, base) == str((base / relative).resolve()), relative
    assert resolve_file("jump/../x.jpg", tmp_path) == str(tmp_path.resolve() / "elsewhere" / "x.jpg")
