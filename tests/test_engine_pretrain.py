"""Supervised toy pretraining (the embedded profile's ImageNet stand-in): labels, batches, loss, weights file.

The end-to-end tests generate a real 4-identity toy set with `spcreid make-toy-data` and pretrain on
it for two tiny epochs at 32x16 (about a second each on one core).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from spcreid.cli import main as spcreid_main
from spcreid.engine.pretrain import (
    PretrainSettings,
    batch_hard_triplet,
    class_balanced_batches,
    load_pretraining_set,
    outfit_classes,
    pretrain_backbone,
    save_trunk,
)
from spcreid.errors import SpcreidError
from spcreid.models.backbone import build_model

TOY_IDENTITIES = 4
TOY_IMAGES_PER_CAMERA = 2
TOY_CAMERAS = 4
TINY = dict(arch="resnet18-small", height=32, width=16, epochs=2, classes_per_batch=4, images_per_class=2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pretrain") / "toy"
    argv = [
        "make-toy-data",
        "--out",
        str(root),
        "--seed",
        "7",
        "--identities",
        str(TOY_IDENTITIES),
        "--images-per-camera",
        str(TOY_IMAGES_PER_CAMERA),
        "--height",
        "48",
        "--width",
        "24",
        "--quiet",
    ]
    assert spcreid_main(argv) == 0
    return root


def trunk_of(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


# --- labels and batches --------------------------------------------------------------------------


def test_each_outfit_of_each_person_is_its_own_class():
    pids = np.array([3, 3, 5, 3, 5, 9])
    clothes = np.array([1, 2, 1, 1, 2, 1])
    # Sorted pairs: (3,1)->0, (3,2)->1, (5,1)->2, (5,2)->3, (9,1)->4.
    assert outfit_classes(pids, clothes).tolist() == [0, 1, 2, 0, 3, 4]


def test_pretraining_set_uses_every_image_of_every_identity_labelled_by_outfit(toy):
    dataset = load_pretraining_set(toy)
    # Train, query and gallery alike: 4 people x 4 cameras x 2 images.
    assert len(dataset.paths) == TOY_IDENTITIES * TOY_CAMERAS * TOY_IMAGES_PER_CAMERA
    assert dataset.n_identities == TOY_IDENTITIES
    assert dataset.n_classes == 2 * TOY_IDENTITIES  # two outfits per person
    splits = {Path(p).parent.name for p in dataset.paths}
    assert splits == {"train", "query", "gallery"}
    # File names are PID-CAM-CLOTHES-IDX: one class never mixes people or outfits.
    for label in range(dataset.n_classes):
        names = [Path(p).stem.split("-") for p, c in zip(dataset.paths, dataset.labels) if c == label]
        assert len({(n[0], n[2]) for n in names}) == 1


def test_oracle_set_is_the_train_split_labelled_by_identity(toy):
    dataset = load_pretraining_set(toy, labels="identity", split="train")
    train_people = TOY_IDENTITIES // 2
    assert len(dataset.paths) == train_people * TOY_CAMERAS * TOY_IMAGES_PER_CAMERA
    assert {Path(p).parent.name for p in dataset.paths} == {"train"}
    assert dataset.n_identities == dataset.n_classes == train_people
    # One class per person, whatever the outfit: both outfits of a person share a label.
    for label in range(dataset.n_classes):
        names = [Path(p).stem.split("-") for p, c in zip(dataset.paths, dataset.labels) if c == label]
        assert len({n[0] for n in names}) == 1 and len({n[2] for n in names}) == 2


@pytest.mark.parametrize("labels, split, message", [("clothes", "all", "--labels"), ("outfit", "test", "--split")])
def test_unknown_labels_or_split_are_refused(toy, labels, split, message):
    with pytest.raises(SpcreidError, match=message):
        load_pretraining_set(toy, labels=labels, split=split)


def test_class_balanced_batches_cover_every_class_once_with_k_images():
    labels = np.array([0] * 5 + [1] * 2 + [2] * 4)
    batches = class_balanced_batches(
        labels, classes_per_batch=2, images_per_class=3, generator=torch.Generator().manual_seed(0)
    )
    assert [len(b) for b in batches] == [6, 3]
    classes_seen = []
    for batch in batches:
        for start in range(0, len(batch), 3):
            group = batch[start : start + 3]
            assert len({labels[i] for i in group}) == 1  # K consecutive images of one class
            classes_seen.append(int(labels[group[0]]))
            if labels[group[0]] != 1:  # classes with >= K images give K distinct ones
                assert len(set(group)) == 3
    assert sorted(classes_seen) == [0, 1, 2]


def test_class_balanced_batches_are_a_function_of_the_generator():
    labels = np.repeat(np.arange(6), 4)
    draw = lambda seed: class_balanced_batches(labels, 4, 2, torch.Generator().manual_seed(seed))  # noqa: E731
    assert draw(3) == draw(3)
    assert draw(3) != draw(4)


def test_batch_hard_triplet_hand_computed():
    features = torch.tensor([[0.0], [2.0], [2.5], [5.0], [9.0]])
    labels = torch.tensor([0, 0, 1, 1, 2])  # class 2 has no positive: not an anchor
    # Anchor 0: pos 2, neg 2.5 -> 0; anchor 1: pos 2, neg 0.5 -> 1.8; anchor 2: pos 2.5, neg 0.5 -> 2.3;
    # anchor 3: pos 2.5, neg 3 -> 0 (margin 0.3).
    loss = batch_hard_triplet(features, labels, margin=0.3)
    assert math.isclose(loss.item(), (0 + 1.8 + 2.3 + 0) / 4, rel_tol=1e-6)
    assert batch_hard_triplet(features[:1], labels[:1], 0.3).item() == 0.0


# --- end to end ----------------------------------------------------------------------------------


def test_pretrained_weights_load_strictly_and_differ_from_random_init(toy, tmp_path):
    out = tmp_path / "weights" / "toy.pth"
    summary = pretrain_backbone(toy, out, PretrainSettings(seed=1, **TINY), progress=False)
    assert summary["classes"] == 2 * TOY_IDENTITIES and summary["images"] == 32
    assert summary["steps"] == 2 * math.ceil(2 * TOY_IDENTITIES / TINY["classes_per_batch"])
    saved = trunk_of(out)
    assert not any(key.startswith(("trunk.", "neck.", "fc.")) for key in saved)  # torchvision names, trunk only
    model = build_model("resnet18-small", pretrained=out)  # raises on any missing/unexpected key
    for key, value in model.trunk.state_dict().items():
        assert torch.equal(value, saved[key]), key
    torch.manual_seed(1)
    random_init = build_model("resnet18-small").trunk.state_dict()
    assert not torch.equal(random_init["layer4.1.conv2.weight"], saved["layer4.1.conv2.weight"])
    assert list(tmp_path.joinpath("weights").iterdir()) == [out]  # no temporary files left


def test_same_seed_same_bytes_other_seed_other_weights(toy, tmp_path):
    runs = {}
    for name, seed in (("a", 2), ("b", 2), ("c", 3)):
        pretrain_backbone(toy, tmp_path / f"{name}.pth", PretrainSettings(seed=seed, **TINY), progress=False)
        runs[name] = trunk_of(tmp_path / f"{name}.pth")
    assert (tmp_path / "a.pth").read_bytes() == (tmp_path / "b.pth").read_bytes()
    assert not all(torch.equal(runs["a"][k], runs["c"][k]) for k in runs["a"])


def test_cli_pretrains_and_prints_summary(toy, tmp_path, capsys):
    out = tmp_path / "w.pth"
    argv = [
        "pretrain-backbone",
        "--data",
        str(toy),
        "--arch",
        "resnet18-small",
        "--height",
        "32",
        "--width",
        "16",
        "--epochs",
        "1",
        "--seed",
        "0",
        "--classes-per-batch",
        "8",
        "--images-per-class",
        "2",
        "--triplet-weight",
        "0",
        "--threads",
        "1",
        "--out",
        str(out),
        "--quiet",
    ]
    assert spcreid_main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 1 and summary["settings"]["triplet_weight"] == 0
    assert summary["label"] == "outfit (pid, clothes_id)"
    build_model("resnet18-small", pretrained=out)

    oracle = tmp_path / "oracle.pth"
    argv[argv.index("--out") + 1] = str(oracle)
    assert spcreid_main([*argv, "--labels", "identity", "--split", "train"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["label"] == "identity (pid)" and summary["split"] == "train"
    assert summary["classes"] == summary["identities"] == TOY_IDENTITIES // 2
    assert not torch.equal(trunk_of(out)["conv1.weight"], trunk_of(oracle)["conv1.weight"])


# --- errors --------------------------------------------------------------------------------------


def test_missing_data_folder_names_the_command_that_makes_it(tmp_path, capsys):
    out = tmp_path / "w.pth"
    assert spcreid_main(["pretrain-backbone", "--data", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "make-toy-data" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"epochs": 0}, "epochs"),
        ({"lr": 0.0}, "lr"),
        ({"images_per_class": 1}, "images-per-class"),
        ({"arch": "vgg16"}, "unknown arch"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(toy, tmp_path, change, message):
    out = tmp_path / "w.pth"
    with pytest.raises(SpcreidError, match=message):
        pretrain_backbone(toy, out, PretrainSettings(**{**TINY, **change}), progress=False)
    assert not out.exists()


def test_weights_that_do_not_fit_the_arch_are_never_published(tmp_path):
    small_trunk = build_model("resnet18-small").trunk.state_dict()
    out = tmp_path / "w.pth"
    with pytest.raises(SpcreidError, match="do not fit arch 'resnet18'"):
        save_trunk(small_trunk, out, "resnet18")
    assert list(tmp_path.iterdir()) == []
