"""``spcreid parse``: an 8-class parsing map for every image of one manifest split, and its manifest.

Output folder::

    maps/<image path relative to the split's common folder>.png   8-class map, the image's size
    manifest.csv     the split's manifest rows with the ``parsing`` column filled (what synthesis reads)
    parsing.json     how the maps were made: source, network, weights sha256, code commit, label table

Maps are written temp-then-rename and a map already present is kept, so an interrupted run resumes; the
manifest comes last, so it exists only when every map does. ``parsing.json`` refuses a resume with other
weights, which would mix two parsers in one folder.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from spcreid.data.manifest import read_manifest, write_manifest
from spcreid.data.parsing_labels import LABEL_SETS, LIP_TO_SPCREID, NUM_LABELS, label_set_lookup, lip_lookup
from spcreid.errors import SpcreidError
from spcreid.guards import guard_output
from spcreid.io import atomic_path, sha256_file, write_json
from spcreid.parsing.schp import (
    BGR_MEAN,
    BGR_STD,
    INPUT_SIZE,
    NUM_LIP_CLASSES,
    SCHP_COMMIT,
)

MAPS_FOLDER = "maps"
MANIFEST_NAME = "manifest.csv"
INFO_NAME = "parsing.json"
# What makes the maps what they are; a resumed run must agree on all of it.
RECORDED_FIELDS = ("source", "network", "weights_sha256", "maps_root", "maps_labels", "split")


def schp_affine(height: int, width: int, size: int = INPUT_SIZE) -> np.ndarray:
    """SCHP's 2x3 affine map from an image's pixel grid into the ``size`` square, as its simple_extractor builds it.

    SCHP takes the box (0, 0, width - 1, height - 1), so the centre ((width - 1) / 2, (height - 1) / 2) and the
    side max(width, height) - 1, and maps that side onto the square's size - 1 (pixel centres at integers,
    as cv2.warpAffine reads them): a scale of (size - 1) / (L - 1), not size / L, and no integer offset.
    """
    side = max(height, width) - 1
    if min(height, width) < 2:
        raise SpcreidError(f"an image of {width}x{height} pixels is too small to parse; SCHP needs at least 2x2")
    scale = (size - 1) / side
    middle = (size - 1) / 2
    return np.array(
        [[scale, 0.0, middle - scale * (width - 1) / 2], [0.0, scale, middle - scale * (height - 1) / 2]],
        dtype=np.float64,
    )


def _sampling_grid(affine: np.ndarray, out_hw: tuple[int, int], in_hw: tuple[int, int], device):
    """grid_sample's grid reading, for each output pixel, the input at ``affine`` (output -> input pixels)."""
    import torch

    out_h, out_w = out_hw
    in_h, in_w = in_hw
    a = torch.as_tensor(affine, dtype=torch.float64, device=device)
    ys, xs = torch.meshgrid(
        torch.arange(out_h, dtype=torch.float64, device=device),
        torch.arange(out_w, dtype=torch.float64, device=device),
        indexing="ij",
    )
    x = a[0, 0] * xs + a[0, 1] * ys + a[0, 2]
    y = a[1, 0] * xs + a[1, 1] * ys + a[1, 2]
    # align_corners=True: -1 and 1 are the centres of the first and last pixels, cv2's integer coordinates.
    grid = torch.stack((2 * x / (in_w - 1) - 1, 2 * y / (in_h - 1) - 1), -1)
    return grid.float()[None]


def _inverse(affine: np.ndarray) -> np.ndarray:
    full = np.vstack([affine, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def schp_input(image, size: int = INPUT_SIZE):
    """uint8 H x W x 3 RGB tensor -> (3, size, size) normalised BGR input by SCHP's affine warp, and the affine.

    Bilinear, black outside the image (cv2.warpAffine's INTER_LINEAR and BORDER_CONSTANT 0 as SCHP calls it).
    """
    import torch
    from torch.nn import functional as F

    h, w = image.shape[:2]
    affine = schp_affine(h, w, size)
    pixels = image.permute(2, 0, 1).flip(0).float().div(255.0)[None]  # RGB -> BGR, [0, 1]
    grid = _sampling_grid(_inverse(affine), (size, size), (h, w), pixels.device)
    canvas = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="zeros", align_corners=True)[0]
    mean = torch.tensor(BGR_MEAN, device=canvas.device)[:, None, None]
    std = torch.tensor(BGR_STD, device=canvas.device)[:, None, None]
    return (canvas - mean) / std, affine


def logits_to_image(fusion, affines: Sequence[np.ndarray], sizes: Sequence[tuple[int, int]], size: int = INPUT_SIZE):
    """SCHP's fusion logits (N, 20, h', w') -> (20, H, W) logits per image at its own size.

    As SCHP: upsampled bilinearly (align_corners) to the square, then warped back by the inverse affine.
    """
    from torch.nn import functional as F

    full = F.interpolate(fusion.float(), size=(size, size), mode="bilinear", align_corners=True)
    out = []
    for logits, affine, (height, width) in zip(full, affines, sizes):
        grid = _sampling_grid(affine, (height, width), (size, size), logits.device)
        out.append(F.grid_sample(logits[None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)[0])
    return out


def logits_to_labels(fusion, affines: Sequence[np.ndarray], sizes: Sequence[tuple[int, int]], size: int = INPUT_SIZE):
    """SCHP's fusion logits (N, 20, h', w') -> one LIP label map (H x W uint8) per image, at its own size."""
    return [
        logits.argmax(0).to("cpu").numpy().astype(np.uint8) for logits in logits_to_image(fusion, affines, sizes, size)
    ]


def parse_images(model, images: Sequence[np.ndarray], device) -> list[np.ndarray]:
    """LIP label maps of a batch of RGB uint8 images (any sizes) in one forward pass."""
    import torch

    inputs, affines = [], []
    for image in images:
        # a copy: decoded arrays are read-only
        tensor, affine = schp_input(torch.from_numpy(np.array(image)).to(device))
        inputs.append(tensor)
        affines.append(affine)
    with torch.inference_mode():
        output = model(torch.stack(inputs))
    fusion = output[0][-1]
    if fusion.shape[1] != NUM_LIP_CLASSES:
        raise SpcreidError(f"the parser returned {fusion.shape[1]} classes, expected LIP's {NUM_LIP_CLASSES}")
    return logits_to_labels(fusion, affines, [im.shape[:2] for im in images])


def _split_rows(manifest: str | os.PathLike, split: str):
    frame = read_manifest(manifest)
    rows = frame[frame["split"] == split].sort_values("path", kind="stable").reset_index(drop=True)
    if rows.empty:
        raise SpcreidError(
            f"manifest {manifest} has no rows with split '{split}' (it has {sorted(set(frame['split']))})"
        )
    return rows


def map_paths(image_paths: Sequence[str], out: Path) -> list[Path]:
    """``out/maps/<path relative to the images' common folder>.png`` for each image."""
    parents = [str(Path(p).parent) for p in image_paths]
    root = Path(os.path.commonpath(parents))
    return [(out / MAPS_FOLDER / Path(p).relative_to(root)).with_suffix(".png") for p in image_paths]


def save_map(labels: np.ndarray, path: Path) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(labels.astype(np.uint8), mode="L").save(tmp, format="PNG")


def _check_info(out: Path, info: dict, replace_changed: bool = False) -> None:
    entries = (MAPS_FOLDER, MANIFEST_NAME, INFO_NAME)
    refusal = f"{out} holds maps made otherwise"
    guard_output(out, INFO_NAME, info, entries, refusal, "making them afresh", RECORDED_FIELDS, replace_changed)


def _finish(rows, maps: list[Path], out: Path, info: dict) -> dict:
    rows = rows.copy()
    rows["parsing"] = [str(p) for p in maps]
    write_manifest(rows, out / MANIFEST_NAME)
    write_json(out / INFO_NAME, info)
    return info


def run_parser(
    manifest: str | os.PathLike,
    weights: str | os.PathLike,
    out: str | os.PathLike,
    *,
    network: str = "schp",
    code_root: str | os.PathLike | None = None,
    device: str = "cuda",
    batch_size: int = 16,
    split: str = "train",
    sha256: str | None = None,
    replace_changed: bool = False,
) -> dict:
    """Parse every ``split`` image of ``manifest`` with SCHP (or its stand-in) into ``out``.

    ``replace_changed``: maps made otherwise (another network, weights, split) are deleted and made again instead
    of refused (``guards.clear_if_changed``; the workflow's choice).
    """

    # lazy: torch, for the parser only
    from spcreid.device import resolve_device
    from spcreid.parsing.schp import build_network, load_checkpoint

    if batch_size < 1:
        raise SpcreidError(f"--batch {batch_size}: must be at least 1")
    out = Path(out).resolve()
    rows = _split_rows(manifest, split)
    torch_device = resolve_device(device, "the human parser")
    info = {
        "source": "schp",
        "network": network,
        "weights": str(weights),
        "split": split,
        "weights_sha256": sha256_file(weights) if Path(weights).is_file() else None,
        "code_commit": SCHP_COMMIT if network == "schp" else None,
        "lip_to_spcreid": {str(k): v for k, v in LIP_TO_SPCREID.items()},
    }
    _check_info(out, info, replace_changed)
    model = load_checkpoint(build_network(network, code_root), weights, sha256).to(torch_device)
    maps = map_paths(list(rows["path"]), out)
    todo = [i for i, path in enumerate(maps) if not path.is_file()]
    lookup = lip_lookup()
    start = time.perf_counter()
    for begin in tqdm(range(0, len(todo), batch_size), desc="human parsing", unit="batch"):
        batch = todo[begin : begin + batch_size]
        images = [_load_rgb(rows["path"][i]) for i in batch]
        for i, labels in zip(batch, parse_images(model, images, torch_device)):
            save_map(lookup[labels], maps[i])
    seconds = time.perf_counter() - start
    info.update(
        images=len(rows),
        parsed=len(todo),
        kept=len(rows) - len(todo),
        seconds=round(seconds, 3),
        images_per_s=round(len(todo) / seconds, 2) if todo and seconds > 0 else None,
        device=str(torch_device),
    )
    return _finish(rows, maps, out, info)


def use_existing_maps(
    manifest: str | os.PathLike,
    maps_root: str | os.PathLike,
    data_root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    labels: str = "spcreid",
    split: str = "train",
    replace_changed: bool = False,
) -> dict:
    """Take the user's own maps (``maps_root`` mirrors ``data_root``, ``.png``) instead of running a parser.

    ``labels="spcreid"`` maps are checked and referenced where they are; maps in another parser's label set
    (``lip``, ``cihp``, ``atr``: ``parsing_labels.LABEL_SETS``) are remapped into ``out/maps``.
    """
    # lazy: the --maps path only
    from spcreid.data.registry import parsing_path
    from spcreid.synthesis.base import load_parsing

    if labels != "spcreid" and labels not in LABEL_SETS:
        raise SpcreidError(
            f"--maps-labels {labels}: use spcreid (8 classes) or a parser's label set ({', '.join(LABEL_SETS)})"
        )
    out = Path(out).resolve()
    maps_root, data_root = Path(maps_root).resolve(), Path(data_root).resolve()
    rows = _split_rows(manifest, split)
    info = {"source": "maps", "maps_root": str(maps_root), "maps_labels": labels, "split": split}
    _check_info(out, info, replace_changed)
    sources = []
    for image in rows["path"]:
        try:
            sources.append(parsing_path(Path(image).resolve(), data_root, maps_root))
        except ValueError as exc:
            raise SpcreidError(f"image {image} is not under the data root {data_root}; check parsing.root") from exc
    missing = [p for p in sources if not p.is_file()]
    if missing:
        raise SpcreidError(
            f"{len(missing)} of {len(sources)} parsing maps are missing under {maps_root} (first: {missing[0]}); "
            "parsing.root must mirror the dataset root with one .png per image"
        )
    remap = labels != "spcreid"
    top = len(LABEL_SETS[labels][0]) if remap else NUM_LABELS
    lookup = label_set_lookup(labels) if remap else None
    if remap:
        info["to_spcreid"] = {str(k): v for k, v in LABEL_SETS[labels][1].items()}
    maps = map_paths(list(rows["path"]), out) if remap else sources
    for image, source, target in tqdm(list(zip(rows["path"], sources, maps)), desc="check parsing maps", unit="map"):
        parsing = load_parsing(source)
        with Image.open(image) as img:
            size = img.size[::-1]
        if parsing.shape != size:
            raise SpcreidError(
                f"parsing map {source} is {parsing.shape[1]}x{parsing.shape[0]}, its image {image} "
                f"is {size[1]}x{size[0]}; maps must have their image's size"
            )
        if int(parsing.max(initial=0)) >= top or int(parsing.min(initial=0)) < 0:
            raise SpcreidError(
                f"parsing map {source} holds label {int(parsing.max())}, but {labels} maps have "
                f"0..{top - 1}; set parsing.labels to match the maps"
            )
        if remap and not target.is_file():
            save_map(lookup[parsing], target)
    info.update(images=len(rows))
    return _finish(rows, maps, out, info)


def _load_rgb(path: str) -> np.ndarray:
    # lazy: keeps parsing's import free of synthesis
    from spcreid.synthesis.base import load_image

    return load_image(path)
