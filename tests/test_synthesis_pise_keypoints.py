"""COCO-17 -> OpenPose-18 keypoint mapping and the keypoint R-CNN weight checks."""

import hashlib

import numpy as np
import pytest

from spcreid.errors import SpcreidError
from spcreid.synthesis.pise.keypoints import KeypointDetector, coco_to_openpose


def coco_person(score=0.9):
    """COCO joint j at x = 10 + j, y = 100 + 2 j, so each output can be traced to its source joint."""
    joints = np.arange(17)
    return np.stack([10.0 + joints, 100.0 + 2 * joints, np.full(17, score)], axis=1)


def test_joint_order_matches_openpose():
    out = coco_to_openpose(coco_person())
    assert out.shape == (18, 2) and out.dtype == np.float64
    expected_coco = {
        0: 0,
        2: 6,
        3: 8,
        4: 10,
        5: 5,
        6: 7,
        7: 9,
        8: 12,
        9: 14,
        10: 16,
        11: 11,
        12: 13,
        13: 15,
        14: 2,
        15: 1,
        16: 4,
        17: 3,
    }
    for joint, c in expected_coco.items():
        assert tuple(out[joint]) == (100 + 2 * c, 10 + c), joint  # rows are (y, x)
    # Neck: midpoint of the shoulders (COCO 5 at (110, 15), COCO 6 at (112, 16)) -> (111, 15.5), not rounded.
    assert tuple(out[1]) == (111, 15.5)


def test_keypoints_are_rounded_once_in_pise_frame():
    from spcreid.synthesis.pise.inputs import scale_keypoints

    coco = coco_person()
    coco[0, :2] = (10.4, 20.4)  # nose at x 10.4, y 20.4 of a 128 x 64 crop
    out = coco_to_openpose(coco)
    assert tuple(out[0]) == (20.4, 10.4)
    # stretch: x (10.4 + .5) * 2.75 - .5 = 29.475 -> 29 (rounding 10.4 to 10 first gives 28.375 -> 28);
    # y (20.4 + .5) * 2 - .5 = 41.3 -> 41 (first 20 gives 40.5 -> 40).
    assert scale_keypoints(out, (128, 64), "stretch")[0].tolist() == [41, 29]
    # pad: factor 2 both ways, 24 white columns on the left: x 10.9 * 2 - .5 + 24 = 45.3 -> 45 (first 10: 44.5 -> 44).
    assert scale_keypoints(out, (128, 64), "pad")[0].tolist() == [41, 45]


def test_low_scores_are_missing_and_neck_needs_both_shoulders():
    coco = coco_person()
    coco[6, 2] = 0.1  # right shoulder unsure
    coco[0, 2] = 0.29
    out = coco_to_openpose(coco, score_threshold=0.3)
    assert tuple(out[2]) == (-1, -1) and tuple(out[0]) == (-1, -1)
    assert tuple(out[1]) == (-1, -1)  # no neck without both shoulders
    assert tuple(out[5]) == (110, 15)  # left shoulder still there
    assert (coco_to_openpose(coco_person(score=0.0)) == -1).all()


def test_wrong_shape_is_rejected():
    with pytest.raises(SpcreidError, match=r"\(17, 3\)"):
        coco_to_openpose(np.zeros((18, 3)))


def test_weight_file_errors_name_the_file(tmp_path):
    with pytest.raises(SpcreidError, match="fetch-weights --name keypointrcnn-coco"):
        KeypointDetector(None)
    missing = tmp_path / "kp.pth"
    with pytest.raises(SpcreidError, match=r"kp\.pth does not exist"):
        KeypointDetector(missing)
    missing.write_bytes(b"not a checkpoint")
    with pytest.raises(SpcreidError, match=r"kp\.pth has sha256 .*starts with fc266e95"):
        KeypointDetector(missing)  # not torchvision's published file
    with pytest.raises(SpcreidError, match=r"kp\.pth is not a readable PyTorch weights file"):
        KeypointDetector(missing, registered_as=None)
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(SpcreidError, match=r"kp\.pth has sha256 .* expected " + wrong):
        KeypointDetector(missing, sha256=wrong)


def test_foreign_state_dict_is_rejected(tmp_path):
    import torch

    path = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, path)
    with pytest.raises(SpcreidError, match="does not hold keypointrcnn_resnet50_fpn COCO weights"):
        KeypointDetector(path, registered_as=None)
