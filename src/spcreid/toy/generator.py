"""The embedded procedural clothing-change dataset ("toy"), written in the VC-Clothes layout.

Identity lives in what survives a change of clothes (body proportions, skin tone, hair colour and
style, a large head); outfits are drawn from one palette shared by everybody, so clothes say nothing
about who wears them. Test identities follow VC-Clothes: cameras 2 and 3 see outfit 1, camera 4
outfit 2, camera 1 either (chosen per person). Training identities change clothes more often
(``train_outfits``, cycled over their images) so that outfits are not the cheapest way to tell
training people apart (docs/TOY_DATASET.md, "Why v3"). Every random draw comes from a generator seeded by
``(seed, stream, ...)``, so any image can be rendered on its own and the output does not depend on
rendering order.

Layout (see docs/ARCHITECTURE.md)::

    DIR/toy.json                                   generation parameters (written last)
    DIR/VC-Clothes/{train,query,gallery}/PID-CAM-CLOTHES-IDX.jpg
    DIR/parsing/VC-Clothes/{train,query,gallery}/PID-CAM-CLOTHES-IDX.png
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from spcreid.errors import SpcreidError
from spcreid.io import staging_folder
from spcreid.toy import render

# Bump whenever the rendering changes, so that existing datasets no longer count as up to date.
FORMAT_VERSION = 3
JPEG_QUALITY = 95
CAMERAS = (1, 2, 3, 4)
DATASET_FOLDER = "VC-Clothes"
PARSING_FOLDER = Path("parsing") / DATASET_FOLDER
METADATA_FILE = "toy.json"

# Random streams: each kind of draw gets its own generator so adding one kind never shifts another.
_IDENTITY, _OUTFIT, _CAMERA, _POSE, _NOISE, _CAMERA1_OUTFIT = range(6)

# Shared clothing palette (RGB 0..1): everybody draws from the same colours.
CLOTHES_PALETTE = np.array(
    [
        [0.10, 0.10, 0.12],
        [0.92, 0.92, 0.90],
        [0.50, 0.50, 0.52],
        [0.12, 0.16, 0.40],
        [0.20, 0.40, 0.80],
        [0.55, 0.75, 0.92],
        [0.80, 0.12, 0.12],
        [0.45, 0.08, 0.12],
        [0.15, 0.50, 0.20],
        [0.45, 0.47, 0.18],
        [0.95, 0.82, 0.15],
        [0.95, 0.50, 0.10],
        [0.95, 0.55, 0.70],
        [0.45, 0.20, 0.60],
        [0.85, 0.78, 0.62],
        [0.45, 0.30, 0.18],
    ],
    np.float32,
)
SHOE_PALETTE = np.array(
    [
        [0.08, 0.08, 0.08],
        [0.35, 0.22, 0.12],
        [0.90, 0.90, 0.88],
        [0.45, 0.45, 0.48],
        [0.75, 0.15, 0.15],
        [0.15, 0.30, 0.70],
        [0.60, 0.50, 0.30],
    ],
    np.float32,
)
# Skin tones are interpolated along this ramp, light to dark.
SKIN_RAMP = np.array(
    [[0.98, 0.85, 0.76], [0.87, 0.66, 0.52], [0.70, 0.48, 0.33], [0.45, 0.30, 0.20], [0.26, 0.16, 0.11]], np.float32
)
# Natural hair, interpolated: black, dark brown, auburn, ginger, blond, platinum, grey.
HAIR_RAMP = np.array(
    [
        [0.04, 0.03, 0.03],
        [0.22, 0.13, 0.07],
        [0.45, 0.20, 0.09],
        [0.78, 0.36, 0.12],
        [0.88, 0.74, 0.42],
        [0.95, 0.93, 0.82],
        [0.62, 0.62, 0.64],
    ],
    np.float32,
)
# Outfits of one person never share a top or bottom colour, so the palette bounds how many one person owns.
MAX_OUTFITS = 8
# Test identities wear two outfits, as in VC-Clothes.
TEST_OUTFITS = 2
# v2's head radius range (8.5-10.5% of body height) relative to v3's.
V2_HEAD_SCALE = 0.085 / 0.123
GLASSES_COLOURS = np.array([[0.05, 0.05, 0.05], [0.75, 0.10, 0.10], [0.10, 0.25, 0.75], [0.80, 0.65, 0.20]], np.float32)


@dataclass(frozen=True)
class ToyConfig:
    """The command-line parameters; together with the generator version they define the dataset."""

    seed: int = 0
    identities: int = 24
    images_per_camera: int = 3
    height: int = 128
    width: int = 64
    # None: half of ``identities`` (rounded up) are test identities.
    test_identities: int | None = None
    # None: training identities dress like the test identities (VC-Clothes cameras, 2 outfits; v2's layout).
    train_outfits: int | None = None
    # Multiplies v3's head radius range (12.3-15.2% of body height); V2_HEAD_SCALE gives v2's heads.
    head_scale: float = 1.0

    def validate(self) -> None:
        checks = (
            ("--identities", self.identities, 4, 9999, "half train, half test; the test half needs >= 2"),
            (
                "--images-per-camera",
                self.images_per_camera,
                2,
                99,
                "one query plus at least one gallery image per test identity and camera",
            ),
            ("--height", self.height, 48, 1024, "pixels"),
            ("--width", self.width, 24, 512, "pixels"),
            ("--seed", self.seed, 0, 2**32 - 1, "a non-negative integer"),
        )
        if self.train_outfits is not None:
            checks += (("--train-outfits", self.train_outfits, 1, MAX_OUTFITS, "distinct top and bottom colours"),)
        for flag, value, low, high, why in checks:
            if not low <= value <= high:
                raise SpcreidError(f"{flag} {value} is out of range: use {low}..{high} ({why})")
        if not 0.5 <= self.head_scale <= 1.5:
            raise SpcreidError(f"--head-scale {self.head_scale} is out of range: use 0.5..1.5 (1.0: v3's heads)")
        if self.test_identities is not None and not 2 <= self.test_identities <= self.identities - 2:
            raise SpcreidError(
                f"--test-identities {self.test_identities} is out of range: use 2..{self.identities - 2} "
                f"(--identities {self.identities} minus at least 2 training identities)"
            )


@dataclass(frozen=True)
class ToyImage:
    pid: int
    camid: int
    clothes_id: int
    idx: int
    folder: str  # train / query / gallery

    @property
    def stem(self) -> str:
        return f"{self.pid:04d}-{self.camid:02d}-{self.clothes_id:02d}-{self.idx:02d}"


def _rng(seed: int, stream: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, *keys])


def train_test_pids(config: ToyConfig) -> tuple[list[int], list[int]]:
    """PIDs 1..n; the first ones train, the last ``test_identities`` (default: half, rounded up) test."""
    n_test = config.test_identities
    if n_test is None:
        n_test = config.identities - config.identities // 2
    n_train = config.identities - n_test
    pids = list(range(1, config.identities + 1))
    return pids[:n_train], pids[n_train:]


def camera1_outfit(seed: int, pid: int) -> int:
    return int(_rng(seed, _CAMERA1_OUTFIT, pid).integers(1, 3))


def outfit_for_camera(seed: int, pid: int, camid: int) -> int:
    """VC-Clothes semantics: cameras 2 and 3 outfit 1, camera 4 outfit 2, camera 1 either."""
    if camid in (2, 3):
        return 1
    if camid == 4:
        return 2
    return camera1_outfit(seed, pid)


def train_outfit(config: ToyConfig, camid: int, idx: int) -> int:
    """A training identity's outfit for one image: ``train_outfits`` outfits cycled over (camera, index).

    Consecutive images of one camera wear different outfits, so each outfit is seen by several
    cameras and a camera never stands for an outfit.
    """
    position = (camid - CAMERAS[0]) * config.images_per_camera + (idx - 1)
    return position % config.train_outfits + 1


def plan_images(config: ToyConfig) -> list[ToyImage]:
    """Every image of the dataset; for test identities the first image per camera is the query."""
    train, test = train_test_pids(config)
    plan = []
    for pid in train:
        for camid in CAMERAS:
            for idx in range(1, config.images_per_camera + 1):
                if config.train_outfits is None:
                    clothes = outfit_for_camera(config.seed, pid, camid)
                else:
                    clothes = train_outfit(config, camid, idx)
                plan.append(ToyImage(pid, camid, clothes, idx, "train"))
    for pid in test:
        for camid in CAMERAS:
            clothes = outfit_for_camera(config.seed, pid, camid)
            for idx in range(1, config.images_per_camera + 1):
                plan.append(ToyImage(pid, camid, clothes, idx, "query" if idx == 1 else "gallery"))
    return plan


def outfit_count(config: ToyConfig, pid: int) -> int:
    train, _ = train_test_pids(config)
    return config.train_outfits if config.train_outfits and pid <= len(train) else TEST_OUTFITS


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """HSV (all in 0..1) to RGB, for dyed hair colours anywhere on the hue circle."""
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    return v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def sample_identity(seed: int, pid: int, head_scale: float = 1.0) -> render.Identity:
    """One person: every cue here survives a change of clothes.

    The ranges are wide on purpose (real people differ a lot in hair, skin, height and build); the
    hair colour is continuous along a natural ramp and, for about a quarter of people, dyed.
    """
    rng = _rng(seed, _IDENTITY, pid)
    skin = _ramp(SKIN_RAMP, rng.uniform(0, 1))
    if rng.uniform() < 0.25:
        hair = _hsv(rng.uniform(), rng.uniform(0.55, 0.9), rng.uniform(0.45, 0.9))
    else:
        hair = _ramp(HAIR_RAMP, rng.uniform(0, 1)) + rng.normal(0, 0.02, 3)
    shoulder = rng.uniform(0.085, 0.16)
    return render.Identity(
        stature=float(rng.uniform(0.8, 1.0)),
        # v3: 1.45x v2's head, so face, hair and glasses stay readable at 64 x 32 (docs/TOY_DATASET.md).
        head=float(rng.uniform(0.123, 0.152) * head_scale),
        head_aspect=float(rng.uniform(0.72, 0.95)),
        shoulder=float(shoulder),
        hip=float(shoulder * rng.uniform(0.65, 1.05)),
        leg=float(rng.uniform(0.40, 0.52)),
        limb=float(rng.uniform(0.022, 0.042)),
        skin=_colour(skin),
        hair_colour=_colour(hair),
        hair_style=str(rng.choice(render.HAIR_STYLES)),
        hair_length=float(rng.uniform(0.05, 0.22)),
        beard=bool(rng.uniform() < 0.2),
        glasses=_colour(GLASSES_COLOURS[rng.integers(len(GLASSES_COLOURS))]) if rng.uniform() < 0.3 else None,
    )


def _ramp(ramp: np.ndarray, position: float) -> np.ndarray:
    """Linear interpolation along a colour ramp, ``position`` in 0..1."""
    x = position * (len(ramp) - 1)
    low = min(int(np.floor(x)), len(ramp) - 2)
    return ramp[low] + (x - low) * (ramp[low + 1] - ramp[low])


def sample_outfits(seed: int, pid: int, count: int = 2) -> list[render.Outfit]:
    """``count`` outfits for one person, drawn independently of who wears them.

    Each outfit redraws garment shapes (sleeves, layer, trousers / shorts / skirt / dress, shoe
    type) and colours; two outfits of one person never share their top colour or bottom colour.
    """
    rng = _rng(seed, _OUTFIT, pid)
    outfits: list[render.Outfit] = []
    used_tops: set[int] = set()
    used_bottoms: set[int] = set()
    n = len(CLOTHES_PALETTE)
    while len(outfits) < count:
        top, top_accent, bottom, bottom_accent, layer = (int(i) for i in rng.integers(n, size=5))
        if top in used_tops or bottom in used_bottoms or top == top_accent or bottom == bottom_accent:
            continue
        used_tops.add(top)
        used_bottoms.add(bottom)

        def jitter(index: int) -> tuple[float, float, float]:
            return _colour(CLOTHES_PALETTE[index] + rng.normal(0, 0.03, 3))

        outfits.append(
            render.Outfit(
                top=jitter(top),
                top_accent=jitter(top_accent),
                top_pattern=str(rng.choice(render.PATTERNS, p=[0.4, 0.15, 0.15, 0.15, 0.15])),
                top_style=str(rng.choice(render.TOP_STYLES, p=[0.15, 0.35, 0.25, 0.25])),
                layer=jitter(layer),
                bottom=jitter(bottom),
                bottom_accent=jitter(bottom_accent),
                bottom_pattern=str(rng.choice(render.PATTERNS, p=[0.7, 0.05, 0.1, 0.1, 0.05])),
                bottom_style=str(rng.choice(render.BOTTOM_STYLES, p=[0.45, 0.2, 0.12, 0.1, 0.13])),
                shoes=_colour(SHOE_PALETTE[rng.integers(len(SHOE_PALETTE))] + rng.normal(0, 0.02, 3)),
                shoe_style=str(rng.choice(render.SHOE_STYLES, p=[0.7, 0.3])),
                pattern_period=float(rng.uniform(0.045, 0.075)),
            )
        )
    return outfits


def sample_cameras(seed: int) -> dict[int, render.Camera]:
    """Four views with different backgrounds, lighting and framing."""
    rng = _rng(seed, _CAMERA)
    textures = rng.permutation(render.BACKGROUND_TEXTURES)
    cameras = {}
    for camid, texture in zip(CAMERAS, textures):
        # Muted scenes: backgrounds are greyish so clothes, not walls, carry the saturated colour.
        wall = rng.uniform(0.45, 0.8) + rng.uniform(-0.04, 0.04, 3)
        floor = rng.uniform(0.3, 0.6) + rng.uniform(-0.04, 0.04, 3)
        cameras[camid] = render.Camera(
            wall=_colour(wall),
            floor=_colour(floor),
            texture=str(texture),
            horizon=float(rng.uniform(0.45, 0.7)),
            texture_period=float(rng.uniform(6, 14)),
            gain=_colour(rng.uniform(0.88, 1.08) * rng.uniform(0.95, 1.05, 3), high=1.3),
            scale=float(rng.uniform(0.78, 0.9)),
            feet=float(rng.uniform(0.91, 0.96)),
            offset_x=float(rng.uniform(-0.06, 0.06)),
        )
    return cameras


def sample_pose(seed: int, image: ToyImage) -> render.Pose:
    rng = _rng(seed, _POSE, image.pid, image.camid, image.idx)
    return render.Pose(
        dx=float(np.clip(rng.normal(0, 1.5), -3, 3)),
        dy=float(np.clip(rng.normal(0, 1.0), -2, 2)),
        scale=float(rng.uniform(0.97, 1.03)),
        lean=float(rng.uniform(-0.02, 0.02)),
        arm_swing=float(rng.uniform(-0.25, 0.25)),
        stride=float(rng.uniform(-0.12, 0.12)),
        brightness=float(rng.uniform(0.93, 1.07)),
        noise_sigma=float(rng.uniform(0.012, 0.025)),
    )


def _colour(values, high: float = 1.0) -> tuple[float, float, float]:
    clipped = np.clip(np.asarray(values, np.float64), 0.0, high)
    return (float(clipped[0]), float(clipped[1]), float(clipped[2]))


def metadata(config: ToyConfig) -> dict:
    """What toy.json holds; equality with an existing toy.json means the dataset is up to date."""
    train, test = train_test_pids(config)
    plan = plan_images(config)
    return {
        "generator": "spcreid.toy.generator",
        "format_version": FORMAT_VERSION,
        "parameters": asdict(config),
        "jpeg_quality": JPEG_QUALITY,
        "train_pids": train,
        "test_pids": test,
        "camera1_outfit": {
            f"{pid:04d}": camera1_outfit(config.seed, pid) for pid in (test if config.train_outfits else train + test)
        },
        "counts": {
            folder: sum(1 for item in plan if item.folder == folder) for folder in ("train", "query", "gallery")
        },
        "camera_outfits": "test: cameras 2 and 3 outfit 01, camera 4 outfit 02, camera 1 per identity; "
        + (
            f"train: {config.train_outfits} outfits cycled over (camera, index)"
            if config.train_outfits
            else "train: same"
        ),
    }


@functools.lru_cache(maxsize=1024)
def _person(seed: int, pid: int, head_scale: float, outfits: int) -> tuple[render.Identity, tuple[render.Outfit, ...]]:
    """A person and their outfits, drawn once for all their images (a quarter of the rendering time otherwise)."""
    return sample_identity(seed, pid, head_scale), tuple(sample_outfits(seed, pid, outfits))


def render_image(config: ToyConfig, image: ToyImage, cameras=None) -> tuple[np.ndarray, np.ndarray]:
    """Render one planned image: ``(rgb uint8 (H, W, 3), parsing labels uint8 (H, W))``."""
    cameras = cameras if cameras is not None else sample_cameras(config.seed)
    identity, outfits = _person(config.seed, image.pid, config.head_scale, outfit_count(config, image.pid))
    outfit = outfits[image.clothes_id - 1]
    pose = sample_pose(config.seed, image)
    return render.render_person(
        identity,
        outfit,
        cameras[image.camid],
        pose,
        config.height,
        config.width,
        _rng(config.seed, _NOISE, image.pid, image.camid, image.idx),
    )


def _write_all(folder: Path, config: ToyConfig, progress: bool) -> None:
    cameras = sample_cameras(config.seed)
    for split in ("train", "query", "gallery"):
        (folder / DATASET_FOLDER / split).mkdir(parents=True)
        (folder / PARSING_FOLDER / split).mkdir(parents=True)
    for image in tqdm(plan_images(config), desc="toy images", unit="img", disable=None if progress else True):
        rgb, labels = render_image(config, image, cameras)
        Image.fromarray(rgb, "RGB").save(
            folder / DATASET_FOLDER / image.folder / f"{image.stem}.jpg", quality=JPEG_QUALITY
        )
        Image.fromarray(labels, "L").save(folder / PARSING_FOLDER / image.folder / f"{image.stem}.png")
    # Written last: its presence marks a complete dataset.
    with open(folder / METADATA_FILE, "w") as handle:
        json.dump(metadata(config), handle, indent=2, sort_keys=True)
        handle.write("\n")


def _read_metadata(out: Path) -> dict | None:
    try:
        with open(out / METADATA_FILE) as handle:
            return json.load(handle)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def is_up_to_date(out: str | os.PathLike, config: ToyConfig) -> bool:
    out = Path(out)
    return (
        _read_metadata(out) == metadata(config) and (out / DATASET_FOLDER).is_dir() and (out / PARSING_FOLDER).is_dir()
    )


def generate_toy_dataset(out: str | os.PathLike, config: ToyConfig, progress: bool = True) -> bool:
    """Write the dataset to ``out``; returns False when an identical one is already there.

    The dataset is built in a temporary sibling folder and renamed onto ``out`` at the end, so an
    interrupted run never leaves a partial dataset under ``out``.
    """
    config.validate()
    out = Path(out)
    if is_up_to_date(out, config):
        return False
    if out.exists() and not out.is_dir():
        raise SpcreidError(f"--out {out} is a file; give a folder for the toy dataset")
    if out.is_dir() and any(out.iterdir()) and _read_metadata(out) is None:
        raise SpcreidError(
            f"--out {out} is a non-empty folder without {METADATA_FILE}; it is not a toy dataset "
            "this command may replace. Choose an empty or new folder."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_folder(out)
    staging.chmod(0o755)  # mkdtemp makes it private; the dataset should be readable like any folder
    try:
        _write_all(staging, config, progress)
        _replace_folder(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return True


def _replace_folder(new: Path, out: Path) -> None:
    """Rename ``new`` onto ``out``; an old toy dataset there is moved aside first and then deleted."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        os.rename(out, old / "data")
    os.rename(new, out)
    if old is not None:
        with contextlib.suppress(OSError):
            shutil.rmtree(old)


def contact_sheet(data: str | os.PathLike, out_png: str | os.PathLike, rows: int = 6, zoom: int = 2) -> None:
    """A labelled grid: identities (rows) across cameras 1-4 (columns) plus a coloured parsing map.

    Shows the first image of each camera, so every row has both outfits side by side.
    """
    # lazy: the contact sheet only
    from PIL import ImageDraw

    from spcreid.io import atomic_path

    data = Path(data)
    meta = _read_metadata(data)
    if meta is None:
        raise SpcreidError(f"--data {data} has no {METADATA_FILE}; generate it with `spcreid make-toy-data`")
    pids = (meta["test_pids"] + meta["train_pids"])[:rows]
    tiles = {}
    for pid in pids:
        for camid in CAMERAS:
            matches = sorted((data / DATASET_FOLDER).glob(f"*/{pid:04d}-{camid:02d}-*-01.jpg"))
            if not matches:
                raise SpcreidError(
                    f"{data / DATASET_FOLDER} lacks an image of person {pid:04d} in camera {camid}; "
                    "regenerate the dataset"
                )
            tiles[pid, camid] = matches[0]
    first = Image.open(tiles[pids[0], 1])
    tile_w, tile_h = first.width * zoom, first.height * zoom
    label_h, header_h, left_w, gap = 14, 16, 44, 4
    columns = len(CAMERAS) + 1
    sheet = Image.new(
        "RGB", (left_w + columns * (tile_w + gap), header_h + len(pids) * (tile_h + label_h + gap)), "white"
    )
    draw = ImageDraw.Draw(sheet)
    for col, title in enumerate([f"cam {c}" for c in CAMERAS] + ["parsing c2"]):
        draw.text((left_w + col * (tile_w + gap) + 2, 2), title, fill="black")
    colours = np.array(
        [
            [40, 40, 40],
            [120, 60, 20],
            [250, 200, 160],
            [220, 40, 40],
            [40, 80, 220],
            [240, 160, 120],
            [200, 130, 100],
            [250, 230, 40],
        ],
        np.uint8,
    )
    for row, pid in enumerate(pids):
        y = header_h + row * (tile_h + label_h + gap)
        draw.text((2, y + tile_h // 2), f"ID {pid:04d}", fill="black")
        for col, camid in enumerate(CAMERAS):
            path = tiles[pid, camid]
            x = left_w + col * (tile_w + gap)
            sheet.paste(Image.open(path).convert("RGB").resize((tile_w, tile_h), Image.NEAREST), (x, y))
            outfit = path.stem.split("-")[2]
            draw.text((x + 2, y + tile_h + 1), f"outfit {outfit}", fill="black")
        parsing = data / PARSING_FOLDER / tiles[pid, 2].parent.name / f"{tiles[pid, 2].stem}.png"
        labels = np.asarray(Image.open(parsing))
        x = left_w + len(CAMERAS) * (tile_w + gap)
        sheet.paste(Image.fromarray(colours[labels]).resize((tile_w, tile_h), Image.NEAREST), (x, y))
    with atomic_path(out_png) as tmp:
        # 256 colours are plenty for a preview and keep a committed sheet a third of the size.
        sheet.quantize(256, dither=Image.Dither.NONE).save(tmp, format="PNG", optimize=True)
