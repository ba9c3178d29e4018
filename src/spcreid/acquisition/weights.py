"""Pretrained weight files the paper's pipeline starts from, and fetching them reproducibly.

torchvision names its files ``<model>-<first 8 hex of sha256>.pth``, so where the full hash is not
known here the name's prefix still pins the exact file. PISE publishes its generators on Google
Drive, either as the ``latest_net_G.pth`` itself or in an archive that holds it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from spcreid.acquisition.download import (
    archive_format,
    check_sha256,
    download_gdrive,
    download_url,
    normalise_sha256,
    record_sha256,
    safe_extract,
)
from spcreid.errors import SpcreidError, torch_load_problem
from spcreid.io import atomic_path


@dataclass(frozen=True)
class WeightSpec:
    name: str
    description: str
    url: str | None = None
    gdrive_id: str | None = None
    sha256: str | None = None  # full digest, where verified
    sha256_prefix: str | None = None  # the digest prefix the publisher put in the file name
    member: str | None = None  # the file to take when the download is an archive


WEIGHTS: dict[str, WeightSpec] = {
    "resnet50-imagenet": WeightSpec(
        name="resnet50-imagenet",
        description="torchvision ResNet-50 ImageNet-1k (V1) weights, the paper's backbone initialisation",
        url="https://download.pytorch.org/models/resnet50-0676ba61.pth",
        sha256_prefix="0676ba61",
    ),
    "keypointrcnn-coco": WeightSpec(
        name="keypointrcnn-coco",
        description="torchvision Keypoint R-CNN ResNet-50 FPN (COCO), pose keypoints for PISE",
        url="https://download.pytorch.org/models/keypointrcnn_resnet50_fpn_coco-fc266e95.pth",
        sha256_prefix="fc266e95",
    ),
    "vgg19-imagenet": WeightSpec(
        name="vgg19-imagenet",
        description="torchvision VGG-19 ImageNet weights, loaded by PISE's generator at start-up (perceptual features)",
        url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        sha256_prefix="dcbb9e9d",
    ),
    "pise-texture": WeightSpec(
        name="pise-texture",
        description="PISE generator for texture transfer / editing (Zhang et al., CVPR 2021)",
        gdrive_id="1fMFBIkU1AEQaa3vbhba3oV0rU5YSr7GR",
        member="latest_net_G.pth",
    ),
    "schp-lip": WeightSpec(
        name="schp-lip",
        description="SCHP human parser, LIP 20 classes (exp-schp-201908261155-lip.pth, Li et al.), for `spcreid parse`",
        gdrive_id="1ZrTiadzAOM332d896fw7JZQ2lWALedDB",
    ),
    "pise-pose": WeightSpec(
        name="pise-pose",
        description="PISE generator for pose transfer (Zhang et al., CVPR 2021)",
        gdrive_id="1gcdzahJ-pE-bSQfcnrW__iXIViH_y-FB",
        member="latest_net_G.pth",
    ),
}


def get_weight_spec(name: str) -> WeightSpec:
    if name not in WEIGHTS:
        raise SpcreidError(f"unknown weights '{name}'; choose one of {', '.join(WEIGHTS)}")
    return WEIGHTS[name]


def check_weights(name: str, path: str | os.PathLike, sha256: str | None = None) -> str:
    """sha256 of the weight file at ``path``; raises if it is missing or not the registered file.

    An explicit ``sha256`` pins that exact file and replaces the published-name prefix check: it is how a
    different file (fine-tuned weights, the rehearsal's stand-ins) is accepted on purpose, never by default.
    """
    spec = get_weight_spec(name)
    path = Path(path)
    if not path.is_file():
        raise SpcreidError(
            f"weights {name}: {path} does not exist; fetch it with `spcreid fetch-weights --name {name} --dest {path}`"
        )
    expected = normalise_sha256(sha256) or spec.sha256
    actual = check_sha256(path, expected)
    if spec.sha256_prefix and not normalise_sha256(sha256) and not actual.startswith(spec.sha256_prefix):
        raise SpcreidError(
            f"weights {name}: {path} has sha256 {actual[:16]}..., but the published file's hash starts with "
            f"{spec.sha256_prefix}; it is corrupt or a different file: delete it and fetch it again"
        )
    return actual


def fetch_weights(
    name: str,
    dest: str | os.PathLike,
    *,
    url: str | None = None,
    file: str | os.PathLike | None = None,
    sha256: str | None = None,
) -> Path:
    """Put the weights ``name`` at ``dest``, verified (a folder, or a path ending in "/", gets ``<name>.pth``).

    A file already at ``dest`` that passes the checks is kept, so reruns download nothing.
    """
    spec = get_weight_spec(name)
    if url is not None and file is not None:
        raise SpcreidError("give at most one of --url and --file")
    names_folder = str(dest).endswith(("/", os.sep)) or Path(dest).is_dir()
    dest = Path(dest) / f"{name}.pth" if names_folder else Path(dest)
    if dest.is_file():
        # As thorough as for a new file: a truncated copy of a file without a published hash would
        # otherwise pass on its name alone.
        try:
            check_weights(name, dest, sha256)
            _check_loadable(name, dest)
        except SpcreidError as exc:
            raise SpcreidError(f"{exc} (found at --dest, left untouched; delete it to fetch a fresh copy)") from exc
        print(f"weights {name} already at {dest} and verified; nothing to do")
        return dest
    expected = normalise_sha256(sha256) or spec.sha256
    hint = (
        f"download it manually{_manual_source(spec)} and run "
        f"`spcreid fetch-weights --name {name} --dest {dest} --file PATH`"
    )
    with tempfile.TemporaryDirectory(dir=_existing_parent(dest), prefix=f".{name}.") as scratch:
        if file is not None:
            raw = Path(file)
            if not raw.is_file():
                raise SpcreidError(f"--file {raw} does not exist or is not a file; check the path")
            origin = f"file:{raw.absolute()}"
        else:
            raw = Path(scratch) / f"{name}.download"
            if url is not None or spec.url is not None:
                origin = url or spec.url
                # Only the final weight file is hash-checked: an archive's own hash is unknown.
                download_url(origin, raw, expected if spec.member is None else None, hint)
            else:
                origin = f"gdrive:{spec.gdrive_id}"
                download_gdrive(spec.gdrive_id, raw, expected if spec.member is None else None, hint)
        weight_file = _unpack_member(spec, raw, Path(scratch) / "unpacked")
        sha = check_weights(name, weight_file, sha256)
        _check_loadable(name, weight_file)
        with atomic_path(dest) as tmp:
            shutil.copyfile(weight_file, tmp)
    record_sha256(dest.with_name(dest.name + ".sha256.json"), name, dest, sha, origin, checked=expected is not None)
    print(f"weights {name} -> {dest} (sha256 {sha})")
    return dest


def _manual_source(spec: WeightSpec) -> str:
    if spec.url:
        return f" from {spec.url}"
    if spec.gdrive_id:
        return f" from https://drive.google.com/file/d/{spec.gdrive_id}/view"
    return ""


def _existing_parent(dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    return dest.parent


def _unpack_member(spec: WeightSpec, raw: Path, scratch: Path) -> Path:
    """The weight file itself, taking ``spec.member`` out of an archive when the download is one."""
    if spec.member is None or not _is_archive_holding(raw, spec.member):
        return raw
    safe_extract(raw, scratch)
    matches = sorted(p for p in scratch.rglob(spec.member) if p.is_file())
    if len(matches) != 1:
        raise SpcreidError(
            f"weights {spec.name}: the archive holds {len(matches)} files named {spec.member}; expected one"
        )
    return matches[0]


def _is_archive_holding(path: Path, member: str) -> bool:
    # A torch checkpoint is itself a zip, so "is a zip" alone does not mean "is an archive of weights".
    try:
        fmt = archive_format(path)
    except SpcreidError:
        return False
    if fmt == "zip":
        with zipfile.ZipFile(path) as zf:
            return any(Path(n).name == member for n in zf.namelist())
    return True


def _check_loadable(name: str, path: Path) -> None:
    """Fail now, with the file named, if torch cannot read it as a state dict."""
    import torch

    try:
        # weights_only: a checkpoint is data; unpickling arbitrary objects from a download would run code.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        reason = torch_load_problem(exc)
        raise SpcreidError(
            f"weights {name}: {path} is not a loadable torch checkpoint ({reason}); it is truncated or corrupt: "
            "delete it and fetch it again"
        ) from exc
    if not isinstance(state, dict):
        raise SpcreidError(
            f"weights {name}: {path} holds a {type(state).__name__}, expected a state dict (name -> tensor); "
            "fetch the published file again"
        )
