"""Rasterise one procedural person into an RGB image and its 8-class parsing map.

A person is a frontal stick figure fleshed out with capsules and ellipses. Every shape is a
boolean mask computed over the whole pixel grid at once, painted back to front into a label map;
colours, clothing patterns and shading are then looked up per label. The parsing map is therefore
exact by construction, which is what the clothing synthesiser needs.

The head is drawn large (about a quarter of the body height, cartoon proportions) so that face, hair
and glasses stay several pixels wide at the 64 x 32 input the embedded profile trains on: identity
must be visible where clothes are not.

All lengths below are fractions of the person's pixel height ``P`` so that the same identity keeps
its proportions under every camera's scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spcreid.data.parsing_labels import ARMS, BACKGROUND, FACE, HAIR, LEGS, LOWER_CLOTHES, SHOES, UPPER_CLOTHES

HAIR_STYLES = ("bald", "buzz", "short", "quiff", "bob", "long", "ponytail", "bun", "afro")
PATTERNS = ("plain", "hstripes", "vstripes", "checks", "dots")
# Upper garments: sleeve length and whether an open jacket is worn over a shirt (a layer).
TOP_STYLES = ("tank", "tshirt", "longsleeve", "jacket")
# Lower garments; a dress is one upper-body garment down to the knees (LIP labels dresses as upper clothes).
BOTTOM_STYLES = ("trousers", "shorts", "skirt", "longskirt", "dress")
SHOE_STYLES = ("low", "boots")
BACKGROUND_TEXTURES = ("panels", "bricks", "gradient", "tiles")


@dataclass(frozen=True)
class Identity:
    """What stays the same when a person changes clothes."""

    stature: float  # person height as a fraction of the camera's nominal person height
    head: float  # head radius / P
    head_aspect: float  # head width / head height (round to narrow faces)
    shoulder: float  # shoulder half-width / P
    hip: float  # hip half-width / P
    leg: float  # hip-to-sole length / P
    limb: float  # limb radius / P (build: thin to heavy)
    skin: tuple[float, float, float]  # RGB in 0..1
    hair_colour: tuple[float, float, float]
    hair_style: str
    hair_length: float  # how far long/bob hair falls below the chin, / P
    beard: bool
    glasses: tuple[float, float, float] | None  # frame colour, or no glasses


@dataclass(frozen=True)
class Outfit:
    """What changes with clothes: garment shapes, colours and patterns from a palette shared by everyone."""

    top: tuple[float, float, float]
    top_accent: tuple[float, float, float]
    top_pattern: str
    top_style: str
    layer: tuple[float, float, float]  # the shirt seen under an open jacket (jacket style only)
    bottom: tuple[float, float, float]
    bottom_accent: tuple[float, float, float]
    bottom_pattern: str
    bottom_style: str
    shoes: tuple[float, float, float]
    shoe_style: str
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

    head_r = identity.head * P  # half the head's height
    head_rx = head_r * identity.head_aspect
    head_cy = top + head_r * (1.35 if identity.hair_style in ("quiff", "afro", "bun") else 1.05)
    head_cx = cx + pose.lean * P
    chin_y = head_cy + head_r
    shoulder_y = chin_y + 0.03 * P
    hip_y = foot_y - identity.leg * P
    ankle_y = foot_y - 0.03 * P
    sw, hw = identity.shoulder * P, identity.hip * P
    limb = max(identity.limb * P, 1.2)
    leg_r = limb * 1.3
    torso_cx_top = cx + 0.6 * pose.lean * P

    labels = np.full((height, width), BACKGROUND, np.uint8)
    shading = np.zeros((height, width), np.float32)  # 0 = lit centre, 1 = silhouette edge
    layer = np.zeros((height, width), bool)  # the shirt under an open jacket

    def paint(mask: np.ndarray, label: int, rho: np.ndarray | None = None) -> None:
        labels[mask] = label
        layer[mask] = False
        shading[mask] = 0.0 if rho is None else np.clip(rho[mask], 0.0, 1.0)

    style = identity.hair_style
    hair_len = identity.hair_length * P
    # Hair that falls behind the shoulders is drawn first so the torso and face cover it.
    if style in ("long", "bob"):
        bottom = chin_y + (hair_len if style == "long" else 0.15 * hair_len)
        back_hair, rho = _capsule(yy, xx, (head_cy, head_cx), (bottom, head_cx), 1.15 * head_rx)
        paint(back_hair, HAIR, rho)
    elif style == "ponytail":
        tail, rho = _capsule(
            yy,
            xx,
            (head_cy - 0.6 * head_r, head_cx + 0.9 * head_rx),
            (chin_y + 0.6 * hair_len, head_cx + 1.3 * head_rx),
            0.35 * head_rx,
        )
        paint(tail, HAIR, rho)
    elif style == "afro":
        puff, rho = _ellipse(yy, xx, head_cy - 0.3 * head_r, head_cx, 1.35 * head_r, 1.45 * head_rx)
        paint(puff, HAIR, rho)

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

    u = (xx - cx) / P
    v = (yy - top) / P
    bottom_style = outfit.bottom_style
    pelvis_top = hip_y - 0.06 * P
    if bottom_style in ("trousers", "shorts"):
        reach = 0.97 if bottom_style == "trousers" else 0.4
        for hip, ankle in hips.values():
            end = (hip[0] + reach * (ankle[0] - hip[0]), hip[1] + reach * (ankle[1] - hip[1]))
            mask, rho = _capsule(yy, xx, hip, end, leg_r * 1.25)
            paint(mask, LOWER_CLOTHES, rho)
        pelvis = (yy >= pelvis_top) & (yy <= hip_y + leg_r) & (np.abs(xx - cx) <= hw + 0.5)
        paint(pelvis, LOWER_CLOTHES, np.abs(xx - cx) / max(hw, 1.0))
    else:
        # Skirts and dresses flare from the hips; a dress is one garment with the top (upper clothes).
        reach = {"skirt": 0.45, "longskirt": 0.85, "dress": 0.55}[bottom_style]
        hem = hip_y + reach * (ankle_y - hip_y)
        frac = np.clip((yy - pelvis_top) / max(hem - pelvis_top, 1.0), 0.0, 1.0)
        half = hw * (1.05 + 0.8 * frac)
        skirt = (yy >= pelvis_top) & (yy <= hem) & (np.abs(xx - cx) <= half)
        paint(
            skirt, UPPER_CLOTHES if bottom_style == "dress" else LOWER_CLOTHES, np.abs(xx - cx) / np.maximum(half, 1.0)
        )

    for _, ankle in hips.values():
        shoe, rho = _ellipse(yy, xx, ankle[0] + 0.01 * P, ankle[1], 0.028 * P + 0.5, leg_r * 1.3)
        paint(shoe, SHOES, rho)
        if outfit.shoe_style == "boots":
            shaft, rho = _capsule(yy, xx, (ankle[0] - 0.11 * P, ankle[1]), ankle, leg_r * 1.15)
            paint(shaft, SHOES, rho)

    # Torso: a trapezoid from the shoulders to the hips, leaning with the body.
    frac = np.clip((yy - shoulder_y) / max(hip_y - shoulder_y, 1.0), 0.0, 1.0)
    centre = torso_cx_top + frac * (cx - torso_cx_top)
    half = sw + frac * (hw - sw)
    torso = (yy >= shoulder_y) & (yy <= hip_y - 0.02 * P) & (np.abs(xx - centre) <= half)
    paint(torso, UPPER_CLOTHES, np.abs(xx - centre) / np.maximum(half, 1.0))
    round_shoulders, rho = _capsule(
        yy, xx, (shoulder_y + limb, torso_cx_top - sw + limb), (shoulder_y + limb, torso_cx_top + sw - limb), limb * 1.3
    )
    paint(round_shoulders, UPPER_CLOTHES, rho)
    if outfit.top_style == "jacket":
        # An open jacket: the shirt shows in a strip down the middle, the jacket hangs a little lower.
        layer |= torso & (np.abs(xx - centre) <= 0.35 * half)
        hang = (yy > hip_y - 0.02 * P) & (yy <= hip_y + 0.05 * P) & (np.abs(xx - cx) <= hw + 1.0)
        hang &= np.abs(xx - cx) > 0.35 * hw
        paint(hang, UPPER_CLOTHES, np.abs(xx - cx) / max(hw, 1.0))

    # Arms hang from the shoulders and swing; sleeves cover nothing, the upper arm, or the whole arm.
    sleeve_upper = outfit.top_style != "tank"
    sleeve_fore = outfit.top_style in ("longsleeve", "jacket")
    arm_len = 0.34 * P
    for sign in (-1.0, 1.0):
        shoulder = (shoulder_y + limb, torso_cx_top + sign * (sw - 0.3 * limb))
        angle = pose.arm_swing * sign + sign * 0.12
        elbow = (shoulder[0] + 0.5 * arm_len * np.cos(angle), shoulder[1] + 0.5 * arm_len * np.sin(angle))
        wrist = (elbow[0] + 0.5 * arm_len * np.cos(angle * 0.6), elbow[1] + 0.5 * arm_len * np.sin(angle * 0.6))
        upper, rho_u = _capsule(yy, xx, shoulder, elbow, limb * (1.1 if sleeve_upper else 0.95))
        fore, rho_f = _capsule(yy, xx, elbow, wrist, limb * 0.9)
        hand, rho_h = _ellipse(yy, xx, wrist[0] + 0.5 * limb, wrist[1], limb * 1.1, limb)
        paint(hand, ARMS, rho_h)
        paint(fore, UPPER_CLOTHES if sleeve_fore else ARMS, rho_f)
        paint(upper, UPPER_CLOTHES if sleeve_upper else ARMS, rho_u)

    neck, rho = _capsule(yy, xx, (chin_y - head_r * 0.5, head_cx), (shoulder_y + 1.0, torso_cx_top), 0.4 * head_rx)
    paint(neck, FACE, rho)
    head, rho = _ellipse(yy, xx, head_cy, head_cx, head_r, head_rx)
    paint(head, FACE, rho)
    if identity.beard:
        beard = (
            head
            & (yy >= head_cy + 0.35 * head_r)
            & ~((np.abs(xx - head_cx) < 0.3 * head_rx) & (yy < head_cy + 0.6 * head_r))
        )
        paint(beard, HAIR, rho)

    # Hair on top of the head: the style decides how far down the crown and sides it covers.
    if style != "bald":
        crown_cut = {
            "buzz": -0.6,
            "short": -0.3,
            "quiff": -0.3,
            "bob": 0.1,
            "long": 0.05,
            "ponytail": -0.35,
            "bun": -0.35,
            "afro": -0.2,
        }[style]
        hair_scale = 1.0 if style == "buzz" else 1.12
        cap, rho = _ellipse(yy, xx, head_cy - 0.05 * head_r, head_cx, head_r * hair_scale, head_rx * hair_scale)
        on_crown = yy <= head_cy + crown_cut * head_r
        if style in ("bob", "long"):
            # Sides frame the face instead of covering it.
            sides = np.abs(xx - head_cx) >= 0.6 * head_rx
            on_crown = on_crown & ((yy <= head_cy - 0.45 * head_r) | sides)
        paint(cap & on_crown, HAIR, rho)
        if style == "quiff":
            quiff, rho = _ellipse(
                yy, xx, head_cy - 1.05 * head_r, head_cx + 0.2 * head_rx, 0.45 * head_r, 0.75 * head_rx
            )
            paint(quiff, HAIR, rho)
        elif style == "bun":
            bun, rho = _ellipse(yy, xx, head_cy - 1.2 * head_r, head_cx, 0.4 * head_r, 0.45 * head_rx)
            paint(bun, HAIR, rho)

    image = _colourise(labels, shading, layer, identity, outfit, u, v)
    face = labels == FACE
    eye_y = head_cy - 0.05 * head_r
    if identity.glasses is not None:
        # A frame across both eyes; part of the face, as in LIP parsing (sunglasses -> face).
        frame = face & (np.abs(yy - eye_y) <= max(0.16 * head_r, 0.6)) & (np.abs(xx - head_cx) <= 0.85 * head_rx)
        image[frame] = identity.glasses
    # Eyes: two dark dots make a head read as a face.
    for sign in (-1.0, 1.0):
        ey, ex = int(round(eye_y)), int(round(head_cx + sign * 0.38 * head_rx))
        if 0 <= ey < height and 0 <= ex < width and face[ey, ex]:
            image[ey, ex] *= 0.3

    background = render_background(camera, height, width, rng)
    person = labels != BACKGROUND
    image = np.where(person[..., None], image, background)
    image = image * np.asarray(camera.gain, np.float32) * pose.brightness
    image = image + rng.normal(0.0, pose.noise_sigma, image.shape).astype(np.float32)
    image = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return image, labels


def _colourise(labels, shading, layer, identity: Identity, outfit: Outfit, u, v) -> np.ndarray:
    """Colour per label, with clothing patterns, the jacket's inner shirt and cylinder-like shading."""
    height, width = labels.shape
    base = np.zeros((height, width, 3), np.float32)
    for label, colour in (
        (HAIR, identity.hair_colour),
        (FACE, identity.skin),
        (ARMS, identity.skin),
        (LEGS, identity.skin),
        (SHOES, outfit.shoes),
    ):
        base[labels == label] = colour
    for label, colour, accent, pattern in (
        (UPPER_CLOTHES, outfit.top, outfit.top_accent, outfit.top_pattern),
        (LOWER_CLOTHES, outfit.bottom, outfit.bottom_accent, outfit.bottom_pattern),
    ):
        region = labels == label
        accent_mask = region & _pattern_mask(pattern, u, v, outfit.pattern_period)
        base[region] = colour
        base[accent_mask] = accent
    base[layer & (labels == UPPER_CLOTHES)] = outfit.layer
    shade = 1.0 - 0.3 * shading**2
    return base * shade[..., None]
