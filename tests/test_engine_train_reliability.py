"""Training faults: a second trainer in one run folder, finalising a finished checkpoint, byte-identical
model files, and runs that diverge without a non-finite loss. Real (tiny) training runs on the toy set."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

import test_engine_train
from spcreid.engine import trainer as trainer_module
from spcreid.engine.checkpoint import save_model
from spcreid.engine.guards import (
    LOCK_NAME,
    RunFolderLocked,
    TrainingDiverged,
    run_folder_lock,
)
from spcreid.engine.trainer import train_run
from spcreid.errors import SpcreidError
from test_engine_train import tiny_config

toy = test_engine_train.toy
oracle_clusters = test_engine_train.oracle_clusters

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from spcreid.engine.guards import run_folder_lock
    with run_folder_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(120)
    """
)


@pytest.fixture
def other_trainer(tmp_path):
    """A live process holding a run folder's lock, as a leftover trainer of a killed Snakemake does."""
    run = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run)], stdout=subprocess.PIPE, text=True, env=os.environ
    )
    assert process.stdout.readline().strip() == "locked"
    yield run, process
    process.kill()
    process.wait()


def test_second_trainer_in_a_locked_run_folder_is_refused_and_touches_nothing(toy, other_trainer):
    run, process = other_trainer
    (run / "model.pt").write_bytes(b"the other trainer's")
    with pytest.raises(RunFolderLocked, match=rf"in use by another training process \(pid {process.pid}"):
        train_run(tiny_config("baseline"), toy["manifest"], run)
    assert (run / "model.pt").read_bytes() == b"the other trainer's"
    assert sorted(p.name for p in run.iterdir()) == sorted([LOCK_NAME, "model.pt"])


def test_lock_of_a_killed_trainer_does_not_block_the_rerun(toy, oracle_clusters, other_trainer):
    run, process = other_trainer
    process.send_signal(signal.SIGKILL)
    process.wait()
    train_run(tiny_config("baseline"), toy["manifest"], run)  # the kernel dropped the dead process's lock
    assert (run / "metrics.json").is_file()


def test_lock_is_held_for_the_whole_call(tmp_path):
    with run_folder_lock(tmp_path):
        with pytest.raises(RunFolderLocked):
            # A second open file description conflicts even within one process: flock is per open file.
            with run_folder_lock(tmp_path):
                pass
    with run_folder_lock(tmp_path):  # released on exit
        pass


def test_checkpoint_of_the_last_epoch_is_finalised_not_retrained(toy, oracle_clusters, tmp_path, monkeypatch):
    config = tiny_config("baseline", train__epochs=2)
    train_run(config, toy["manifest"], tmp_path)
    model = (tmp_path / "model.pt").read_bytes()
    log = (tmp_path / "log.jsonl").read_text()
    (tmp_path / "metrics.json").unlink()  # stopped while evaluating

    def no_training(self, epoch):
        raise AssertionError(f"epoch {epoch + 1} retrained")

    monkeypatch.setattr(trainer_module.Trainer, "train_epoch", no_training)
    train_run(config, toy["manifest"], tmp_path, resume=True)
    assert (tmp_path / "metrics.json").is_file()
    assert (tmp_path / "model.pt").read_bytes() == model
    assert (tmp_path / "log.jsonl").read_text() == log


def test_resume_refuses_a_checkpoint_with_more_epochs_than_configured(toy, oracle_clusters, tmp_path):
    train_run(tiny_config("baseline", train__epochs=2), toy["manifest"], tmp_path)
    with pytest.raises(SpcreidError, match="holds 2 epochs but train.epochs is 1"):
        train_run(tiny_config("baseline"), toy["manifest"], tmp_path, resume=True)


def test_identical_runs_write_byte_identical_model_files(toy, oracle_clusters, tmp_path):
    for name in ("a", "b"):
        train_run(tiny_config("baseline"), toy["manifest"], tmp_path / name)
    for name in ("model.pt", "checkpoint.pt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_model_file_names_no_temporary_file_inside(tmp_path):
    model = torch.nn.Linear(2, 2)
    save_model(tmp_path / "model.pt", model, {"arch": "x"})
    import zipfile

    names = zipfile.ZipFile(tmp_path / "model.pt").namelist()
    assert all(not name.startswith(".") for name in names), names
    assert not [p for p in tmp_path.iterdir() if p.name != "model.pt"]  # no temporary file left


def test_exploding_learning_rate_stops_the_run(toy, oracle_clusters, tmp_path):
    # lr 1e6 keeps the loss finite (features are normalised) while the weights reach 1e28.
    config = tiny_config("baseline", method__lr=1e6, train__epochs=2, train__warmup_epochs=0)
    with pytest.raises(TrainingDiverged, match=r"epoch 1: weight '.+' reached \|w\| = .*lower method.lr \(now 1000000"):
        train_run(config, toy["manifest"], tmp_path)
    assert not (tmp_path / "model.pt").exists() and not (tmp_path / "metrics.json").exists()
    assert not (tmp_path / "checkpoint.pt").exists()  # the diverged epoch is not kept


def test_non_finite_weights_stop_the_run(toy, oracle_clusters, tmp_path, monkeypatch):
    original = trainer_module.Trainer.train_step

    def poisoned_step(self, *args, **kwargs):
        terms = original(self, *args, **kwargs)
        with torch.no_grad():
            weight = next(self.model.parameters())  # channels-last: index it, a flat view does not exist
            weight[(0,) * weight.dim()] = float("nan")
        return terms

    monkeypatch.setattr(trainer_module.Trainer, "train_step", poisoned_step)
    with pytest.raises(TrainingDiverged, match=r"reached \|w\| = nan"):
        train_run(tiny_config("baseline"), toy["manifest"], tmp_path)
    assert not (tmp_path / "model.pt").exists()


def test_non_finite_features_stop_the_run_before_clustering(toy, oracle_clusters, tmp_path, monkeypatch):
    real = trainer_module.extract_tensor_features  # what the trainer clusters

    def nan_features(*args, **kwargs):
        features = real(*args, **kwargs)
        features[0, 0] = float("inf")
        return features

    monkeypatch.setattr(trainer_module, "extract_tensor_features", nan_features)
    with pytest.raises(TrainingDiverged, match="epoch 1: 1 of .* train features are NaN or inf"):
        train_run(tiny_config("baseline"), toy["manifest"], tmp_path)
    assert oracle_clusters == []  # stopped before clustering
