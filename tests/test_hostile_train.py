"""Hostile training runs and DAG plans: `spcreid train` with diverging settings, a locked run folder, bad
checkpoints and pretrained files; `snakemake -n` with a broken params.yaml or options. Each probe asserts one
error line naming the file or field, the exit status, and that the run folder keeps no final output."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

import test_engine_train
from hostile_helpers import assert_refused, snapshot, spcreid
from workflow_helpers import copy_workflow, snakemake

toy = test_engine_train.toy
oracle_clusters = test_engine_train.oracle_clusters
REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_params(path: Path, **method) -> Path:
    """The repository's params.yaml with the embedded profile shrunk to a one-iteration CPU run."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    embedded = params["profiles"]["embedded"]
    embedded["train"].update(height=32, width=16, epochs=1, iters_per_epoch=1, warmup_epochs=1, pretrained=None)
    embedded["method"].update(k1=6, k2=2)
    params["method"].update(P=4, K=2, S=2, **method)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def train(capsys, toy, params: Path, out: Path, *extra, experiment="baseline"):
    return spcreid(
        capsys,
        "train",
        "--params",
        params,
        "--dataset",
        "prcc",
        "--experiment",
        experiment,
        "--seed",
        "1",
        "--manifest",
        toy["manifest"],
        "--out",
        out,
        "--threads",
        "1",
        *extra,
    )


def assert_no_final_outputs(run: Path) -> None:
    assert not (run / "model.pt").exists() and not (run / "metrics.json").exists()
    assert not [p.name for p in run.glob(".*") if p.name != ".lock"]  # no temporary file


def test_exploding_learning_rate_is_an_error_not_a_finished_run(toy, oracle_clusters, tmp_path, capsys):
    # Defect 11: lr 1e6 used to finish with weights of 1e28 and exit status 0.
    params = tiny_params(tmp_path / "params.yaml", lr=1e6)
    run = tmp_path / "run"
    outcome = train(capsys, toy, params, run, "--epochs", "2")
    assert_refused(outcome, "train", "training diverged", "lower method.lr (now 1000000.0)")
    assert_no_final_outputs(run)


def test_second_trainer_in_the_same_run_folder(toy, tmp_path, capsys):
    run = tmp_path / "run"
    hold = textwrap.dedent("""
        import sys, time
        from spcreid.engine.guards import run_folder_lock
        with run_folder_lock(sys.argv[1]):
            print("locked", flush=True)
            time.sleep(120)
    """)
    holder = subprocess.Popen([sys.executable, "-c", hold, str(run)], stdout=subprocess.PIPE, text=True, env=os.environ)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = snapshot(run)
        outcome = train(capsys, toy, tiny_params(tmp_path / "params.yaml"), run)
        assert_refused(outcome, "train", run, f"another training process (pid {holder.pid}", "wait for it")
        assert snapshot(run) == before
    finally:
        holder.kill()
        holder.wait()


def finished_run(capsys, toy, tmp_path) -> Path:
    run = tmp_path / "run"
    assert train(capsys, toy, tiny_params(tmp_path / "params.yaml"), run).code == 0
    return run


def wrong_keys(path: Path) -> Path:
    torch.save({"not_a_layer.weight": torch.ones(2)}, path)
    return path


def truncated_weights(path: Path) -> Path:
    torch.save({"conv1.weight": torch.ones(64, 3, 7, 7)}, path)
    path.write_bytes(path.read_bytes()[:300])
    return path


TRAIN_PROBES = {
    # probe: (prepare (tmp_path, run dir) -> extra argv, fragments of the error line)
    "--epochs 0": (lambda t, r: ["--epochs", "0"], ["--epochs must be >= 1"]),
    "--threads 0": (lambda t, r: ["--threads", "0"], ["--threads must be >= 1"]),
    "unknown experiment": (lambda t, r: ["--experiment", "ful"], ["unknown experiment 'ful'"]),
    "augmenting experiment without --synthesis": (
        lambda t, r: ["--experiment", "full"],
        ["no --synthesis folder was given", "pass --synthesis DIR"],
    ),
    "missing manifest": (lambda t, r: ["--manifest", t / "none.csv"], ["none.csv"]),
    "corrupt checkpoint with --resume": (
        lambda t, r: (r.mkdir(), (r / "checkpoint.pt").write_bytes(b"PK\x03\x04junk"), ["--resume"])[-1],
        ["checkpoint.pt cannot be read", "train again without --resume"],
    ),
    "CUDA asked for on a machine without it": (lambda t, r: ["--device", "cuda"], ["no CUDA GPU is visible"]),
}


@pytest.mark.parametrize("probe", sorted(TRAIN_PROBES))
def test_bad_training_request_is_refused(probe, toy, tmp_path, capsys):
    prepare, fragments = TRAIN_PROBES[probe]
    if probe.startswith("CUDA") and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    run = tmp_path / "run"
    extra = prepare(tmp_path, run)
    before = snapshot(run)
    outcome = train(capsys, toy, tiny_params(tmp_path / "params.yaml"), run, *extra)
    assert_refused(outcome, "train", *fragments)
    after = snapshot(run)
    assert {k: v for k, v in after.items() if k != "train.lock"} == before
    assert_no_final_outputs(run) if run.exists() else None


@pytest.mark.parametrize("spoil, fragment", [(wrong_keys, "do not fit arch"), (truncated_weights, "cannot be read")])
def test_bad_pretrained_file_is_refused(spoil, fragment, toy, tmp_path, capsys):
    weights = spoil(tmp_path / "trunk.pth")
    params = tiny_params(tmp_path / "params.yaml")
    data = yaml.safe_load(params.read_text())
    data["profiles"]["embedded"]["train"]["pretrained"] = str(weights)
    params.write_text(yaml.safe_dump(data, sort_keys=False))
    run = tmp_path / "run"
    assert_refused(train(capsys, toy, params, run), "train", weights, fragment, "train.pretrained")
    assert_no_final_outputs(run)


def test_resume_with_a_checkpoint_of_another_configuration(toy, oracle_clusters, tmp_path, capsys):
    run = finished_run(capsys, toy, tmp_path)
    before = snapshot(run)
    other = tiny_params(tmp_path / "other.yaml", alpha=0.5)
    outcome = train(capsys, toy, other, run, "--resume")
    assert_refused(
        outcome,
        "train",
        run / "checkpoint.pt",
        "different configuration",
        "method.alpha: 0.3 -> 0.5",
        "rerun without --resume",
    )
    assert snapshot(run) == before  # the finished run is intact


def test_eps_with_no_clusters_is_refused(toy, tmp_path, capsys):
    params = tiny_params(tmp_path / "params.yaml", eps=1e-6)
    run = tmp_path / "run"
    outcome = train(capsys, toy, params, run)
    assert_refused(outcome, "train", "found 0 cluster(s)", "Change method.eps")
    assert_no_final_outputs(run)


# ---------------------------------------------------------------------------- the DAG (dry runs)


@pytest.fixture
def workdir(tmp_path):
    return copy_workflow(tmp_path / "wf")


def test_dag_refuses_duplicate_params_keys_before_any_job(workdir):
    params = workdir / "params.yaml"
    text = params.read_text()
    first = next(i + 1 for i, line in enumerate(text.splitlines()) if "full_eps0.6:" in line)
    params.write_text(text.replace("  full_eps0.7:", "  full_eps0.6:    {eps: 0.9}\n  full_eps0.7:", 1))
    result = snakemake(workdir, "-n")
    assert result.returncode == 1
    log = result.stdout + result.stderr
    assert f"key 'full_eps0.6' appears twice in one mapping (lines {first} and {first + 1})" in log
    assert "Traceback" not in log and not (workdir / "work").exists()


@pytest.mark.parametrize(
    "option, fragment",
    [
        ("profil=paper", "'profil' -> did you mean 'profile'?"),
        ("gallery_mode=all", "field 'gallery_mode': 'all' is not one of ['multi', 'single', 'single-cmc']"),
        ("main_image=docker://spcreid:latest", "field 'main_image': 'docker://spcreid:latest' does not match"),
    ],
)
def test_dag_refuses_bad_options(option, fragment, workdir):
    result = snakemake(workdir, "-n", "--config", option)
    assert result.returncode == 1
    log = result.stdout + result.stderr
    assert fragment in log and "Traceback" not in log


# ---------------------------------------------------------------------------- interrupt + resume, two trainers

# The real CLI in a child process, with the oracle clustering of test_engine_train as the only stand-in.
# In the second epoch the clustering announces itself in the file $WAITING and waits (up to a minute), and the
# test interrupts the child only then: the signal always lands in the same place, mid-run. (Without the wait a
# fast machine finished all epochs first and exited 0; signalling on the first checkpoint instead could land
# anywhere.)
ORACLE_CLI = textwrap.dedent("""
    import os
    import signal
    import sys
    import time
    import numpy as np
    import spcreid.clustering
    from spcreid.cli import main
    from spcreid.data.manifest import read_manifest

    frame = read_manifest(sys.argv[1])
    truth = np.unique(frame.loc[frame["role"] == "train", "pid"].to_numpy(), return_inverse=True)[1]
    calls = []

    def oracle(features, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            open(os.environ["WAITING"], "w").close()
            time.sleep(60)
        return truth

    spcreid.clustering.pseudo_labels = oracle
    # A background job (`make test &`) inherits SIGINT ignored; a user's Ctrl-C reaches a foreground trainer.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main(sys.argv[2:]))
""")


def test_sigint_then_resume_and_a_second_trainer_meanwhile(toy, oracle_clusters, tmp_path, capsys):
    import signal
    import time

    params = tiny_params(tmp_path / "params.yaml")
    run = tmp_path / "run"
    argv = [
        "train",
        "--params",
        params,
        "--dataset",
        "prcc",
        "--experiment",
        "baseline",
        "--seed",
        "1",
        "--manifest",
        toy["manifest"],
        "--out",
        run,
        "--threads",
        "1",
        "--epochs",
        "15",
    ]
    child = subprocess.Popen(
        [sys.executable, "-c", ORACLE_CLI, str(toy["manifest"]), *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "WAITING": str(tmp_path / "waiting")},
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "waiting").exists():
            assert child.poll() is None and time.monotonic() < deadline, child.stderr.read() if child.poll() else ""
            time.sleep(0.05)
        # A second trainer in the same folder (a rerun beside a leftover) is refused while the first runs.
        outcome = spcreid(capsys, *argv, "--resume")
        assert_refused(outcome, "train", run, f"pid {child.pid}")
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 130, err
    assert "spcreid train: interrupted" in err and "Traceback" not in err
    assert_no_final_outputs(run)
    # The log may hold one epoch more than the checkpoint (stopped between the two); resume trusts the checkpoint.
    done = int(torch.load(run / "checkpoint.pt", weights_only=True)["epoch"])
    assert 1 <= done < 15
    assert spcreid(capsys, *argv, "--resume").code == 0  # continues; the dead trainer's lock is gone
    epochs = [line for line in (run / "log.jsonl").read_text().splitlines()]
    assert len(epochs) == 15 and (run / "metrics.json").is_file()
    assert len(oracle_clusters) == 15 - done  # only the missing epochs were trained
