"""One device resolution for every command: cpu, cuda[:N] and auto, with the GPU capability check; no GPU needed."""

from __future__ import annotations

import pytest
import torch

from spcreid.device import resolve_device
from spcreid.errors import SpcreidError


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def v100(monkeypatch):
    """A visible GPU of compute capability 7.0 under a torch built for sm_75 and newer."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: (7, 0))
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_75", "sm_80", "sm_90", "sm_100", "sm_120"])
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Tesla V100-SXM2-32GB")


def test_cpu_and_auto_without_a_gpu_are_the_cpu(no_gpu):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")


def test_cuda_without_a_gpu_names_the_setting_and_the_job(no_gpu):
    with pytest.raises(SpcreidError, match=r"^--device cuda: training needs a GPU, but torch sees none"):
        resolve_device("cuda", "training")
    with pytest.raises(SpcreidError, match=r"^train.device cuda:1: training needs a GPU.*pass --device cpu"):
        resolve_device("cuda:1", "training", "train.device")


@pytest.mark.parametrize("name", ["tpu", "gpu", "cuda:x"])
def test_unknown_device_names_are_refused_naming_the_choices(name, v100):
    with pytest.raises(SpcreidError, match=rf"^--device {name}: use cpu, cuda, cuda:N or auto$"):
        resolve_device(name)


def test_auto_on_an_unsupported_gpu_is_refused_like_cuda(v100):
    for name in ("auto", "cuda", "cuda:0"):
        with pytest.raises(SpcreidError, match=r"Tesla V100-SXM2-32GB is sm_70, but this torch .* built for sm_75"):
            resolve_device(name)
    with pytest.raises(SpcreidError, match=r"only 1 GPU\(s\) visible"):
        resolve_device("cuda:3")
