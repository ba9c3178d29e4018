"""Body keypoints for PISE: torchvision keypoint R-CNN (COCO-17) mapped to OpenPose-18.

PISE was trained with 18 OpenPose keypoints (Pose-Transfer's annotation files). COCO's 17
keypoints cover the same joints except the neck, which OpenPose places midway between the
shoulders; it is only defined when both shoulders are seen. Order used here is OpenPose's COCO-18
(0 nose, 1 neck, 2-4 right shoulder/elbow/wrist, 5-7 left, 8-10 right hip/knee/ankle, 11-13 left,
14 right eye, 15 left eye, 16 right ear, 17 left ear), which is what PISE's limb list connects
(right shoulder 2 to joint 16, left shoulder 5 to joint 17), even though PISE's label-name list
swaps the left/right eye and ear names.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from spcreid.errors import SpcreidError
from spcreid.synthesis.pise import require_weights

MISSING = -1
NUM_OPENPOSE = 18
# OPENPOSE_FROM_COCO[j] = COCO index of OpenPose joint j (None: the neck, derived from the shoulders).
OPENPOSE_FROM_COCO: Sequence[int | None] = (
    0,
    None,
    6,
    8,
    10,
    5,
    7,
    9,
    12,
    14,
    16,
    11,
    13,
    15,
    2,
    1,
    4,
    3,
)
COCO_LEFT_SHOULDER, COCO_RIGHT_SHOULDER = 5, 6
FETCH_HINT = "fetch it with `spcreid fetch-weights --name keypointrcnn-coco` and pass --keypoint-weights"


def coco_to_openpose(coco: np.ndarray, score_threshold: float = 0.3) -> np.ndarray:
    """(17, 3) COCO keypoints (x, y, score) -> (18, 2) float OpenPose keypoints (y, x), -1 where unseen.

    Rows are (y, x) because PISE's annotation CSV lists ``keypoints_y`` then ``keypoints_x``. They stay in
    floating point: ``inputs.scale_keypoints`` rounds once, in PISE's frame, where the integers belong.
    """
    coco = np.asarray(coco, dtype=np.float64)
    if coco.shape != (17, 3):
        raise SpcreidError(f"COCO keypoints must have shape (17, 3) as (x, y, score), got {coco.shape}")
    seen = coco[:, 2] >= score_threshold
    out = np.full((NUM_OPENPOSE, 2), float(MISSING))
    for joint, c in enumerate(OPENPOSE_FROM_COCO):
        if c is not None and seen[c]:
            out[joint] = [coco[c, 1], coco[c, 0]]
    if seen[COCO_LEFT_SHOULDER] and seen[COCO_RIGHT_SHOULDER]:
        mid = (coco[COCO_LEFT_SHOULDER, :2] + coco[COCO_RIGHT_SHOULDER, :2]) / 2.0
        out[1] = [mid[1], mid[0]]
    return out


class KeypointDetector:
    """torchvision keypointrcnn_resnet50_fpn loaded from a local weights file (no downloads), batched on ``device``."""

    def __init__(
        self,
        weights: str | os.PathLike | None,
        sha256: str | None = None,
        device: str = "cpu",
        registered_as: str | None = "keypointrcnn-coco",
        min_size: int = 800,
        max_size: int = 1333,
    ):
        """``registered_as``: name in spcreid.acquisition.weights whose published hash the file must match
        (None skips that check, for weights verified when fetched or fine-tuned elsewhere). ``min_size`` /
        ``max_size``: torchvision's resize bounds (its defaults; ReID crops are upscaled to them)."""
        # lazy: torch
        import torch
        from torchvision.models.detection import keypointrcnn_resnet50_fpn

        from spcreid.device import resolve_device

        path = require_weights(weights, "keypoint R-CNN", FETCH_HINT, sha256=sha256)
        if registered_as is not None:
            # lazy: a registered hash to check only
            from spcreid.acquisition.weights import check_weights

            check_weights(registered_as, path, sha256)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several unrelated types for a bad file
            raise SpcreidError(
                f"keypoint R-CNN: {path} is not a readable PyTorch weights file ({exc}); {FETCH_HINT}"
            ) from exc
        # Only the best-scoring person is used, and torchvision sorts detections by score: keeping one box
        # gives the same keypoints while the keypoint head runs on 1 region per image instead of up to 100.
        model = keypointrcnn_resnet50_fpn(
            weights=None,
            weights_backbone=None,
            num_keypoints=17,
            min_size=min_size,
            max_size=max_size,
            box_detections_per_img=1,
        )
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError) as exc:
            raise SpcreidError(
                f"keypoint R-CNN: {path} does not hold keypointrcnn_resnet50_fpn COCO weights ({str(exc)[:200]})"
            ) from exc
        self.device = resolve_device(str(device), "keypoint R-CNN")
        self.model = model.eval().to(self.device)

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """(17, 3) COCO keypoints (x, y, score) of the highest-scoring person of each image, in one pass.

        ReID crops show one centred person, so the most confident detection is that person; all scores
        are 0 where nobody is found.
        """
        import torch

        tensors = [torch.from_numpy(np.array(im)).to(self.device).permute(2, 0, 1).float().div(255) for im in images]
        with torch.inference_mode():
            results = self.model(tensors)
        found = []
        for result in results:
            if len(result["scores"]) == 0:
                found.append(np.zeros((17, 3)))
                continue
            best = int(result["scores"].argmax())
            kp = result["keypoints"][best].cpu().numpy()  # x, y, visibility flag
            scores = result["keypoints_scores"][best].cpu().numpy()
            # keypoint scores are logits; squash them so the threshold reads as a probability.
            found.append(np.concatenate([kp[:, :2], 1.0 / (1.0 + np.exp(-scores[:, None]))], axis=1))
        return found

    def detect(self, image: np.ndarray) -> np.ndarray:
        return self.detect_batch([image])[0]

    def openpose_batch(self, images: Sequence[np.ndarray], score_threshold: float = 0.3) -> list[np.ndarray]:
        return [coco_to_openpose(c, score_threshold) for c in self.detect_batch(images)]

    def openpose(self, image: np.ndarray, score_threshold: float = 0.3) -> np.ndarray:
        return coco_to_openpose(self.detect(image), score_threshold)
