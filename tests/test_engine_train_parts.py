"""Pieces of the training engine: lr schedule, random-state capture, epoch log, relabelling."""

import json
import random

import numpy as np
import pytest
import torch

from spcreid.engine.checkpoint import (
    capture_rng_states,
    load_checkpoint,
    load_model_file,
    restore_rng_states,
    save_checkpoint,
)
from spcreid.engine.logging import EpochLog, read_epoch_log
from spcreid.engine.schedule import learning_rate
from spcreid.engine.store import load_packed
from spcreid.engine.trainer import relabel
from spcreid.errors import SpcreidError


def test_linear_warmup_from_lr_over_warmup_to_lr():
    # paper: 20 warm-up epochs, "from R / E_warmup to R"
    assert learning_rate(0, 3.5e-4, 20) == pytest.approx(3.5e-4 / 20)
    assert learning_rate(9, 3.5e-4, 20) == pytest.approx(3.5e-4 * 10 / 20)
    assert learning_rate(19, 3.5e-4, 20) == pytest.approx(3.5e-4)
    assert learning_rate(119, 3.5e-4, 20) == pytest.approx(3.5e-4)
    assert learning_rate(0, 1e-3, 0) == pytest.approx(1e-3)


def test_step_decay_after_warmup():
    lrs = [learning_rate(e, 1.0, 2, "step", steps=[4, 6], gamma=0.1) for e in range(8)]
    assert lrs == pytest.approx([0.5, 1.0, 1.0, 1.0, 0.1, 0.1, 0.01, 0.01])
    with pytest.raises(SpcreidError, match="method.lr_schedule"):
        learning_rate(0, 1.0, 0, "cosine")


def draw_everything(generator):
    return (
        torch.rand(3).tolist(),
        torch.rand(3, generator=generator).tolist(),
        np.random.rand(3).tolist(),
        [random.random() for _ in range(3)],
    )


def test_random_states_survive_a_checkpoint_file(tmp_path):
    generator = torch.Generator().manual_seed(5)
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    draw_everything(generator)  # move every stream away from its seed
    save_checkpoint(tmp_path / "c.pt", {"rng": capture_rng_states(generator)})
    expected = draw_everything(generator)

    other = torch.Generator().manual_seed(99)
    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    restore_rng_states(load_checkpoint(tmp_path / "c.pt")["rng"], other)
    assert draw_everything(other) == expected


def test_unreadable_checkpoint_is_a_user_error(tmp_path):
    (tmp_path / "c.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SpcreidError, match="without --resume"):
        load_checkpoint(tmp_path / "c.pt")
    with pytest.raises(SpcreidError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


class Payload:
    """Any pickled object: a file holding one is refused, never unpickled."""


def test_every_spcreid_file_goes_through_the_one_verified_loader(tmp_path):
    torch.save({"format": 99}, tmp_path / "future.pt")
    torch.save({"format": 1, "payload": Payload()}, tmp_path / "pickled.pt")
    readers = {
        "checkpoint": (load_checkpoint, "train again without --resume"),
        "model file": (load_model_file, "train the run again"),
        "packed images": (lambda path: load_packed(path, [["a.png"]], (4, 4), None), "rebuild it with"),
    }
    for what, (read, remedy) in readers.items():
        with pytest.raises(SpcreidError, match=rf"^{what} .*future.pt is not a spcreid file of format 1; {remedy}"):
            read(tmp_path / "future.pt")
        with pytest.raises(SpcreidError, match=rf"^{what} .*pickled.pt cannot be read \(UnpicklingError\); {remedy}"):
            read(tmp_path / "pickled.pt")


def test_epoch_log_keeps_whole_lines_and_truncates_on_resume(tmp_path):
    log = EpochLog(tmp_path / "log.jsonl")
    log.reset()
    for epoch in (1, 2, 3):
        log.append({"epoch": epoch, "loss": 1.0 / epoch})
    assert [json.loads(line)["epoch"] for line in (tmp_path / "log.jsonl").read_text().splitlines()] == [1, 2, 3]

    resumed = EpochLog(tmp_path / "log.jsonl")
    resumed.load(keep_epochs=2)  # the checkpoint holds 2 epochs: epoch 3's line is dropped
    assert [r["epoch"] for r in read_epoch_log(tmp_path / "log.jsonl")] == [1, 2]

    (tmp_path / "log.jsonl").write_text('{"epoch": 1}\n{broken\n')
    with pytest.raises(SpcreidError, match="line 2"):
        read_epoch_log(tmp_path / "log.jsonl")


def test_relabel_makes_clusters_contiguous_and_keeps_outliers():
    assert relabel(np.array([5, -1, 2, 5, 9, -1])).tolist() == [1, -1, 0, 1, 2, -1]
