"""fetch-weights from local files and file:// URLs: hash checks, archives holding the file, reruns."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile
from pathlib import Path

import pytest
import torch

from spcreid.acquisition import weights
from spcreid.acquisition.weights import WEIGHTS, check_weights, fetch_weights
from spcreid.errors import SpcreidError
from test_data_trees import data_parser, run_cli


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def state_file(tmp_path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "source" / "weights.pth"
    path.parent.mkdir()
    torch.save({"conv.weight": torch.randn(2, 3), "bn.bias": torch.zeros(2)}, path)
    return path


def test_local_file_with_matching_hash(tmp_path, state_file):
    dest = tmp_path / "weights" / "pise-texture.pth"
    digest = sha256(state_file)
    assert fetch_weights("pise-texture", dest, file=state_file, sha256=digest.upper()) == dest
    assert dest.read_bytes() == state_file.read_bytes()
    record = json.loads((dest.parent / "pise-texture.pth.sha256.json").read_text())
    assert record["sha256"] == digest and record["checked_against_known_hash"] is True


def test_local_file_with_mismatching_hash(tmp_path, state_file):
    dest = tmp_path / "weights" / "w.pth"
    with pytest.raises(SpcreidError, match=f"sha256 is {sha256(state_file)}, expected {'ab' * 32}"):
        fetch_weights("pise-pose", dest, file=state_file, sha256="ab" * 32)
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_registered_prefix_is_enforced(tmp_path, state_file, monkeypatch):
    # a random local file cannot carry torchvision's published hash prefix
    with pytest.raises(SpcreidError, match="hash starts with\\s+0676ba61"):
        fetch_weights("resnet50-imagenet", tmp_path / "r50.pth", file=state_file)
    spec = dataclasses.replace(WEIGHTS["resnet50-imagenet"], sha256_prefix=sha256(state_file)[:8])
    monkeypatch.setitem(WEIGHTS, "resnet50-imagenet", spec)
    fetch_weights("resnet50-imagenet", tmp_path / "r50.pth", file=state_file)
    assert (tmp_path / "r50.pth").is_file()


def test_explicit_sha256_pins_another_file_instead_of_the_published_one(tmp_path, state_file):
    # a stand-in or fine-tuned file is accepted only when its full hash is given
    dest = fetch_weights("resnet50-imagenet", tmp_path / "r50.pth", file=state_file, sha256=sha256(state_file))
    assert dest.read_bytes() == state_file.read_bytes()
    with pytest.raises(SpcreidError, match="expected " + "cd" * 32):
        fetch_weights("resnet50-imagenet", tmp_path / "other.pth", file=state_file, sha256="cd" * 32)


def test_pise_archive_from_file_url_yields_member(tmp_path, state_file):
    archive = tmp_path / "pise.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(state_file, "fashion/latest_net_G.pth")
        zf.writestr("fashion/latest_net_D.pth", b"discriminator, not wanted")
    dest = fetch_weights("pise-texture", f"{tmp_path / 'weights'}/", url=archive.as_uri())
    assert dest == tmp_path / "weights" / "pise-texture.pth"
    assert dest.read_bytes() == state_file.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["pise-texture.pth", "pise-texture.pth.sha256.json"]


def test_rerun_keeps_verified_file_and_rejects_bad_one(tmp_path, state_file, capsys):
    dest = tmp_path / "w.pth"
    fetch_weights("pise-pose", dest, file=state_file)
    fetch_weights("pise-pose", dest, file=tmp_path / "does-not-matter.pth")
    assert "already at" in capsys.readouterr().out
    dest.write_bytes(b"tampered")
    with pytest.raises(SpcreidError, match="left untouched"):
        fetch_weights("pise-pose", dest, file=state_file, sha256=sha256(state_file))
    assert dest.read_bytes() == b"tampered"


def test_missing_file_and_unloadable_file(tmp_path):
    with pytest.raises(SpcreidError, match="does not exist; fetch it with `spcreid fetch-weights --name pise-pose"):
        check_weights("pise-pose", tmp_path / "absent.pth")
    with pytest.raises(SpcreidError, match="--file .* does not exist"):
        fetch_weights("pise-pose", tmp_path / "w.pth", file=tmp_path / "absent.pth")
    text = tmp_path / "page.pth"
    text.write_text("<html>not weights</html>")
    with pytest.raises(SpcreidError, match="not a loadable torch checkpoint"):
        fetch_weights("pise-pose", tmp_path / "w.pth", file=text)
    assert not (tmp_path / "w.pth").exists()


def test_cli_fetch_weights_and_unknown_name(tmp_path, state_file, capsys):
    dest = tmp_path / "w.pth"
    assert run_cli(["fetch-weights", "--name", "pise-pose", "--dest", str(dest), "--file", str(state_file)]) == 0
    assert dest.is_file()
    assert run_cli(["fetch-weights", "--name", "vgg19", "--dest", str(dest)]) == 2
    assert "unknown weights 'vgg19'" in capsys.readouterr().err


def test_help_names_every_registered_weight():
    fetch_parser = data_parser()._subparsers._group_actions[0].choices["fetch-weights"]
    help_text = next(a.help for a in fetch_parser._actions if a.dest == "name")
    assert all(name in help_text for name in weights.WEIGHTS)
