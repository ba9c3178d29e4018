"""The CPU kernels' instruction-set pin (spcreid.cpu_isa): the same model.pt bytes whatever ISA the job starts with.

A different CPU cannot be had in a test; what can be had is the thing that differs between CPUs: which kernels the
libraries pick. The environment variables below are the libraries' own ISA caps, so a job started under
``ATEN_CPU_CAPABILITY=avx512`` runs what an AVX-512 machine runs and one under ``...=avx2`` what an AVX2 machine
runs. With the pin both must write the same bytes; without it (``SPCREID_CPU_ISA=native``) they must not, on a CPU
that has AVX-512, which shows that the comparison can fail.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spcreid.cli import main as spcreid_main
from spcreid.cpu_isa import LEVELS, VARIABLE, pin_cpu_isa
from spcreid.errors import SpcreidError

REPO = Path(__file__).resolve().parents[1]
CAPS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_CBWR", "OPENBLAS_CORETYPE")
# What an AVX-512 and an AVX2-only CPU would each run, as the libraries' own caps.
AS_AVX512 = {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "ATEN_CPU_CAPABILITY": "avx512"}
AS_AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}


def test_pin_sets_every_cap_and_overrides_the_callers():
    environ = {"ATEN_CPU_CAPABILITY": "avx512", "PATH": "/bin"}
    assert pin_cpu_isa(environ) == "avx2"
    assert environ == {
        "PATH": "/bin",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "ATEN_CPU_CAPABILITY": "avx2",
        "MKL_CBWR": "AVX2",
        "OPENBLAS_CORETYPE": "Haswell",
    }


def test_native_leaves_the_environment_alone():
    environ = {VARIABLE: " Native ", "ATEN_CPU_CAPABILITY": "avx512"}
    assert pin_cpu_isa(environ) == "native"
    assert environ == {VARIABLE: " Native ", "ATEN_CPU_CAPABILITY": "avx512"}
    assert LEVELS["native"] == {}


def test_unknown_level_is_one_clear_error(monkeypatch, capsys):
    with pytest.raises(SpcreidError, match=r"SPCREID_CPU_ISA='avx9': use one of avx2, native"):
        pin_cpu_isa({VARIABLE: "avx9"})
    monkeypatch.setenv(VARIABLE, "avx9")
    assert spcreid_main(["--version"]) == 2
    assert capsys.readouterr().err.startswith("spcreid: error: SPCREID_CPU_ISA='avx9'")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A toy set with copies and a params file whose embedded profile trains in seconds from random weights."""
    root = tmp_path_factory.mktemp("isa")
    for argv in (
        ["make-toy-data", "--out", str(root / "data"), "--seed", "5", "--identities", "40", "--test-identities"]
        + ["10", "--images-per-camera", "2", "--height", "64", "--width", "32", "--quiet"],
        ["prepare-data", "--dataset", "toy", "--root", str(root / "data"), "--out", str(root / "manifest.csv")],
        ["synthesize", "--manifest", str(root / "manifest.csv"), "--out", str(root / "synth"), "--copies", "2"],
    ):
        assert spcreid_main(argv) == 0
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    profile = params["profiles"]["embedded"]
    profile["train"].update(pretrained=None, pack_images=False)
    profile.pop("pretrain", None)
    profile["method"].update(k1=6, k2=2)
    params["method"].update(P=4, K=2, S=2)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def train_bytes(root: Path, name: str, env: dict[str, str]) -> str:
    """sha256 of model.pt of the full model (conv, batch norm, both losses), 2 epochs x 2 iterations, clustering."""
    clean = {key: value for key, value in os.environ.items() if key not in CAPS and key != VARIABLE}
    out = root / name
    command = [sys.executable, "-m", "spcreid.cli", "train", "--params", str(root / "params.yaml")]
    command += ["--dataset", "prcc", "--experiment", "full", "--seed", "3", "--manifest", str(root / "manifest.csv")]
    command += ["--synthesis", str(root / "synth"), "--epochs", "2", "--iters", "2", "--skip-evaluation"]
    command += ["--threads", "1", "--out", str(out)]
    done = subprocess.run(command, env={**clean, **env}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return hashlib.sha256((out / "model.pt").read_bytes()).hexdigest()


def cpu_has_avx512() -> bool:
    import torch

    return torch.backends.cpu.get_cpu_capability() == "AVX512" or "avx512f" in Path("/proc/cpuinfo").read_text()


@pytest.mark.slow
def test_same_model_bytes_under_two_isa_settings(tiny_run):
    pinned = {train_bytes(tiny_run, f"pinned-{n}", env) for n, env in (("512", AS_AVX512), ("2", AS_AVX2), ("0", {}))}
    assert len(pinned) == 1
    if not cpu_has_avx512():
        pytest.skip("this CPU has no AVX-512: both settings run the same kernels even unpinned (control not shown)")
    # The control: the same two settings, unpinned, give different weights on this CPU.
    native = {VARIABLE: "native"}
    assert train_bytes(tiny_run, "native-512", {**native, **AS_AVX512}) != train_bytes(
        tiny_run, "native-2", {**native, **AS_AVX2}
    )
