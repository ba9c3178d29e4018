"""fetch-data without network: local archives, file:// URLs, checksums, idempotence and safety."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from spcreid.acquisition.download import fetch_dataset, safe_extract
from spcreid.data.registry import load_dataset
from spcreid.errors import SpcreidError
from test_data_trees import TREES, VCCLOTHES_FILES, build_tree, expected_rows, run_cli


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def zip_tree(tree_root: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for path in sorted(tree_root.rglob("*")):
            zf.write(path, path.relative_to(tree_root).as_posix())
    return out


def tar_tree(tree_root: Path, out: Path, top: str) -> Path:
    """tar.gz of ``tree_root`` with its content under the folder name ``top``."""
    with tarfile.open(out, "w:gz") as tf:
        tf.add(tree_root, arcname=top)
    return out


@pytest.fixture
def prcc_zip(tmp_path) -> Path:
    """A PRCC-like archive: prcc/{rgb,sketch}/... (sketch repeats the split folders, as PRCC does)."""
    src = build_tree(tmp_path / "src", TREES["prcc"])
    for rel, *_ in TREES["prcc"][:2]:
        sketch = src / rel.replace("/rgb/", "/sketch/")
        sketch.parent.mkdir(parents=True, exist_ok=True)
        sketch.write_bytes((src / rel).read_bytes())
    for split in ("val", "test"):
        (src / "prcc/sketch" / split).mkdir(parents=True, exist_ok=True)
    return zip_tree(src, tmp_path / "PRCC.zip")


def test_local_zip_is_extracted_recorded_and_loadable(tmp_path, prcc_zip):
    dest = tmp_path / "raw"
    dataset_dir = fetch_dataset("prcc", dest, archive=prcc_zip)
    assert dataset_dir == dest.absolute() / "prcc" / "rgb"
    frame = load_dataset("prcc", dest)
    assert [tuple(r)[:6] for r in frame.itertuples(index=False)] == expected_rows(dest.absolute(), TREES["prcc"])
    record = json.loads((dest / "prcc.sha256.json").read_text())
    assert record["sha256"] == sha256(prcc_zip) and record["checked_against_known_hash"] is False
    assert not any(p.name.startswith(".prcc.extracting") for p in dest.iterdir())


def test_tar_gz_from_file_url_with_other_top_folder(tmp_path):
    src = build_tree(tmp_path / "src", VCCLOTHES_FILES)
    archive = tar_tree(src / "VC-Clothes", tmp_path / "vc.tar.gz", top="vc_clothes_release/VC-Clothes-v1")
    dest = tmp_path / "raw"
    fetch_dataset("vcclothes", dest, url=archive.as_uri(), sha256=sha256(archive))
    assert (dest / "archives" / "vcclothes.tar.gz").read_bytes() == archive.read_bytes()
    frame = load_dataset("vcclothes", dest)
    assert len(frame) == len(VCCLOTHES_FILES)
    assert json.loads((dest / "vcclothes.sha256.json").read_text())["checked_against_known_hash"] is True


def test_sha256_mismatch_keeps_nothing(tmp_path, prcc_zip):
    dest = tmp_path / "raw"
    wrong = "0" * 64
    with pytest.raises(SpcreidError, match=f"sha256 is {sha256(prcc_zip)}, expected {wrong}"):
        fetch_dataset("prcc", dest, url=prcc_zip.as_uri(), sha256=wrong)
    assert not (dest / "prcc").exists()
    assert list((dest / "archives").iterdir()) == []  # the bad download is not left under its final name
    with pytest.raises(SpcreidError, match="expected 0000"):
        fetch_dataset("prcc", dest, archive=prcc_zip, sha256=wrong)


def test_rerun_skips_extraction_and_download(tmp_path, prcc_zip, capsys):
    dest = tmp_path / "raw"
    fetch_dataset("prcc", dest, url=prcc_zip.as_uri())
    keep = dest / "prcc/rgb/train/001/my_note.txt"
    keep.write_text("added after extraction")
    first = (dest / "prcc/rgb/train/001/A_cropped_rgb001.jpg").stat().st_mtime_ns
    prcc_zip.rename(prcc_zip.with_suffix(".moved"))  # a re-download would now fail
    fetch_dataset("prcc", dest, url=prcc_zip.as_uri())
    assert "nothing to do" in capsys.readouterr().out
    fetch_dataset("prcc", dest, archive=prcc_zip.with_suffix(".moved"))
    assert "already extracted" in capsys.readouterr().out
    assert keep.read_text() == "added after extraction"
    assert (dest / "prcc/rgb/train/001/A_cropped_rgb001.jpg").stat().st_mtime_ns == first


def test_existing_folder_from_another_archive_is_not_overwritten(tmp_path, prcc_zip):
    dest = tmp_path / "raw"
    fetch_dataset("prcc", dest, archive=prcc_zip)
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(prcc_zip) as zin, zipfile.ZipFile(other, "w") as zout:
        for name in zin.namelist()[:-1]:  # a different archive: one file fewer
            zout.writestr(name, zin.read(name))
    with pytest.raises(SpcreidError, match="already exists, from another archive"):
        fetch_dataset("prcc", dest, archive=other)


def test_zip_member_escaping_destination_is_refused(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("prcc/rgb/train/001/A_1.jpg", b"x")
        zf.writestr("../../escaped.txt", b"gotcha")
    with pytest.raises(SpcreidError, match="refusing to extract member '../../escaped.txt'"):
        safe_extract(evil, tmp_path / "a" / "b" / "into")
    assert not (tmp_path / "a" / "escaped.txt").exists()
    assert not (tmp_path / "a" / "b" / "into" / "prcc").exists()  # checked before anything is written


def test_tar_absolute_member_and_outside_symlink_are_refused(tmp_path):
    def tar_with(member: tarfile.TarInfo, payload: bytes = b"") -> Path:
        path = tmp_path / f"{member.name.strip('/').replace('/', '_')}.tar"
        with tarfile.open(path, "w") as tf:
            member.size = len(payload)
            tf.addfile(member, io.BytesIO(payload))
        return path

    absolute = tarfile.TarInfo(str(tmp_path / "abs.txt"))
    with pytest.raises(SpcreidError, match="refusing to extract member"):
        safe_extract(tar_with(absolute, b"x"), tmp_path / "out1")
    assert not (tmp_path / "abs.txt").exists()
    link = tarfile.TarInfo("VC-Clothes/link")
    link.type, link.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
    with pytest.raises(SpcreidError, match="refusing to extract link 'VC-Clothes/link'"):
        safe_extract(tar_with(link), tmp_path / "out2")


def test_archive_without_the_dataset_is_rejected(tmp_path):
    src = build_tree(tmp_path / "src", VCCLOTHES_FILES)
    archive = zip_tree(src, tmp_path / "vc.zip")
    with pytest.raises(SpcreidError, match="holds no folder with train, val, test"):
        fetch_dataset("prcc", tmp_path / "raw", archive=archive)
    assert not (tmp_path / "raw" / "prcc").exists()


@pytest.mark.parametrize("name, page", [("vcclothes", "wanfb.github.io"), ("ltcc", "naiq.github.io")])
def test_request_only_datasets_say_what_to_do(tmp_path, capsys, name, page):
    assert run_cli(["fetch-data", "--dataset", name, "--dest", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert page in err and "--archive PATH/TO/ARCHIVE" in err and "verify-data" in err


def test_failed_download_explains_manual_route(tmp_path):
    missing = (tmp_path / "nope.zip").as_uri()
    with pytest.raises(SpcreidError, match=r"could not download .*nope\.zip.*--archive PATH/TO/ARCHIVE"):
        fetch_dataset("prcc", tmp_path / "raw", url=missing)


def test_gdrive_failure_and_html_answer(tmp_path, monkeypatch):
    import gdown

    def offline(**kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(gdown, "download", offline)
    with pytest.raises(SpcreidError, match=r"1yTYawRm4ap3M-j0PjLQJ--xmZHseFDLz \(no route to host\).*--archive"):
        fetch_dataset("prcc", tmp_path / "raw")

    def quota_page(id, output, quiet):
        Path(output).write_text("<!DOCTYPE html><html>Too many users have viewed this file</html>")
        return output

    monkeypatch.setattr(gdown, "download", quota_page)
    with pytest.raises(SpcreidError, match="web page instead of the file"):
        fetch_dataset("prcc", tmp_path / "raw", gdrive_id="someid")
    assert list((tmp_path / "raw" / "archives").iterdir()) == []


def test_rar_without_support_gives_clear_error(tmp_path):
    try:
        import rarfile  # noqa: F401

        pytest.skip("rarfile is installed; the unsupported-RAR message cannot occur")
    except ImportError:
        pass
    fake = tmp_path / "prcc.rar"
    fake.write_bytes(b"Rar!\x1a\x07\x00" + b"\x00" * 64)
    with pytest.raises(SpcreidError, match="RAR archive, which needs the 'rarfile' package"):
        fetch_dataset("prcc", tmp_path / "raw", archive=fake)
