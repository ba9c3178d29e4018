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
    # Timed figures are rounded and vary with the machine's load: only their presence and sign are checked
    # (a ratio between two rounded or separately timed figures flakes on a busy machine).
    for key in (
        "decode_images_per_s",
        "data_images_per_s",
        "data_seconds_per_batch",
        "model_images_per_s",
        "model_seconds_per_step",
        "data_and_model_images_per_s",
        "data_and_model_seconds_per_step",
    ):
        assert result[key] > 0, key
    assert "data_to_model_ratio" in result


def test_input_pipeline_bench_rejects_bad_sizes(capsys):
    assert spcreid_main(["bench", "input-pipeline", "--groups", "0", "--model-steps", "0"]) == 2
    assert "--groups" in capsys.readouterr().err


def test_train_throughput_bench_times_the_training_step(capsys):
    argv = ["bench", "train-throughput", "--arch", "resnet18-tiny", "--batch", "2", "--height", "32", "--width", "16"]
    assert spcreid_main([*argv, "--steps", "1", "--clusters", "3", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["arch"], result["batch"], result["steps"]) == ("resnet18-tiny", 2, 1)
    assert result["precision"] == "float32, channels_last" and result["images_per_s"] > 0
    assert spcreid_main([*argv, "--clusters", "1"]) == 2
    assert "--clusters >= 2" in capsys.readouterr().err
