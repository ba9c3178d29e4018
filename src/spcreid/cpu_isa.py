"""One instruction-set level for the CPU kernels of every job, so that a run writes the same bytes on any x86-64
CPU with AVX2, not only on the machine that made the committed results.

oneDNN (convolutions), ATen's vectorised kernels (batch norm, reductions, element-wise ops), MKL (torch's GEMM)
and OpenBLAS (numpy's matrix products: evaluation distances) each pick the widest instruction set the CPU offers,
and kernels of different widths sum in different orders: on one AVX-512 machine a 6-iteration embedded
``spcreid train`` gave four different ``model.pt`` files for the four combinations of the oneDNN and ATen caps
(docs/WORKFLOW.md, "Same bytes on another CPU"). Capping them all at AVX2, the widest level every x86-64 CPU of
the last decade has, makes the choice the same everywhere. What it cannot pin: oneDNN's brgemm convolutions size
some blocks by the CPU's cache sizes (docs/WORKFLOW.md says what was and was not measured).

The libraries read these variables once, when torch first runs a kernel, so ``pin_cpu_isa`` runs first thing in
``spcreid.cli.main``, before anything imports torch. ``SPCREID_CPU_ISA=native`` turns the pin off (the fastest
kernels of this CPU; results then depend on the CPU). GPU kernels are not affected.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

from spcreid.errors import SpcreidError

VARIABLE = "SPCREID_CPU_ISA"
DEFAULT = "avx2"
# What each level sets. MKL's "conditional numerical reproducibility" branch is its documented way to get the same
# results on every CPU that supports that branch; OpenBLAS (a DYNAMIC_ARCH build in numpy's wheel) takes a core type
# instead of probing, Haswell being its AVX2 kernel set; oneDNN and ATen have no such promise, only the cap.
LEVELS: dict[str, dict[str, str]] = {
    "avx2": {
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "ATEN_CPU_CAPABILITY": "avx2",
        "MKL_CBWR": "AVX2",
        "OPENBLAS_CORETYPE": "Haswell",
    },
    "native": {},
}


def pin_cpu_isa(environ: MutableMapping[str, str] | None = None) -> str:
    """Set the kernel caps of the chosen level (``SPCREID_CPU_ISA``, default avx2) in ``environ``; return the level.

    A cap set by the caller's environment is overridden: the same bytes everywhere is the point, and a job that
    inherited ``ATEN_CPU_CAPABILITY=avx512`` from a login script would otherwise quietly leave the pin.
    """
    environ = os.environ if environ is None else environ
    level = environ.get(VARIABLE, DEFAULT).strip().lower() or DEFAULT
    if level not in LEVELS:
        raise SpcreidError(
            f"{VARIABLE}={environ[VARIABLE]!r}: use one of {', '.join(sorted(LEVELS))} "
            f"({DEFAULT}: the same results on every x86-64 CPU with AVX2; native: this CPU's fastest kernels)"
        )
    environ.update(LEVELS[level])
    return level


def check_pin_in_force(stream=sys.stderr) -> str | None:
    """After torch is imported: the ATen capability in force, with a warning when the pin could not take effect.

    Returns None when the pin is off. The warning covers the two ways the caps fail silently: torch imported
    before ``pin_cpu_isa`` ran (an embedding program), or a CPU without AVX2 (ATen then runs wider-compatible,
    narrower kernels, and the bytes differ from every AVX2 machine's).
    """
    import torch

    level = os.environ.get(VARIABLE, DEFAULT).strip().lower() or DEFAULT
    if level == "native":
        return None
    capability = torch.backends.cpu.get_cpu_capability()
    if capability != level.upper():
        print(
            f"spcreid: warning: CPU kernels run at {capability}, not {level.upper()} ({VARIABLE}); results will "
            "not be byte-identical to other machines' (set the variable before torch is imported, on a CPU with "
            f"{level.upper()})",
            file=stream,
        )
    return capability
