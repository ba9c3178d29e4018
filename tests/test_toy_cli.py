"""`spcreid make-toy-data`, `toy-contact-sheet` and `toy-baseline` through the real entry point."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from spcreid.cli import main

SMALL_ARGS = ["--identities", "4", "--images-per-camera", "2", "--height", "64", "--width", "32", "--seed", "1"]


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--identities", "1"], "--identities"),
        (["--images-per-camera", "1"], "--images-per-camera"),
        (["--height", "10"], "--height"),
    ],
)
def test_bad_arguments_exit_2_with_a_one_line_message(tmp_path, capsys, args, flag):
    out = tmp_path / "toy"
    assert main(["make-toy-data", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spcreid make-toy-data: error:") and flag in err and "\n" not in err
    assert not out.exists()


def test_make_toy_data_writes_dataset_and_contact_sheet_then_is_a_no_op(tmp_path, capsys):
    out, sheet = tmp_path / "toy", tmp_path / "sheet.png"
    assert main(["make-toy-data", "--out", str(out), *SMALL_ARGS, "--quiet", "--contact-sheet", str(sheet)]) == 0
    assert len(list((out / "VC-Clothes").rglob("*.jpg"))) == 4 * 4 * 2
    assert len(list((out / "parsing" / "VC-Clothes").rglob("*.png"))) == 4 * 4 * 2
    with Image.open(sheet) as image:
        # 4 people (rows) x (4 cameras + parsing) tiles of 2x-zoomed 32x64 images.
        assert image.width > 5 * 64 and image.height > 4 * 128
    assert "wrote" in capsys.readouterr().err

    assert main(["make-toy-data", "--out", str(out), *SMALL_ARGS, "--quiet"]) == 0
    assert "up to date" in capsys.readouterr().err


def test_contact_sheet_of_a_folder_that_is_not_a_toy_dataset(tmp_path, capsys):
    assert main(["toy-contact-sheet", "--data", str(tmp_path), "--out", str(tmp_path / "s.png")]) == 2
    assert "make-toy-data" in capsys.readouterr().err
    assert not (tmp_path / "s.png").exists()


def test_toy_baseline_prints_and_writes_sc_and_cc(tmp_path, capsys):
    out = tmp_path / "toy"
    assert main(["make-toy-data", "--out", str(out), *SMALL_ARGS, "--quiet"]) == 0
    capsys.readouterr()
    result_file = tmp_path / "baseline.json"
    assert main(["toy-baseline", "--data", str(out), "--bins", "4", "--out", str(result_file)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(result_file.read_text())
    assert printed["region"] == "person"
    assert {"sc", "cc", "general"} <= set(printed["metrics"])
    # 2 test people: SC queries come from cameras 2 and 3, CC from 3 and 4.
    assert printed["metrics"]["sc"]["n_valid_queries"] == 4
    assert 0.0 <= printed["metrics"]["cc"]["rank1"] <= 1.0


def test_bench_toy_generation_reports_timing(capsys):
    assert main(["bench", "toy-generation", *SMALL_ARGS]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 32 and report["seconds"] > 0
