"""`spcreid bench input-pipeline` measures real batches of the real store and model step."""

from __future__ import annotations

import json

import pytest

from spcreid.cli import main as spcreid_main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_input_pipeline_bench_prints_measured_figures(capsys):
    argv = [
        "bench",
        "input-pipeline",
        "--arch",
        "resnet18-small",
        "--height",
        "32",
        "--width",
        "16",
        "--groups",
        "3",
        "--copies",
        "2",
        "--sources",
        "5",
        "--data-steps",
        "3",
        "--model-steps",
        "1",
        "--device",
        "cpu",
    ]
    assert spcreid_main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["batch_images"], result["views_per_group"], result["store_images"]) == (9, 3, 15)
    # 32x16 with the 0.125 crop margin is stored at 36x18; the uncropped sources at 32x16
    assert result["store"]["groups_shape"] == [5, 3, 3, 36, 18] and result["store"]["plain_shape"] == [5, 3, 32, 16]
    assert result["store"]["location"] == "cpu"
    for key in ("decode_images_per_s", "data_images_per_s", "model_images_per_s", "data_and_model_images_per_s"):
        assert result[key] > 0
    assert result["data_seconds_per_batch"] == pytest.approx(9 / result["data_images_per_s"], rel=0.01)
    # data + model cannot be faster than the model alone by more than timing noise
    assert result["data_and_model_images_per_s"] < 1.5 * result["model_images_per_s"]


def test_input_pipeline_bench_rejects_bad_sizes(capsys):
    assert spcreid_main(["bench", "input-pipeline", "--groups", "0", "--model-steps", "0"]) == 2
    assert "--groups" in capsys.readouterr().err
