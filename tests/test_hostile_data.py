"""Hostile dataset trees, archives and weight files, through `spcreid verify-data / prepare-data /
fetch-data / fetch-weights`. Each probe asserts the message (file named, what to do), the exit status,
and that nothing partial is left: no dataset folder, staging folder, marker or sha256 record from a
refused archive, no weight file from a refused download, no manifest from a refused tree."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch

from hostile_helpers import assert_refused, leftovers, snapshot, spcreid
from test_data_trees import (
    TREES,
    VCCLOTHES_FILES,
    build_tree,
    write_image,
    write_parsing,
)

# ---------------------------------------------------------------------------- dataset trees


def vcclothes_tree(root: Path) -> Path:
    return build_tree(root, VCCLOTHES_FILES)


def toy_tree(root: Path) -> Path:
    """VC-Clothes layout with its parsing maps under ROOT/parsing, as make-toy-data writes it."""
    build_tree(root, VCCLOTHES_FILES)
    for rel, *_ in VCCLOTHES_FILES:
        write_parsing((root / "parsing" / rel).with_suffix(".png"))
    return root


def add_train_copy_of_test_identity(root: Path, parsing: bool = False) -> None:
    source = root / "VC-Clothes/query/0300-03-01-05.jpg"
    shutil.copy(source, root / "VC-Clothes/train/0300-03-01-09.jpg")
    if parsing:
        write_parsing(root / "parsing/VC-Clothes/train/0300-03-01-09.png")


def verify(capsys, dataset: str, root: Path, *extra):
    return spcreid(capsys, "verify-data", "--dataset", dataset, "--root", root, "--no-counts", "--workers", "1", *extra)


def problem_lines(outcome) -> list[str]:
    assert "Traceback" not in outcome.err
    return [line.strip() for line in outcome.err.splitlines() if line.startswith("  ") and line.strip()]


def written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_prcc_person_folder_with_a_non_ascii_digit_is_a_problem_not_a_traceback(tmp_path, capsys):
    root = build_tree(tmp_path / "raw", TREES["prcc"])
    write_image(root / "prcc/rgb/train/²/A_cropped_rgb900.jpg")  # '²'.isdigit() is True, int('²') fails
    manifest = tmp_path / "manifest.csv"
    outcome = spcreid(capsys, "prepare-data", "--dataset", "prcc", "--root", root, "--out", manifest)
    assert_refused(outcome, "prepare-data", root / "prcc/rgb/train/²", "not a person id")
    assert not manifest.exists() and not leftovers(tmp_path)
    outcome = verify(capsys, "prcc", root)
    assert outcome.code == 1
    assert any(str(root / "prcc/rgb/train/²") in line for line in problem_lines(outcome))


def test_vcclothes_name_with_arabic_indic_digits_is_refused(tmp_path, capsys):
    root = vcclothes_tree(tmp_path / "raw")
    write_image(root / "VC-Clothes/train/٠٠٠٣-01-01-01.jpg")  # \d would read it as person 3
    outcome = verify(capsys, "vcclothes", root)
    assert outcome.code == 1
    expected = f"{root}/VC-Clothes/train/٠٠٠٣-01-01-01.jpg: file name does not match PID-CAM-CLOTHES-IDX.jpg"
    assert problem_lines(outcome) == [expected + ", e.g. 0001-01-01-01.jpg"]


def test_renamed_dataset_folder_hint_does_not_point_at_the_parsing_maps(tmp_path, capsys):
    root = toy_tree(tmp_path / "raw")
    (root / "VC-Clothes").rename(root / "vc-clothes")
    outcome = verify(capsys, "vcclothes", root)
    assert outcome.code == 1
    (line,) = problem_lines(outcome)
    assert f"the split folders are in {root / 'vc-clothes'}: move that folder to {root / 'VC-Clothes'}" in line
    assert "parsing" not in line  # before: "found it at .../parsing/VC-Clothes, so pass --root .../parsing"


def test_parsing_maps_alone_give_no_hint(tmp_path, capsys):
    root = toy_tree(tmp_path / "raw")
    shutil.rmtree(root / "VC-Clothes")
    (line,) = problem_lines(verify(capsys, "vcclothes", root))
    assert line == f"missing folder {root / 'VC-Clothes'}: expected VC-Clothes at <root>/VC-Clothes/"


def test_test_identity_copied_into_train_fails_verification(tmp_path, capsys):
    root = vcclothes_tree(tmp_path / "raw")
    add_train_copy_of_test_identity(root)
    report = tmp_path / "report.json"
    outcome = verify(capsys, "vcclothes", root, "--json", report)
    assert outcome.code == 1
    (line,) = problem_lines(outcome)
    assert line.startswith("1 identities are both in train and in query/gallery (pids [300])")
    assert f"remove them from {root / 'VC-Clothes'} train" in line
    assert json.loads(report.read_text())["ok"] is False


def test_identity_overlap_flag_cannot_excuse_a_published_dataset(tmp_path, capsys):
    root = vcclothes_tree(tmp_path / "raw")
    add_train_copy_of_test_identity(root)
    outcome = verify(capsys, "vcclothes", root, "--allow-identity-overlap")
    assert outcome.code == 1
    assert "published splits are disjoint, so --allow-identity-overlap does not apply" in problem_lines(outcome)[0]


def test_identity_overlap_of_a_custom_split_is_an_error_or_with_the_flag_a_warning(tmp_path, capsys):
    root = toy_tree(tmp_path / "raw")
    add_train_copy_of_test_identity(root, parsing=True)
    outcome = verify(capsys, "toy", root)
    assert outcome.code == 1 and "pass --allow-identity-overlap for a custom split" in problem_lines(outcome)[0]
    outcome = verify(capsys, "toy", root, "--allow-identity-overlap")
    assert outcome.code == 0, outcome.err
    assert "warning: 1 identities are both in train and in query/gallery (pids [300])" in outcome.out


TREE_PROBES = {
    # probe: (dataset, how to spoil a valid tree, the problem line must contain)
    "root folder does not exist": ("vcclothes", lambda r: shutil.rmtree(r), "does not exist; pass --root"),
    "dataset folder empty": (
        "vcclothes",
        lambda r: [shutil.rmtree(r / "VC-Clothes"), (r / "VC-Clothes").mkdir()],
        "is empty; extract the VC-Clothes archive there",
    ),
    "split folder missing": (
        "vcclothes",
        lambda r: shutil.rmtree(r / "VC-Clothes/gallery"),
        "missing folder {root}/VC-Clothes/gallery",
    ),
    "file name not in the dataset's pattern": (
        "vcclothes",
        lambda r: write_image(r / "VC-Clothes/train/img_0001.jpg"),
        "{root}/VC-Clothes/train/img_0001.jpg: file name does not match",
    ),
    "camera out of range": (
        "vcclothes",
        lambda r: write_image(r / "VC-Clothes/train/0001-07-01-01.jpg"),
        "{root}/VC-Clothes/train/0001-07-01-01.jpg: camera 7 is outside 1..4",
    ),
    "truncated JPEG": (
        "vcclothes",
        lambda r: (r / "VC-Clothes/train/0001-01-01-01.jpg").write_bytes(
            (r / "VC-Clothes/train/0001-01-01-01.jpg").read_bytes()[:40]
        ),
        "{root}/VC-Clothes/train/0001-01-01-01.jpg",
    ),
    "not an image at all": (
        "vcclothes",
        lambda r: (r / "VC-Clothes/query/0300-03-01-05.jpg").write_text("hi"),
        "{root}/VC-Clothes/query/0300-03-01-05.jpg",
    ),
    "PRCC stray file beside the person folders": (
        "prcc",
        lambda r: (r / "prcc/rgb/train/notes.txt").write_text("x"),
        "{root}/prcc/rgb/train/notes.txt",
    ),
}


@pytest.mark.parametrize("probe", sorted(TREE_PROBES))
def test_spoiled_tree_is_reported_and_no_manifest_is_written(probe, tmp_path, capsys):
    dataset, spoil, fragment = TREE_PROBES[probe]
    root = build_tree(tmp_path / "raw", TREES[dataset])
    spoil(root)
    outcome = verify(capsys, dataset, root)
    assert outcome.code == 1
    lines = problem_lines(outcome)
    assert any(fragment.format(root=root) in line for line in lines), lines
    manifest = tmp_path / "manifest.csv"
    outcome = spcreid(capsys, "prepare-data", "--dataset", dataset, "--root", root, "--out", manifest)
    if outcome.code != 0:  # decoding is verify-data's job; layout and names stop prepare-data
        outcome.error("prepare-data")
        assert outcome.code == 2 and not manifest.exists()
    assert not leftovers(tmp_path)


# ---------------------------------------------------------------------------- archives


def prcc_source(tmp_path: Path) -> Path:
    return build_tree(tmp_path / "src", TREES["prcc"])


def tar_with(path: Path, *members: tuple[tarfile.TarInfo, bytes], base: Path | None = None, mode="w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        if base is not None:
            tf.add(base / "prcc", arcname="prcc")
        for info, payload in members:
            info.size = len(payload) if info.isfile() else 0
            tf.addfile(info, io.BytesIO(payload) if info.isfile() else None)
    return path


def link(name: str, target: str, kind=tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


def regular(name: str, payload: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), payload


def zip_of(path: Path, base: Path, extra=(), compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for file in sorted(base.rglob("*")):
            zf.write(file, file.relative_to(base).as_posix())
        for info, payload in extra:
            zf.writestr(info, payload)
    return path


def symlink_zip_entry(name: str, target: str):
    info = zipfile.ZipInfo(name)
    info.external_attr = 0o120777 << 16
    return info, target


def truncated(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def bad_crc(path: Path) -> Path:
    """Flip one byte inside a stored member's data: the zip directory stays valid, the CRC no longer matches."""
    data = bytearray(path.read_bytes())
    marker = data.index(b"\xff\xd8")  # the first JPEG's start-of-image, stored uncompressed
    data[marker + 20] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


ARCHIVE_PROBES = {
    # probe: (build the archive from the PRCC source tree, fragment of the error line)
    "chained symlinks escape together": (
        lambda t, s: tar_with(t / "a.tar.gz", link("prcc/l", "."), link("prcc/l/x", "../.."), base=s),
        "refusing to extract member 'prcc/l/x'",
    ),
    "truncated .tar.gz": (lambda t, s: truncated(tar_with(t / "a.tar.gz", base=s)), "delete it and download it again"),
    "zip member with a bad CRC": (
        lambda t, s: bad_crc(zip_of(t / "a.zip", s, compression=zipfile.ZIP_STORED)),
        "is damaged (BadZipFile: Bad CRC-32",
    ),
    "tar member with ..": (
        lambda t, s: tar_with(t / "a.tar.gz", regular("prcc/../../evil.txt"), base=s),
        "would be written outside",
    ),
    "tar member with an absolute path": (
        lambda t, s: tar_with(t / "a.tar", regular("/tmp/evil.txt"), base=s, mode="w"),
        "would be written outside",
    ),
    "zip member with ..": (lambda t, s: zip_of(t / "a.zip", s, [("../evil.txt", "x")]), "would be written outside"),
    "symlink in a zip": (
        lambda t, s: zip_of(t / "a.zip", s, [symlink_zip_entry("prcc/l", "/etc")]),
        "refusing to extract symbolic link 'prcc/l'",
    ),
    "tar symlink pointing outside": (
        lambda t, s: tar_with(t / "a.tar.gz", link("prcc/l", "/etc"), base=s),
        "points outside",
    ),
    "tar hard link pointing outside": (
        lambda t, s: tar_with(t / "a.tar.gz", link("prcc/h", "../x", tarfile.LNKTYPE), base=s),
        "points outside",
    ),
    "tar device member": (
        lambda t, s: tar_with(t / "a.tar.gz", link("prcc/dev", "", tarfile.CHRTYPE), base=s),
        "is a device or fifo",
    ),
    "a web page instead of the archive": (
        lambda t, s: written(t / "a.zip", b"<!DOCTYPE html><html>quota exceeded</html>"),
        "is a web page, not an archive",
    ),
    "random bytes": (lambda t, s: written(t / "a.zip", b"\x00junk" * 100), "is not a zip, tar, tar.gz or rar archive"),
    "archive without the dataset": (
        lambda t, s: zip_of(t / "a.zip", build_tree(t / "other", TREES["ltcc"])),
        "holds no folder with train, val, test",
    ),
}


def assert_dest_untouched(dest: Path, before: dict) -> None:
    assert snapshot(dest) == before, set(snapshot(dest)) ^ set(before)
    assert not leftovers(dest)


@pytest.mark.parametrize("probe", sorted(ARCHIVE_PROBES))
def test_bad_archive_is_refused_and_leaves_nothing(probe, tmp_path, capsys):
    build, fragment = ARCHIVE_PROBES[probe]
    archive = build(tmp_path, prcc_source(tmp_path))
    dest = tmp_path / "raw"
    outcome = spcreid(capsys, "fetch-data", "--dataset", "prcc", "--archive", archive, "--dest", dest)
    assert_refused(outcome, "fetch-data", archive, fragment)
    assert_dest_untouched(dest, {})
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/evil.txt").exists()


def test_wrong_or_malformed_sha256_and_missing_archive(tmp_path, capsys):
    archive = zip_of(tmp_path / "a.zip", prcc_source(tmp_path))
    dest = tmp_path / "raw"
    outcome = spcreid(
        capsys, "fetch-data", "--dataset", "prcc", "--archive", archive, "--dest", dest, "--sha256", "0" * 64
    )
    assert_refused(outcome, "fetch-data", archive, "expected " + "0" * 64)
    outcome = spcreid(
        capsys, "fetch-data", "--dataset", "prcc", "--archive", archive, "--dest", dest, "--sha256", "abc"
    )
    assert_refused(outcome, "fetch-data", "--sha256 'abc'")
    outcome = spcreid(capsys, "fetch-data", "--dataset", "prcc", "--archive", tmp_path / "no.zip", "--dest", dest)
    assert_refused(outcome, "fetch-data", tmp_path / "no.zip")
    assert_dest_untouched(dest, {})


def test_refused_archive_does_not_overwrite_the_sha256_record(tmp_path, capsys):
    first = zip_of(tmp_path / "first.zip", prcc_source(tmp_path))
    dest = tmp_path / "raw"
    assert spcreid(capsys, "fetch-data", "--dataset", "prcc", "--archive", first, "--dest", dest).code == 0
    record = json.loads((dest / "prcc.sha256.json").read_text())
    other_src = build_tree(tmp_path / "src2", TREES["prcc"][:-1])
    second = zip_of(tmp_path / "second.zip", other_src)
    before = snapshot(dest)
    outcome = spcreid(capsys, "fetch-data", "--dataset", "prcc", "--archive", second, "--dest", dest)
    assert_refused(outcome, "fetch-data", dest / "prcc", "already exists, from another archive")
    assert json.loads((dest / "prcc.sha256.json").read_text()) == record  # still the data's own archive
    assert_dest_untouched(dest, before)


# ---------------------------------------------------------------------------- weights


def state_dict_file(path: Path) -> Path:
    torch.save({"conv.weight": torch.ones(2, 3)}, path)
    return path


class NotWeights:
    pass


WEIGHT_PROBES = {
    # probe: (name, build --file, fragment of the error line)
    "random bytes": ("pise-texture", lambda p: written(p, b"\x00" * 64), "is not a loadable torch checkpoint"),
    "truncated state dict": (
        "pise-texture",
        lambda p: truncated(state_dict_file(p)),
        "is not a loadable torch checkpoint",
    ),
    "a tensor, not a state dict": ("pise-texture", lambda p: torch.save(torch.ones(3), p) or p, "holds a Tensor"),
    "pickled arbitrary object (weights_only refuses)": (
        "pise-texture",
        lambda p: torch.save({"x": NotWeights()}, p) or p,
        "is not a loadable torch checkpoint",
    ),
    "hash prefix of another file": ("resnet50-imagenet", state_dict_file, "hash starts with 0676ba61"),
}


@pytest.mark.parametrize("probe", sorted(WEIGHT_PROBES))
def test_bad_weight_file_is_refused_and_nothing_is_written(probe, tmp_path, capsys):
    name, build, fragment = WEIGHT_PROBES[probe]
    source = build(tmp_path / "source.pth")
    dest = tmp_path / "weights"
    dest.mkdir()
    outcome = spcreid(capsys, "fetch-weights", "--name", name, "--dest", dest / "w.pth", "--file", source)
    assert_refused(outcome, "fetch-weights", fragment)
    assert snapshot(dest) == {}  # no weight file, no sha256 record, no scratch folder


def test_corrupt_file_already_at_dest_is_not_called_verified(tmp_path, capsys):
    # Defect 3: a truncated pise-texture (no published hash) used to pass as "already ... and verified".
    dest = truncated(state_dict_file(tmp_path / "latest_net_G.pth"))
    before = dest.read_bytes()
    outcome = spcreid(capsys, "fetch-weights", "--name", "pise-texture", "--dest", dest)
    assert "verified" not in outcome.out
    assert_refused(outcome, "fetch-weights", dest, "not a loadable torch checkpoint", "left untouched")
    assert dest.read_bytes() == before


def test_wrong_sha256_of_an_existing_file(tmp_path, capsys):
    dest = state_dict_file(tmp_path / "latest_net_G.pth")
    outcome = spcreid(capsys, "fetch-weights", "--name", "pise-texture", "--dest", dest, "--sha256", "1" * 64)
    assert_refused(outcome, "fetch-weights", dest, "expected " + "1" * 64)
