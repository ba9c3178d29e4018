"""Split a hash-locked requirements file into torch's CUDA stack and everything else.

`make setup` installs the two halves side by side, each with `pip install --no-deps --require-hashes`:
unpacking the wheels is CPU-bound, and the CUDA stack alone is several GB. The halves never share a package
folder (the nvidia-* and cuda-* wheels, which share the `nvidia/` and `cuda/` namespace folders, are all in
the first), so the two pip processes never write the same file.

    python envs/split_lock.py envs/requirements.lock TORCH_HALF REST_HALF
"""

import re
import sys

# Distributions (or name prefixes, ending in "-") installed by the first pip process.
TORCH_STACK = ("torch", "torchvision", "triton", "nvidia-", "cuda-")


def in_torch_stack(name: str) -> bool:
    return any(name == entry or (entry.endswith("-") and name.startswith(entry)) for entry in TORCH_STACK)


def main(lock: str, torch_half: str, rest_half: str) -> None:
    text = open(lock).read()
    # An entry starts at a line beginning with its name; its hashes and "# via" lines are indented.
    blocks = re.split(r"\n(?=[A-Za-z])", text)
    halves: tuple[list[str], list[str]] = ([], [])
    for block in blocks:
        name = re.split(r"[=<>;\s\[]", block, maxsplit=1)[0].lower()
        halves[0 if block[:1].isalpha() and in_torch_stack(name) else 1].append(block.rstrip("\n"))
    if not halves[0] or not any(b[:1].isalpha() for b in halves[1]):
        raise SystemExit(f"{lock}: expected torch's stack and other packages in it; is it a requirements lock?")
    for path, half in zip((torch_half, rest_half), halves):
        with open(path, "w") as handle:
            handle.write("\n".join(half) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__.strip().splitlines()[-1].strip())
    main(*sys.argv[1:])
