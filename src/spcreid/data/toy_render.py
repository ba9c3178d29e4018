"""Rasterise one procedural person into an RGB image and its 8-class parsing map.

A person is a frontal stick figure fleshed out with capsules and ellipses. Every shape is a
boolean mask computed over the whole pixel grid at once, painted back to front into a label map;
colours, clothing patterns and shading are then looked up per label. The parsing map is therefore
exact by construction, which is what the clothing synthesiser needs.

All lengths below are fractions of the person's pixel height ``P`` so that the same identity keeps
its proportions under every camera's scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spcreid.data.parsing_labels import ARMS, BACKGROUND, FACE, HAIR, LEGS, LOWER_CLOTHES, SHOES, UPPER_CLOTHES

HAIR_STYLES = ("buzz", "short", "bob", "long", "bun")
PATTERNS = ("plain", "hstripes", "vstripes", "checks", "dots")
SLEEVES = ("long", "short")
BOTTOM_STYLES = ("trousers", "shorts", "skirt")
BACKGROUND_TEXTURES = ("panels", "bricks", "gradient", "tiles")


@dataclass(frozen=True)
class Identity:
    """What stays the same when a person changes clothes."""

    stature: float  # person height as a fraction of the camera's nominal person height
    head: float  # head radius / P
    shoulder: float  # shoulder half-width / P
    hip: float  # hip half-width / P
    leg: float  # hip-to-sole length / P
    limb: float  # limb radius / P
    skin: tuple[float, float, float]  # RGB in 0..1
    hair_colour: tuple[float, float, float]
    hair_style: str
    hair_length: float  # how far long/bob hair falls below the chin, / P


@dataclass(frozen=True)
class Outfit:
    """What changes with clothes: colours and patterns drawn from a palette shared by everyone."""

    top: tuple[float, float, float]
    top_accent: tuple[float, float, float]
    top_pattern: str
    sleeves: str
    bottom: tuple[float, float, float]
    bottom_accent: tuple[float, float, float]
    bottom_pattern: str
    bottom_style: str
    shoes: tuple[float, float, float]
    pattern_period: float  # / P


@dataclass(frozen=True)
class Camera:
    """A fixed view: its background, lighting and where/how large people appear."""

    wall: tuple[float, float, float]
    floor: tuple[float, float, float]
    texture: str
    horizon: float  # wall/floor boundary, fraction of image height
    texture_period: float  # pixels
    gain: tuple[float, float, float]  # per-channel illumination (colour cast and brightness)
    scale: float  # nominal person height / image height
    feet: float  # feet line, fraction of image height
    offset_x: float  # horizontal centre offset, fraction of image width


@dataclass(frozen=True)
class Pose:
    """Per-image jitter: nobody stands exactly the same way twice."""

    dx: float  # pixels
    dy: float  # pixels
    scale: float  # multiplicative
    lean: float  # horizontal shift of the head relative to the feet, / P
    arm_swing: float  # radians, left arm; the right arm swings the opposite way
    stride: float  # radians, left leg; the right leg mirrors it
    brightness: float  # multiplicative
    noise_sigma: float  # 0..1 intensity units


def _capsule(yy: np.ndarray, xx: np.ndarray, a: tuple[float, float], b: tuple[float, float], radius: float):
    """Mask of points within ``radius`` of segment a-b, and the normalised distance (for shading)."""
    ay, ax = a
    by, bx = b
    dy, dx = by - ay, bx - ax
    length2 = max(dy * dy + dx * dx, 1e-9)
    t = np.clip(((yy - ay) * dy + (xx - ax) * dx) / length2, 0.0, 1.0)
    dist = np.hypot(yy - (ay + t * dy), xx - (ax + t * dx))
    return dist <= radius, dist / radius


def _ellipse(yy, xx, cy: float, cx: float, ry: float, rx: float):
    rho = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
    return rho <= 1.0, rho


def _pattern_mask(pattern: str, u: np.ndarray, v: np.ndarray, period: float) -> np.ndarray:
    """Where the accent colour shows; u, v are person-relative coordinates so patterns scale with P."""
    if pattern == "plain":
        return np.zeros(u.shape, dtype=bool)
    if pattern == "hstripes":
        return np.mod(v / period, 1.0) < 0.45
    if pattern == "vstripes":
        return np.mod(u / period, 1.0) < 0.45
    if pattern == "checks":
        return (np.floor(u / period) + np.floor(v / period)) % 2 == 0
    if pattern == "dots":
        cu = np.mod(u / period, 1.0) - 0.5
        cv = np.mod(v / period, 1.0) - 0.5
        return cu * cu + cv * cv < 0.09
    raise ValueError(f"unknown pattern {pattern!r}")


def render_background(camera: Camera, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """The camera's scene (before lighting), float32 (H, W, 3).

    The scene changes a little from shot to shot (light on the walls, where the texture falls, a
    few objects standing around) so that a camera is recognisable but not pixel-identical; a fixed
    backdrop would let any feature match strangers simply for being seen by the same camera.
    """
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    horizon = camera.horizon * height + rng.uniform(-2, 2)
    wall = np.asarray(camera.wall, np.float32) * rng.uniform(0.92, 1.08) + rng.normal(0, 0.02, 3)
    floor = np.asarray(camera.floor, np.float32) * rng.uniform(0.92, 1.08) + rng.normal(0, 0.02, 3)
    texture_x = xx + rng.uniform(0, camera.texture_period)
    is_floor = (yy >= horizon)[..., None]
    period = camera.texture_period
    if camera.texture == "panels":
        shade = 1.0 - 0.12 * (np.mod(texture_x / period, 1.0) < 0.15)
    elif camera.texture == "bricks":
        row = np.floor(yy / (period * 0.5))
        shift = (row % 2) * period * 0.5
        mortar = (np.mod(yy, period * 0.5) < 1.0) | (np.mod(texture_x + shift, period) < 1.0)
        shade = 1.0 - 0.15 * mortar
    elif camera.texture == "gradient":
        shade = 0.85 + 0.3 * (xx / max(width - 1, 1))
    elif camera.texture == "tiles":
        shade = 1.0 - 0.1 * ((np.floor(texture_x / period) + np.floor(yy / period)) % 2)
    else:
        raise ValueError(f"unknown texture {camera.texture!r}")
    # Floors recede: darker towards the horizon, lighter towards the camera.
    depth = np.clip((yy - horizon) / max(height - horizon, 1.0), 0.0, 1.0)
    floor_shade = 0.8 + 0.25 * depth
    image = np.where(is_floor, floor * floor_shade[..., None], wall * shade[..., None])
    for _ in range(rng.integers(0, 4)):
        # Clutter (bins, posts, bags): muted boxes standing on the floor line.
        box_h, box_w = rng.uniform(0.08, 0.4) * height, rng.uniform(0.1, 0.35) * width
        base_y = rng.uniform(horizon, height)
        left = rng.uniform(-0.2, 1.0) * width
        box = (yy >= base_y - box_h) & (yy <= base_y) & (xx >= left) & (xx <= left + box_w)
        grey = rng.uniform(0.2, 0.8)
        image[box] = np.clip(grey + rng.normal(0, 0.06, 3), 0, 1)
    return image.astype(np.float32)


def render_person(
    identity: Identity,
    outfit: Outfit,
    camera: Camera,
    pose: Pose,
    height: int,
    width: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(image uint8 (H, W, 3), labels uint8 (H, W))`` for one person seen by one camera."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    P = height * camera.scale * identity.stature * pose.scale
    foot_y = camera.feet * height + pose.dy
    cx = width * (0.5 + camera.offset_x) + pose.dx
    top = foot_y - P

    head_r = identity.head * P
    head_cy = top + 1.1 * head_r
    head_cx = cx + pose.lean * P
    chin_y = head_cy + 1.1 * head_r
    shoulder_y = chin_y + 0.035 * P
    hip_y = foot_y - identity.leg * P
    ankle_y = foot_y - 0.03 * P
    sw, hw = identity.shoulder * P, identity.hip * P
    limb = max(identity.limb * P, 1.2)
    leg_r = limb * 1.3
    torso_cx_top = cx + 0.6 * pose.lean * P

    labels = np.full((height, width), BACKGROUND, np.uint8)
    shading = np.zeros((height, width), np.float32)  # 0 = lit centre, 1 = silhouette edge

    def paint(mask: np.ndarray, label: int, rho: np.ndarray | None = None) -> None:
        labels[mask] = label
        shading[mask] = 0.0 if rho is None else np.clip(rho[mask], 0.0, 1.0)

    style = identity.hair_style
    hair_len = identity.hair_length * P
    # Hair that falls behind the shoulders is drawn first so the torso and face cover it.
    if style in ("long", "bob"):
        bottom = chin_y + (hair_len if style == "long" else 0.2 * hair_len)
        back_hair, rho = _capsule(yy, xx, (head_cy, head_cx), (bottom, head_cx), 1.2 * head_r)
        paint(back_hair, HAIR, rho)

    # Legs with stride: each leg pivots at its hip joint.
    hips = {}
    for side, sign in (("left", -1.0), ("right", 1.0)):
        hip = (hip_y, cx + sign * 0.55 * hw)
        angle = pose.stride * (-sign)
        length = ankle_y - hip_y
        ankle = (hip_y + length * np.cos(angle), hip[1] + length * np.sin(angle) + sign * 0.02 * P)
        hips[side] = (hip, ankle)
        mask, rho = _capsule(yy, xx, hip, ankle, leg_r)
        paint(mask, LEGS, rho)

    # Lower clothes over the legs; how far down they reach depends on the garment.
    u = (xx - cx) / P
    v = (yy - top) / P
    knee_frac = {"trousers": 0.97, "shorts": 0.42, "skirt": 0.5}[outfit.bottom_style]
    for hip, ankle in hips.values():
        end = (hip[0] + knee_frac * (ankle[0] - hip[0]), hip[1] + knee_frac * (ankle[1] - hip[1]))
        mask, rho = _capsule(yy, xx, hip, end, leg_r * 1.2)
        if outfit.bottom_style != "skirt":
            paint(mask, LOWER_CLOTHES, rho)
    pelvis_top = hip_y - 0.06 * P
    if outfit.bottom_style == "skirt":
        skirt_bottom = hip_y + 0.5 * (ankle_y - hip_y)
        frac = np.clip((yy - pelvis_top) / max(skirt_bottom - pelvis_top, 1.0), 0.0, 1.0)
        half = hw * (1.0 + 0.9 * frac)
        skirt = (yy >= pelvis_top) & (yy <= skirt_bottom) & (np.abs(xx - cx) <= half)
        paint(skirt, LOWER_CLOTHES, np.abs(xx - cx) / np.maximum(half, 1.0))
    else:
        pelvis = (yy >= pelvis_top) & (yy <= hip_y + leg_r) & (np.abs(xx - cx) <= hw + 0.5)
        paint(pelvis, LOWER_CLOTHES, np.abs(xx - cx) / max(hw, 1.0))

    for _, ankle in hips.values():
        shoe, rho = _ellipse(yy, xx, ankle[0] + 0.01 * P, ankle[1], 0.028 * P + 0.5, leg_r * 1.25)
        paint(shoe, SHOES, rho)

    # Torso: a trapezoid from the shoulders to the hips, leaning with the body.
    frac = np.clip((yy - shoulder_y) / max(hip_y - shoulder_y, 1.0), 0.0, 1.0)
    centre = torso_cx_top + frac * (cx - torso_cx_top)
    half = sw + frac * (hw - sw)
    torso = (yy >= shoulder_y) & (yy <= hip_y - 0.02 * P) & (np.abs(xx - centre) <= half)
    paint(torso, UPPER_CLOTHES, np.abs(xx - centre) / np.maximum(half, 1.0))
    round_shoulders, rho = _capsule(yy, xx, (shoulder_y + limb, torso_cx_top - sw + limb),
                                    (shoulder_y + limb, torso_cx_top + sw - limb), limb * 1.3)
    paint(round_shoulders, UPPER_CLOTHES, rho)

    # Arms hang from the shoulders and swing; sleeves cover the upper arm or the whole arm.
    arm_len = 0.36 * P
    for sign in (-1.0, 1.0):
        shoulder = (shoulder_y + limb, torso_cx_top + sign * (sw - 0.3 * limb))
        angle = pose.arm_swing * sign + sign * 0.12
        elbow = (shoulder[0] + 0.5 * arm_len * np.cos(angle), shoulder[1] + 0.5 * arm_len * np.sin(angle))
        wrist = (elbow[0] + 0.5 * arm_len * np.cos(angle * 0.6), elbow[1] + 0.5 * arm_len * np.sin(angle * 0.6))
        upper, rho_u = _capsule(yy, xx, shoulder, elbow, limb)
        fore, rho_f = _capsule(yy, xx, elbow, wrist, limb * 0.9)
        hand, rho_h = _ellipse(yy, xx, wrist[0] + 0.5 * limb, wrist[1], limb * 1.1, limb)
        paint(hand, ARMS, rho_h)
        paint(fore, UPPER_CLOTHES if outfit.sleeves == "long" else ARMS, rho_f)
        paint(upper, UPPER_CLOTHES, rho_u)

    neck, rho = _capsule(yy, xx, (chin_y - head_r * 0.5, head_cx), (shoulder_y + 1.0, torso_cx_top), 0.45 * head_r)
    paint(neck, FACE, rho)
    head, rho = _ellipse(yy, xx, head_cy, head_cx, 1.1 * head_r, 0.9 * head_r)
    paint(head, FACE, rho)

    # Hair on top of the head: the style decides how far down the crown and sides it covers.
    crown_cut = {"buzz": -0.55, "short": -0.25, "bob": 0.1, "long": 0.05, "bun": -0.3}[style]
    hair_scale = 0.96 if style == "buzz" else 1.1
    cap, rho = _ellipse(yy, xx, head_cy - 0.05 * head_r, head_cx, 1.1 * head_r * hair_scale,
                        0.9 * head_r * hair_scale)
    on_crown = yy <= head_cy + crown_cut * head_r
    if style in ("bob", "long"):
        # Sides frame the face instead of covering it.
        sides = np.abs(xx - head_cx) >= 0.55 * head_r
        on_crown = on_crown & ((yy <= head_cy - 0.45 * head_r) | sides)
    paint(cap & on_crown, HAIR, rho)
    if style == "bun":
        bun, rho = _ellipse(yy, xx, top - 0.15 * head_r, head_cx, 0.5 * head_r, 0.55 * head_r)
        paint(bun, HAIR, rho)

    image = _colourise(labels, shading, identity, outfit, u, v)
    # Eyes: two dark dots make a head read as a face.
    eye_y = int(round(head_cy + 0.1 * head_r))
    for sign in (-1.0, 1.0):
        ex = int(round(head_cx + sign * 0.35 * head_r))
        if 0 <= eye_y < height and 0 <= ex < width and labels[eye_y, ex] == FACE:
            image[eye_y, ex] *= 0.35

    background = render_background(camera, height, width, rng)
    person = labels != BACKGROUND
    image = np.where(person[..., None], image, background)
    image = image * np.asarray(camera.gain, np.float32) * pose.brightness
    image = image + rng.normal(0.0, pose.noise_sigma, image.shape).astype(np.float32)
    image = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return image, labels


def _colourise(labels, shading, identity: Identity, outfit: Outfit, u, v) -> np.ndarray:
    """Colour per label, with clothing patterns and cylinder-like shading across each part."""
    height, width = labels.shape
    base = np.zeros((height, width, 3), np.float32)
    for label, colour in ((HAIR, identity.hair_colour), (FACE, identity.skin), (ARMS, identity.skin),
                          (LEGS, identity.skin), (SHOES, outfit.shoes)):
        base[labels == label] = colour
    for label, colour, accent, pattern in (
        (UPPER_CLOTHES, outfit.top, outfit.top_accent, outfit.top_pattern),
        (LOWER_CLOTHES, outfit.bottom, outfit.bottom_accent, outfit.bottom_pattern),
    ):
        region = labels == label
        accent_mask = region & _pattern_mask(pattern, u, v, outfit.pattern_period)
        base[region] = colour
        base[accent_mask] = accent
    shade = 1.0 - 0.3 * shading**2
    return base * shade[..., None]
