"""One contiguous uint8 tensor holding every training image and synthetic copy, decoded once.

Decoding JPEGs and resizing them is the only CPU-heavy step of the input pipeline, and each image
is used about (iterations x batch / images) times per run, so it is done once, up front, by a
``DataLoader`` with worker processes (pinned, prefetched chunks), and never again. The store is
``(N, G, 3, H', W')`` with G = 1 + S: row i is source i followed by its S copies, which is the unit a
batch gathers.

Where the store lives (``train.image_store``):

* ``device``: on the training GPU; a batch never crosses PCIe. PRCC at 256x128 with a 0.125 crop
  margin (288x144), 17,896 sources x 5 = 89,480 images, is 11.1 GB (+1.8 GB for the uncropped
  256x128 sources used by feature extraction), a fraction of an A100/H100/H200.
* ``pinned``: page-locked host memory; a batch is gathered on the CPU (one memcpy per image) and
  copied asynchronously.
* ``cpu``: ordinary host memory (CPU training, or hosts where pinning that much is not allowed).
* ``auto``: ``device`` on CUDA when the store takes at most half of the free GPU memory, otherwise
  ``pinned`` on CUDA and ``cpu`` without it.

A store can also be packed into one file (``save_packed``, ``spcreid pack-images``) and loaded by every
run of a dataset (``load_packed``) instead of being decoded again: on a CPU, where each job has one
core, decoding 2,400 sources and their 9,600 copies is a third of a short embedded run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import psutil
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from spcreid.engine.checkpoint import load_verified
from spcreid.engine.decode import read_rgb
from spcreid.errors import SpcreidError
from spcreid.io import atomic_path

STORE_LOCATIONS = ("auto", "cpu", "pinned", "device")
# Share of free GPU memory ``auto`` may give the store; the rest is for the model's activations.
DEVICE_SHARE = 0.5
# Groups per decoding chunk: large enough to amortise inter-process transfer, small for smooth progress.
CHUNK_GROUPS = 16
GIB = 1 << 30


def check_location(location: str) -> None:
    if location not in STORE_LOCATIONS:
        raise SpcreidError(f"train.image_store is '{location}'; use one of {list(STORE_LOCATIONS)}")


class _GroupDecoder(Dataset):
    """Item i: group i decoded at the load size, source i at the plain size, and an error ("" if fine).

    Errors travel as data: a worker process's exception would reach the user as a multi-line
    traceback instead of the one-line message naming the file.
    """

    def __init__(self, groups: Sequence[Sequence[str]], load_size: tuple[int, int], plain_size: tuple[int, int] | None):
        self.groups, self.load_size, self.plain_size = groups, load_size, plain_size

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        group = self.groups[index]
        height, width = self.load_size
        try:
            members = torch.stack([read_rgb(path, height, width) for path in group])
            plain = torch.empty(0, dtype=torch.uint8)
            if self.plain_size is not None:
                plain = read_rgb(group[0], *self.plain_size)
        except SpcreidError as exc:
            members = torch.zeros(len(group), 3, height, width, dtype=torch.uint8)
            plain = torch.zeros((3, *self.plain_size) if self.plain_size else (0,), dtype=torch.uint8)
            return members, plain, str(exc)
        return members, plain, ""


def resolve_location(location: str, device: torch.device, nbytes: int) -> str:
    """The concrete location (cpu, pinned or device) for a store of ``nbytes`` feeding ``device``."""
    check_location(location)
    on_cuda = device.type == "cuda"
    if location == "auto":
        if not on_cuda:
            return "cpu"
        free, _ = torch.cuda.mem_get_info(device)
        return "device" if nbytes <= DEVICE_SHARE * free else "pinned"
    if location == "pinned" and not on_cuda:
        raise SpcreidError("train.image_store is 'pinned' but training runs on the CPU; use cpu or auto")
    if location == "device" and not on_cuda:
        return "cpu"  # the CPU is the device
    return location


def _check_room(nbytes: int, location: str, device: torch.device) -> None:
    """Refuse a store that cannot fit, before allocating it, instead of being killed halfway."""
    if location == "device":
        free, _ = torch.cuda.mem_get_info(device)
        room, where, advice = free, f"free on {device}", "set train.image_store: pinned (host memory)"
    else:
        room, where = psutil.virtual_memory().available, "of host memory available"
        advice = "give the job more memory (Slurm mem_mb) or, on a GPU, set train.image_store: device"
    if nbytes > room:
        raise SpcreidError(
            f"the decoded training images need {nbytes / GIB:.1f} GiB but only {room / GIB:.1f} GiB are {where}; "
            f"{advice}, or lower train.height/train.width or method.S"
        )


def _allocate(shape: tuple[int, ...], location: str, device: torch.device) -> torch.Tensor:
    if location == "device":
        return torch.empty(shape, dtype=torch.uint8, device=device)
    return torch.empty(shape, dtype=torch.uint8, pin_memory=location == "pinned")


class ImageStore:
    """``groups`` uint8 (N, G, 3, H', W'), ``plain`` uint8 (N, 3, h, w) or None; batches go to ``device``."""

    def __init__(self, groups: torch.Tensor, plain: torch.Tensor | None, location: str, device: torch.device):
        self.groups, self.plain, self.location, self.device = groups, plain, location, torch.device(device)

    @property
    def nbytes(self) -> int:
        return self.groups.numel() + (0 if self.plain is None else self.plain.numel())

    def describe(self) -> dict:
        return {
            "location": self.location,
            "groups_shape": list(self.groups.shape),
            "plain_shape": None if self.plain is None else list(self.plain.shape),
            "gib": round(self.nbytes / GIB, 3),
        }

    @classmethod
    def decode(
        cls,
        groups: Sequence[Sequence[str | os.PathLike]],
        load_size: tuple[int, int],
        plain_size: tuple[int, int] | None = None,
        workers: int = 0,
        device: str | torch.device = "cpu",
        location: str = "auto",
        progress: bool = False,
    ) -> ImageStore:
        """Decode ``groups`` (each: source path, then its copies) with ``workers`` processes."""
        device = torch.device(device)
        groups = [[os.fspath(p) for p in group] for group in groups]
        n, size = len(groups), len(groups[0]) if groups else 1
        group_shape = (n, size, 3, *load_size)
        plain_shape = None if plain_size is None else (n, 3, *plain_size)
        nbytes = _numel(group_shape) + (0 if plain_shape is None else _numel(plain_shape))
        where = resolve_location(location, device, nbytes)
        _check_room(nbytes, where, device)
        store = _allocate(group_shape, where, device)
        plain = None if plain_shape is None else _allocate(plain_shape, where, device)
        loader = DataLoader(
            _GroupDecoder(groups, load_size, plain_size),
            batch_size=CHUNK_GROUPS,
            num_workers=workers,
            pin_memory=where == "device",
            prefetch_factor=4 if workers else None,
        )
        bar = tqdm(
            total=n * size, desc="decoding train images", unit="img", disable=None if progress else True, leave=False
        )
        start = 0
        with bar:
            for members, sources, problems in loader:
                problem = next((p for p in problems if p), None)
                if problem:
                    raise SpcreidError(problem)
                stop = start + len(members)
                store[start:stop].copy_(members, non_blocking=True)
                if plain is not None:
                    plain[start:stop].copy_(sources, non_blocking=True)
                bar.update(len(members) * size)
                start = stop
        if where == "device":
            torch.cuda.synchronize(device)
        return cls(store, plain, where, device)

    def gather(self, indices: Sequence[int]) -> torch.Tensor:
        """uint8 (B, G, 3, H', W') of the given rows, on the training device."""
        index = torch.as_tensor(list(indices), dtype=torch.long)
        if self.location == "device" or self.device.type != "cuda":
            return self.groups.index_select(0, index.to(self.groups.device))
        # Host store feeding a GPU: gather into page-locked memory so the copy can run asynchronously.
        picked = torch.empty((len(index), *self.groups.shape[1:]), dtype=torch.uint8, pin_memory=True)
        torch.index_select(self.groups, 0, index, out=picked)
        return picked.to(self.device, non_blocking=True)


# Version of the packed-store file layout (``save_packed``); a file of another version is refused.
PACKED_FORMAT = 1


def save_packed(store: ImageStore, groups: Sequence[Sequence[str | os.PathLike]], path: str | os.PathLike) -> None:
    """Write ``store`` and the image paths it was decoded from (source, then its copies, per row) to ``path``."""
    payload = {
        "format": PACKED_FORMAT,
        "paths": [[os.path.normpath(os.fspath(p)) for p in group] for group in groups],
        "groups": store.groups.cpu(),
        "plain": None if store.plain is None else store.plain.cpu(),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_packed(
    path: str | os.PathLike,
    groups: Sequence[Sequence[str | os.PathLike]],
    load_size: tuple[int, int],
    plain_size: tuple[int, int] | None,
    device: str | torch.device = "cpu",
    location: str = "auto",
) -> ImageStore:
    """The store of ``groups`` from a packed file that holds them (each group a prefix of its row).

    A run without copies, or with fewer than were packed, uses the leading members of each row; any
    other difference (another manifest, synthesis cache, image size or S) is refused with the first
    mismatch named, since the packed pixels would silently belong to other images.
    """
    device = torch.device(device)
    advice = "rebuild it with `spcreid pack-images` (the workflow's pack_images rule) or train without it"
    payload = load_verified(path, "packed images", advice, PACKED_FORMAT, mmap=True)
    packed_paths, stored = payload["paths"], payload["groups"]
    size = len(groups[0]) if groups else 1
    if len(packed_paths) != len(groups):
        raise SpcreidError(
            f"packed images {path} hold {len(packed_paths)} sources, this run has {len(groups)}; {advice}"
        )
    for row, (packed, wanted) in enumerate(zip(packed_paths, groups)):
        wanted = [os.path.normpath(os.fspath(p)) for p in wanted]
        if packed[: len(wanted)] != wanted:
            raise SpcreidError(
                f"packed images {path} do not match this run at source {row}: packed {packed[: len(wanted)]}, "
                f"wanted {wanted}; {advice}"
            )
    plain = payload["plain"]
    if tuple(stored.shape[-2:]) != tuple(load_size) or (
        plain_size is not None and (plain is None or tuple(plain.shape[-2:]) != tuple(plain_size))
    ):
        raise SpcreidError(
            f"packed images {path} were decoded at {tuple(stored.shape[-2:])} (plain "
            f"{None if plain is None else tuple(plain.shape[-2:])}), this run needs {tuple(load_size)} "
            f"(plain {plain_size}); {advice}"
        )
    stored = stored[:, :size]
    plain = plain if plain_size is not None else None
    where = resolve_location(location, device, stored.numel() + (0 if plain is None else plain.numel()))
    if where == "device":
        stored, plain = stored.to(device), None if plain is None else plain.to(device)
    elif where == "pinned":
        stored, plain = stored.pin_memory(), None if plain is None else plain.pin_memory()
    return ImageStore(stored, plain, where, device)


def _numel(shape: tuple[int, ...]) -> int:
    total = 1
    for extent in shape:
        total *= int(extent)
    return total
