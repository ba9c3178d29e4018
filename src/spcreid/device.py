"""Pick the torch device a job runs on, refusing a GPU this build of torch has no kernels for.

A wheel built for sm_75..sm_120 imports fine on a V100 (sm_70) and only fails at the first kernel launch,
hours into a job and with an obscure message; checking the capability against ``torch.cuda.get_arch_list()``
turns that into one line before any work starts.
"""

from __future__ import annotations

import torch

from spcreid.errors import SpcreidError


def arch_supported(capability: tuple[int, int], arch_list: list[str]) -> bool:
    """Whether a GPU of compute ``capability`` can run kernels of a build compiled for ``arch_list``.

    ``sm_XY`` runs on exactly capability X.Y; ``compute_XY`` (PTX) is JIT-compiled for X.Y and newer.
    """
    major, minor = capability
    for arch in arch_list:
        kind, _, digits = arch.partition("_")
        if not digits.isdigit():
            continue
        built = (int(digits[:-1]), int(digits[-1]))
        if kind == "sm" and built == (major, minor):
            return True
        if kind == "compute" and built <= (major, minor):
            return True
    return False


def resolve_device(name: str, what: str = "this job", setting: str = "--device") -> torch.device:
    """``cpu``, ``cuda[:N]`` or ``auto`` as a torch.device, after checking that the GPU exists and is supported.

    The one device resolution of every command. ``auto`` is CUDA when torch sees a GPU (which must then pass
    the same checks), else the CPU. ``what`` names the job in the errors; ``setting`` names where ``name``
    came from (``--device``, or a params field such as ``train.device``).
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not name.startswith("cuda"):
        raise SpcreidError(f"{setting} {name}: use cpu, cuda, cuda:N or auto")
    if not torch.cuda.is_available():
        raise SpcreidError(
            f"{setting} {name}: {what} needs a GPU, but torch sees none (no CUDA GPU is visible); run on a GPU "
            "node or pass --device cpu"
        )
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SpcreidError(f"{setting} {name}: use cpu, cuda, cuda:N or auto") from None
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise SpcreidError(f"{setting} {name}: only {torch.cuda.device_count()} GPU(s) visible")
    capability = torch.cuda.get_device_capability(index)
    arch_list = torch.cuda.get_arch_list()
    if not arch_supported(capability, arch_list):
        gpu = torch.cuda.get_device_name(index)
        raise SpcreidError(
            f"{setting} {name}: {gpu} is sm_{capability[0]}{capability[1]}, but this torch {torch.__version__} "
            f"was built for {' '.join(arch_list)}; run on a GPU of a supported generation (sm_80+: A100, H100, H200)"
        )
    return device
