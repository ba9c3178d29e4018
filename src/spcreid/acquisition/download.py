"""Getting dataset archives onto disk: download, checksum, safe idempotent extraction.

The building blocks (:func:`download_url`, :func:`download_gdrive`, :func:`check_sha256`,
:func:`safe_extract`) are shared with :mod:`spcreid.acquisition.weights`. Downloads land under a temporary
name and are renamed only once complete and hash-checked, so an interrupted or corrupted transfer
never looks like a finished one.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import lzma
import os
import re
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from spcreid.data.registry import DatasetSpec, get_spec, layout_problems, locate_dataset_dirs
from spcreid.errors import SpcreidError
from spcreid.io import atomic_path, sha256_file, write_json

CHUNK = 1 << 20
RAR_MAGIC = (b"Rar!\x1a\x07\x00", b"Rar!\x1a\x07\x01\x00")


@dataclass(frozen=True)
class DatasetSource:
    name: str
    gdrive_id: str | None  # public copy that can be fetched without asking anyone
    sha256: str | None  # registered archive hash, where one is known
    request_page: str | None
    archive_description: str  # what the authors send
    terms: str  # under what conditions they send it


SOURCES: dict[str, DatasetSource] = {
    "prcc": DatasetSource(
        name="prcc",
        gdrive_id="1yTYawRm4ap3M-j0PjLQJ--xmZHseFDLz",
        sha256=None,
        request_page="http://www.isee-ai.cn/~yangqize/clothing.html",
        archive_description="the PRCC archive (holds prcc/rgb/{train,val,test})",
        terms="for research use, no redistribution",
    ),
    "vcclothes": DatasetSource(
        name="vcclothes",
        gdrive_id=None,
        sha256=None,
        request_page="https://wanfb.github.io/dataset.html",
        archive_description="the VC-Clothes archive (holds VC-Clothes/{train,query,gallery})",
        terms="shared on request for research use",
    ),
    "ltcc": DatasetSource(
        name="ltcc",
        gdrive_id=None,
        sha256=None,
        request_page="https://naiq.github.io/LTCC_Perosn_ReID.html",
        archive_description="the LTCC archive (holds LTCC_ReID/{train,query,test})",
        terms="shared after a signed research-use agreement",
    ),
}


# ---------------------------------------------------------------------------- checksums


def normalise_sha256(value: str | None, field_name: str = "--sha256") -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise SpcreidError(
            f"{field_name} '{value}' is not a sha256 hex digest; pass the 64 characters 0-9a-f that sha256sum prints"
        )
    return value


def check_sha256(path: Path, expected: str | None, actual: str | None = None) -> str:
    """The file's sha256; raises if ``expected`` is given and differs."""
    actual = actual or sha256_file(path)
    if expected is not None and actual != expected:
        raise SpcreidError(
            f"{path}: sha256 is {actual}, expected {expected}; the file is corrupt, truncated or a different "
            "version: delete it and download it again (or pass the right --sha256)"
        )
    return actual


def record_sha256(record: Path, name: str, archive: Path, sha256: str, source: str, checked: bool) -> None:
    """Write what was used, so a later run (or a colleague) can pin it with --sha256."""
    previous = read_json(record)
    if previous and previous.get("sha256") not in (None, sha256):
        print(f"note: {name} archive differs from the one recorded in {record} ({previous['sha256'][:12]}...)")
    write_json(
        record,
        {
            "name": name,
            "archive": str(archive),
            "sha256": sha256,
            "size_bytes": archive.stat().st_size,
            "source": source,
            "checked_against_known_hash": checked,
        },
    )


def read_json(path: Path) -> dict | None:
    try:
        with open(path) as handle:
            return json.load(handle)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


# ---------------------------------------------------------------------------- downloads


def download_url(url: str, target: Path, expected_sha256: str | None, manual_hint: str) -> str:
    """Stream ``url`` (http, https or file) to ``target``; return its sha256.

    ``manual_hint`` finishes the error message with what the user can do instead.
    """
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https", "file"):
        raise SpcreidError(f"--url '{url}': only http://, https:// and file:// URLs are supported")
    digest = hashlib.sha256()
    try:
        with atomic_path(target) as tmp, urllib.request.urlopen(url, timeout=60) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None  # servers may not say
            with (
                open(tmp, "wb") as out,
                tqdm(
                    total=total, unit="B", unit_scale=True, desc=f"downloading {target.name}", leave=False, disable=None
                ) as bar,
            ):
                received = 0  # counted here: a disabled bar (stderr not a terminal) counts nothing
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if total is not None and received != total:
                raise SpcreidError(f"download of {url} stopped after {received} of {total} bytes; {manual_hint}")
            check_sha256(tmp, expected_sha256, digest.hexdigest())
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        raise SpcreidError(f"could not download {url} ({exc}); {manual_hint}") from exc
    return digest.hexdigest()


def download_gdrive(file_id: str, target: Path, expected_sha256: str | None, manual_hint: str) -> str:
    """Fetch a public Google Drive file with gdown; return its sha256."""
    try:
        import gdown
    except ImportError as exc:
        raise SpcreidError(
            f"downloading Google Drive file {file_id} needs the 'gdown' package (pip install gdown); {manual_hint}"
        ) from exc
    page = f"https://drive.google.com/file/d/{file_id}/view"
    try:
        with atomic_path(target) as tmp:
            # gdown raises its own exception types and requests' ones; any of them means "not downloaded".
            try:
                result = gdown.download(id=file_id, output=str(tmp), quiet=False)
            except Exception as exc:  # noqa: BLE001
                raise SpcreidError(f"could not download Google Drive file {file_id} ({exc}); {manual_hint}") from exc
            if result is None or not tmp.is_file() or tmp.stat().st_size == 0:
                raise SpcreidError(f"could not download Google Drive file {file_id} (nothing received); {manual_hint}")
            if _looks_like_html(tmp):
                raise SpcreidError(
                    f"Google Drive answered {file_id} with a web page instead of the file (quota exceeded or "
                    f"sign-in required); open {page} in a browser; {manual_hint}"
                )
            sha = check_sha256(tmp, expected_sha256)
    except OSError as exc:
        raise SpcreidError(f"could not write {target} ({exc})") from exc
    return sha


def _looks_like_html(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(512).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


# ---------------------------------------------------------------------------- extraction


def archive_format(path: Path) -> str:
    """``zip``, ``tar`` (plain or compressed) or ``rar``, told from the content, not the name."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(RAR_MAGIC):
        return "rar"
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    if _looks_like_html(path):
        raise SpcreidError(f"{path} is a web page, not an archive: the download was refused; fetch it in a browser")
    raise SpcreidError(
        f"{path} is not a zip, tar, tar.gz or rar archive (starts with {head!r}); download the archive again"
    )


def _member_target(into: Path, name: str, archive: Path) -> Path:
    """Where ``name`` would land; refuse anything that escapes ``into`` (absolute paths, ``..``)."""
    target = (into / name).resolve()
    if Path(name).is_absolute() or re.match(r"^[A-Za-z]:", name) or not target.is_relative_to(into.resolve()):
        raise SpcreidError(
            f"{archive}: refusing to extract member '{name}': it would be written outside {into}. "
            "The archive is damaged or malicious; get a fresh copy from the dataset's authors"
        )
    return target


def _check_tar_member(member: tarfile.TarInfo, into: Path, archive: Path) -> None:
    target = _member_target(into, member.name, archive)
    if member.issym() or member.islnk():
        # Symlink targets are relative to the link's folder, hard-link targets to the archive root.
        base = target.parent if member.issym() else into.resolve()
        if os.path.isabs(member.linkname) or not (base / member.linkname).resolve().is_relative_to(into.resolve()):
            raise SpcreidError(
                f"{archive}: refusing to extract link '{member.name}' -> '{member.linkname}': it points outside {into}"
            )
    elif not (member.isfile() or member.isdir()):
        raise SpcreidError(f"{archive}: refusing to extract member '{member.name}': it is a device or fifo, not a file")


def safe_extract(archive: Path, into: Path) -> None:
    """Extract ``archive`` into ``into`` after checking every member; nothing is written if one is unsafe.

    A damaged archive (truncated, bad CRC) or a member that tarfile's data filter refuses (e.g. a chain
    of symlinks that together leave ``into``) ends as one SpcreidError naming the archive. Callers extract
    into a staging folder they delete on error, so what was written before the failure does not stay.
    """
    into.mkdir(parents=True, exist_ok=True)
    fmt = archive_format(archive)
    try:
        _extract(archive, into, fmt)
    except tarfile.FilterError as exc:
        raise SpcreidError(
            f"{archive}: refusing to extract member '{exc.tarinfo.name}': {exc}. "
            "The archive is damaged or malicious; get a fresh copy from the dataset's authors"
        ) from exc
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:  # the disk, not the archive
            raise SpcreidError(
                f"could not extract {archive} into {into} ({exc}); check free space and permissions"
            ) from exc
        raise SpcreidError(
            f"{archive} is damaged ({type(exc).__name__}: {exc}); the download is truncated or corrupt: "
            "delete it and download it again"
        ) from exc


# A dataset of JPEGs compresses by a few percent; an archive that expands to more than MAX_RATIO times its size
# (beyond a floor small test archives stay under) is a zip bomb, as is one over MAX_EXTRACTED_BYTES (the largest
# supported dataset is a few GB). Both are checked on the sizes the members declare, which zipfile and tarfile
# enforce while extracting, before anything is written.
MAX_EXTRACTED_BYTES = 64 << 30
MAX_RATIO = 100
RATIO_FLOOR_BYTES = 100 << 20


def _check_sizes(archive: Path, declared: int) -> None:
    size = max(archive.stat().st_size, 1)
    if declared > MAX_EXTRACTED_BYTES or (declared > RATIO_FLOOR_BYTES and declared > MAX_RATIO * size):
        raise SpcreidError(
            f"{archive}: its members would expand to {declared / 2**30:.1f} GiB from {size / 2**20:.1f} MiB "
            f"(limit {MAX_EXTRACTED_BYTES >> 30} GiB, {MAX_RATIO}x its size): not a dataset archive (a zip bomb?); "
            "get a fresh copy from the dataset's authors"
        )


def _extract(archive: Path, into: Path, fmt: str) -> None:
    if fmt == "zip":
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                _member_target(into, info.filename, archive)
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise SpcreidError(f"{archive}: refusing to extract symbolic link '{info.filename}'")
                if info.flag_bits & 0x1:
                    raise SpcreidError(
                        f"{archive}: member '{info.filename}' is encrypted (a password-protected zip); extract it "
                        "yourself with the password the authors gave you and pass the folder to `spcreid verify-data "
                        "--root`, or repack it without a password"
                    )
            _check_sizes(archive, sum(info.file_size for info in infos))
            for info in tqdm(infos, desc=f"extracting {archive.name}", unit="file", leave=False, disable=None):
                zf.extract(info, into)
    elif fmt == "tar":
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for member in members:
                _check_tar_member(member, into, archive)
            _check_sizes(archive, sum(member.size for member in members if member.isfile()))
            for member in tqdm(members, desc=f"extracting {archive.name}", unit="file", leave=False, disable=None):
                # The 'data' filter repeats the checks above inside tarfile and drops unsafe permissions.
                tf.extract(member, into, filter="data")
    else:
        _extract_rar(archive, into)


def _extract_rar(archive: Path, into: Path) -> None:
    try:
        import rarfile
    except ImportError as exc:
        raise SpcreidError(
            f"{archive} is a RAR archive, which needs the 'rarfile' package and an 'unrar' (or 'bsdtar') program; "
            "install both (pip install rarfile; apt-get install unrar), or extract it yourself (unrar x ARCHIVE) and "
            "repack it as zip/tar, or point --root of `spcreid verify-data` at the extracted folder"
        ) from exc
    try:
        with rarfile.RarFile(archive) as rf:
            infos = rf.infolist()
            for info in infos:
                _member_target(into, info.filename, archive)
            for info in tqdm(infos, desc=f"extracting {archive.name}", unit="file", leave=False, disable=None):
                rf.extract(info, into)
    except rarfile.Error as exc:
        raise SpcreidError(f"{archive}: RAR extraction failed ({exc}); is 'unrar' installed?") from exc


# ---------------------------------------------------------------------------- datasets


def request_message(spec: DatasetSpec, source: DatasetSource, dest: Path) -> str:
    return (
        f"{spec.title} cannot be downloaded automatically: request {source.archive_description} from its authors "
        f"at {source.request_page} ({source.terms}). Then run "
        f"`spcreid fetch-data --dataset {spec.name} --dest {dest} --archive PATH/TO/ARCHIVE` "
        "(zip, tar, tar.gz or rar; a download link they send works with --url), or extract it "
        f"yourself so that the images are in {dest / spec.dataset_dir}/ and run "
        f"`spcreid verify-data --dataset {spec.name} --root {dest}`"
    )


def _manual_hint(spec: DatasetSpec, source: DatasetSource, dest: Path) -> str:
    return (
        f"download the archive manually (from {source.request_page} or the link you used) and run "
        f"`spcreid fetch-data --dataset {spec.name} --dest {dest} --archive PATH/TO/ARCHIVE`"
    )


def fetch_dataset(
    name: str,
    dest: str | os.PathLike,
    *,
    url: str | None = None,
    archive: str | os.PathLike | None = None,
    gdrive_id: str | None = None,
    sha256: str | None = None,
) -> Path:
    """Obtain dataset ``name`` under ``dest`` (so ``--root dest`` works afterwards); return its folder.

    Reruns are cheap: a dataset already extracted from the same source/archive hash is left alone.
    """
    spec = get_spec(name)
    if name not in SOURCES:
        raise SpcreidError(f"--dataset {name}: nothing to fetch; choose one of {', '.join(SOURCES)}")
    source = SOURCES[name]
    if sum(x is not None for x in (url, archive, gdrive_id)) > 1:
        raise SpcreidError("give at most one of --url, --archive and --gdrive-id")
    dest = Path(dest).absolute()
    expected = normalise_sha256(sha256) or source.sha256
    target_dir = dest / spec.dataset_dir
    marker = read_json(_marker_path(dest, name))

    if archive is not None:
        archive_path = Path(archive).absolute()
        if not archive_path.is_file():
            raise SpcreidError(f"--archive {archive_path} does not exist or is not a file; check the path")
        origin = f"archive:{archive_path}"
        sha = check_sha256(archive_path, expected)
    else:
        if url is None and gdrive_id is None:
            if source.gdrive_id is None:
                raise SpcreidError(request_message(spec, source, dest))
            gdrive_id = source.gdrive_id
        origin = url if url is not None else f"gdrive:{gdrive_id}"
        if (
            marker
            and marker.get("source") == origin
            and target_dir.is_dir()
            and expected in (None, marker.get("sha256"))
        ):
            print(f"{spec.title} already fetched from {origin} into {target_dir}; nothing to do")
            return target_dir
        archive_path = dest / "archives" / _archive_name(name, url)
        hint = _manual_hint(spec, source, dest)
        if url is not None:
            sha = download_url(url, archive_path, expected, hint)
        else:
            sha = download_gdrive(gdrive_id, archive_path, expected, hint)
    extract_dataset(spec, archive_path, sha, dest, origin)
    # Only an accepted archive is recorded: a refused one must not replace the hash of the data on disk.
    record_sha256(dest / f"{name}.sha256.json", name, archive_path, sha, origin, checked=expected is not None)
    return target_dir


def _marker_path(dest: Path, name: str) -> Path:
    """Written last by a successful extraction: its archive hash is what makes reruns skip work."""
    return dest / f".{name}.extracted.json"


def _archive_name(name: str, url: str | None) -> str:
    basename = Path(urllib.parse.urlparse(url).path).name if url else ""
    for suffix in (".tar.gz", ".tgz", ".tar", ".zip", ".rar"):
        if basename.lower().endswith(suffix):
            return f"{name}{suffix}"
    return f"{name}.archive"


@contextlib.contextmanager
def _dest_lock(dest: Path):
    """Hold an exclusive ``flock`` on the ``dest`` folder itself while one fetch-data extracts into it.

    Two fetch-data runs into one folder (two shells, a rerun beside a leftover) shared the staging folder: the
    second deleted the first's half-extracted files. The second now waits, then finds the dataset extracted.
    The folder itself is locked, so no lock file is left in it; the kernel drops the lock on any death.
    """
    import fcntl

    dest.mkdir(parents=True, exist_ok=True)
    fd = os.open(dest, os.O_RDONLY)
    try:
        # Some network file systems cannot lock a folder; extracting unlocked is what happened before.
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def extract_dataset(spec: DatasetSpec, archive: Path, sha: str, dest: Path, origin: str) -> None:
    """Extract into a staging folder, find the dataset folder inside, move it to its place under ``dest``.

    A marker holding the archive's hash makes the step idempotent; a folder that fetch-data did not
    make (or made from another archive) is never overwritten.
    """
    with _dest_lock(dest):
        _extract_dataset(spec, archive, sha, dest, origin)


def _extract_dataset(spec: DatasetSpec, archive: Path, sha: str, dest: Path, origin: str) -> None:
    target_dir = dest / spec.dataset_dir
    marker = read_json(_marker_path(dest, spec.name))
    if target_dir.exists():
        if marker and marker.get("sha256") == sha:
            print(f"{spec.title} from this archive is already extracted at {target_dir}; skipping extraction")
            return
        made_by = f"from another archive (sha256 {marker['sha256'][:12]}...)" if marker else "not by fetch-data"
        raise SpcreidError(
            f"{target_dir} already exists, {made_by}; delete or move it to extract this archive, "
            f"or use the existing copy with `spcreid verify-data --dataset {spec.name} --root {dest}`"
        )
    staging = dest / f".{spec.name}.extracting"
    if staging.exists():
        shutil.rmtree(staging)  # leftover of an interrupted run
    try:
        safe_extract(archive, staging)
        found = locate_dataset_dirs(staging, spec)
        if not found:
            top = ", ".join(p.name for p in sorted(staging.iterdir())) or "nothing"
            raise SpcreidError(
                f"{archive} holds no folder with {', '.join(spec.split_folders)} (top level: {top}); "
                f"is it the {spec.title} archive?"
            )
        if len(found) > 1:
            raise SpcreidError(
                f"{archive} holds several candidate {spec.title} folders: {', '.join(map(str, found))}; "
                f"extract it yourself and move the right one to {target_dir}"
            )
        target_dir.parent.mkdir(parents=True, exist_ok=True)
        os.replace(found[0], target_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    # locate_dataset_dirs guaranteed the split folders; what is left to report are stray extras.
    for warning in layout_problems(spec, dest)[1]:
        print(f"warning: {warning}")
    write_json(
        _marker_path(dest, spec.name),
        {"sha256": sha, "source": origin, "archive": str(archive), "dataset_dir": str(target_dir)},
    )
    print(f"{spec.title} extracted to {target_dir}; next: spcreid verify-data --dataset {spec.name} --root {dest}")
