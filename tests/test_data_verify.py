"""verify-data: each kind of fault is found and named, and all of them are listed in one pass."""

from __future__ import annotations

import json
import shutil

from spcreid.acquisition.verify import verify_dataset
from test_data_trees import TREES, VCCLOTHES_FILES, build_tree, run_cli, write_image, write_parsing

# hand counts of the tiny trees in test_data_trees
PRCC_COUNTS = {
    "train": {"ids": 2, "images": 5},
    "val": {"images": 2},
    "test": {"ids": 2, "images": 5},
    "test/A": {"images": 2},
    "test/B": {"images": 1},
    "test/C": {"images": 2},
}


def test_intact_tree_passes_with_hand_counts(tmp_path):
    root = build_tree(tmp_path, TREES["prcc"])
    report = verify_dataset("prcc", root, expected_counts=PRCC_COUNTS, workers=2)
    assert report.problems == [] and report.ok
    assert report.images_checked == 12
    assert report.counts["test/C"] == {"ids": 2, "images": 2}
    assert report.counts["val"] == {"ids": 2, "images": 2}


def test_published_counts_flag_every_mismatch(tmp_path):
    report = verify_dataset("prcc", build_tree(tmp_path, TREES["prcc"]), check_images=False)
    assert "train: 2 ids, expected 150" in report.problems
    assert "train: 5 images, expected 17896" in report.problems
    assert "test/B: 1 images, expected 3873" in report.problems
    assert len(report.problems) == 8  # all 8 published figures differ on a tiny tree


def test_count_override_names_the_group(tmp_path):
    root = build_tree(tmp_path, TREES["prcc"])
    shutil.rmtree(root / "prcc/rgb/train/012")
    report = verify_dataset("prcc", root, expected_counts=PRCC_COUNTS, check_images=False)
    assert report.problems == ["train: 1 ids, expected 2", "train: 3 images, expected 5"]


def test_no_counts_skips_the_comparison(tmp_path):
    report = verify_dataset("prcc", build_tree(tmp_path, TREES["prcc"]), check_counts=False, check_images=False)
    assert report.ok


def test_approximate_counts_only_warn(tmp_path):
    report = verify_dataset("vcclothes", build_tree(tmp_path, VCCLOTHES_FILES), check_images=False)
    assert report.ok
    assert "train: 2 ids, expected 256 (approximate figure)" in report.warnings


def test_missing_root_and_missing_dataset_folder(tmp_path):
    report = verify_dataset("ltcc", tmp_path / "absent")
    assert len(report.problems) == 1 and "root folder" in report.problems[0]
    (tmp_path / "raw").mkdir()
    report = verify_dataset("ltcc", tmp_path / "raw")
    assert report.problems[0].startswith(f"missing folder {tmp_path / 'raw' / 'LTCC_ReID'}")


def test_nested_extraction_gets_a_root_hint(tmp_path):
    build_tree(tmp_path / "download" / "extra", TREES["ltcc"])
    report = verify_dataset("ltcc", tmp_path / "download")
    assert report.problems[0].endswith(f"pass --root {tmp_path / 'download' / 'extra'}")


def test_empty_dataset_folder(tmp_path):
    (tmp_path / "prcc" / "rgb").mkdir(parents=True)
    report = verify_dataset("prcc", tmp_path)
    rgb = tmp_path / "prcc" / "rgb"
    assert report.problems == [f"folder {rgb} is empty; extract the PRCC archive there (see docs/DATASETS.md)"]


def test_wrong_layout_names_missing_and_unexpected_folders(tmp_path):
    root = build_tree(tmp_path, TREES["prcc"])
    shutil.rmtree(root / "prcc/rgb/val")
    # person folders directly under test/ instead of test/<camera>/
    write_image(root / "prcc/rgb/test/009/cropped_rgb001.jpg")
    shutil.rmtree(root / "prcc/rgb/test/B")
    (root / "prcc/rgb/sketch").mkdir()
    report = verify_dataset("prcc", root, check_counts=False)
    rgb = root / "prcc" / "rgb"
    assert report.problems[0].startswith(f"missing folder {rgb / 'val'}")
    assert any(p.startswith(f"{rgb / 'test' / '009'}: unexpected folder") for p in report.problems)
    assert any(p.startswith(f"{rgb / 'test' / 'B'}: missing folder") for p in report.problems)
    assert report.warnings == [f"unexpected folder {rgb / 'sketch'} ignored (expected only train, val, test)"]


def test_unparsable_names_are_all_listed(tmp_path):
    root = build_tree(tmp_path, TREES["ltcc"])
    write_image(root / "LTCC_ReID/train/001_1_11_015833.png")  # camera lacks its 'c'
    write_image(root / "LTCC_ReID/query/notes.png")
    write_image(root / "LTCC_ReID/test/120_1_c5_000010.jpg")  # right pattern, wrong format
    report = verify_dataset("ltcc", root, check_counts=False)
    bad = sorted(p.split(":")[0].rsplit("/", 1)[1] for p in report.problems)
    assert bad == ["001_1_11_015833.png", "120_1_c5_000010.jpg", "notes.png"]
    assert all("does not match PID_CLOTH_cCAM_FRAME.png" in p for p in report.problems)


def test_corrupt_images_are_named(tmp_path):
    root = build_tree(tmp_path, VCCLOTHES_FILES)
    truncated = root / VCCLOTHES_FILES[0][0]
    truncated.write_bytes(truncated.read_bytes()[:200])
    garbage = root / VCCLOTHES_FILES[5][0]
    garbage.write_bytes(b"this is not a jpeg" * 10)
    report = verify_dataset("vcclothes", root, check_counts=False, workers=3)
    assert len(report.problems) == 2
    assert report.problems[0].startswith(f"{truncated}: not a decodable image")
    assert report.problems[1].startswith(f"{garbage}: not a decodable image")


def test_toy_parsing_maps_are_checked(tmp_path):
    root = build_tree(tmp_path, VCCLOTHES_FILES)
    maps = [(root / "parsing" / rel).with_suffix(".png") for rel, *_ in VCCLOTHES_FILES]
    for path in maps[1:]:
        write_parsing(path)
    write_parsing(maps[2], size=(4, 4))
    write_parsing(maps[3], top_label=9)
    report = verify_dataset("toy", root)
    assert report.parsing_maps_checked == 9
    assert [p.split(":")[0] for p in report.problems] == [str(maps[0]), str(maps[2]), str(maps[3])]
    assert "parsing map is missing" in report.problems[0]
    assert "parsing map is 4x4, image is 8x16" in report.problems[1]
    assert "label 9" in report.problems[2]
    assert report.warnings == ["toy (VC-Clothes layout) has no published counts; counts not checked"]


def test_cli_lists_all_problems_and_writes_json(tmp_path, capsys):
    root = build_tree(tmp_path / "raw", VCCLOTHES_FILES)
    (root / VCCLOTHES_FILES[0][0]).write_bytes(b"broken")
    write_image(root / "VC-Clothes/gallery/0300_02_01_01.jpg")
    out = tmp_path / "report.json"
    code = run_cli(["verify-data", "--dataset", "vcclothes", "--root", str(root), "--no-counts", "--json", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert "2 problem(s)" in err and "0300_02_01_01.jpg" in err and "0001-01-01-01.jpg" in err
    saved = json.loads(out.read_text())
    assert saved["ok"] is False and len(saved["problems"]) == 2
    assert saved["counts"]["gallery"] == {"ids": 2, "images": 3}


def test_cli_passes_on_intact_tree(tmp_path, capsys):
    root = build_tree(tmp_path, TREES["ltcc"])
    assert run_cli(["verify-data", "--dataset", "ltcc", "--root", str(root), "--no-counts"]) == 0
    assert "OK (7 images decoded)" in capsys.readouterr().out


def test_count_mismatch_is_fatal_by_default_and_recorded(tmp_path, capsys):
    root = build_tree(tmp_path / "raw", TREES["prcc"])
    out = tmp_path / "strict.json"
    code = run_cli(["verify-data", "--dataset", "prcc", "--root", str(root), "--no-decode", "--json", str(out)])
    assert code == 1
    saved = json.loads(out.read_text())
    assert saved["ok"] is False and saved["count_mismatch_allowed"] is False
    assert "train: 5 images, expected 17896" in saved["problems"]
    assert len(saved["count_mismatches"]) == 8


def test_allow_count_mismatch_accepts_and_records_it(tmp_path, capsys):
    root = build_tree(tmp_path / "raw", TREES["prcc"])
    out = tmp_path / "relaxed.json"
    code = run_cli(
        [
            "verify-data",
            "--dataset",
            "prcc",
            "--root",
            str(root),
            "--no-decode",
            "--json",
            str(out),
            "--allow-count-mismatch",
        ]
    )
    assert code == 0
    saved = json.loads(out.read_text())
    assert saved["ok"] is True and saved["problems"] == []
    assert saved["count_mismatch_allowed"] is True
    assert "train: 2 ids, expected 150" in saved["count_mismatches"] and len(saved["count_mismatches"]) == 8
    assert "train: 2 ids, expected 150 (accepted: count mismatches allowed)" in saved["warnings"]
    assert "accepted: count mismatches allowed" in capsys.readouterr().out


def test_allow_count_mismatch_still_fails_on_other_problems(tmp_path):
    root = build_tree(tmp_path, TREES["prcc"])
    (root / TREES["prcc"][0][0]).write_bytes(b"broken")
    report = verify_dataset("prcc", root, allow_count_mismatch=True)
    assert report.count_mismatch_allowed and len(report.problems) == 1 and "A_cropped_rgb001.jpg" in report.problems[0]
