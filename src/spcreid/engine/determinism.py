"""Seeds and deterministic kernels: what makes a CPU run a pure function of its config and seed.

Every random choice of a training loop comes from the explicit ``torch.Generator`` that
``seed_everything`` returns; model initialisation from ``torch.manual_seed``; numpy's and Python's
generators are seeded too, for third-party code that draws from them.
"""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

from spcreid.cpu_isa import check_pin_in_force


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    return torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def deterministic_kernels(device: torch.device):
    """Deterministic kernels while training, the caller's setting restored afterwards.

    On CUDA a kernel without a deterministic version only warns: GPU runs favour speed and are
    reproducible up to float rounding; CPU runs are bit-exact, across CPUs too while the ISA pin is in force.
    """
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    else:
        check_pin_in_force()  # bit-exact on one CPU is not enough: the same ISA level on every CPU (cpu_isa)
    _set_deterministic(True, warn_only=device.type == "cuda")
    try:
        yield
    finally:
        _set_deterministic(*previous)


def _set_deterministic(mode: bool, warn_only: bool) -> None:
    """``torch.use_deterministic_algorithms`` minus its import of the compiler stack.

    The public function imports torch._inductor (and with it torch._dynamo, about 2 s) only to copy the flag
    into the config of torch.compile, which spcreid never uses; on the embedded profile's CPU jobs that is a
    tenth of a run. The kernel flag itself is what the public function sets next.
    """
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:  # a torch without it: the public way
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        setter(mode, warn_only=warn_only)
