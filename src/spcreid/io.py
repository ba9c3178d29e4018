"""Atomic file output and hashing.

Every result file is written to a temporary sibling and renamed into place, so an interrupted
job never leaves a half-written output that a workflow manager would mistake for a finished one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _publish(tmp: str | os.PathLike, path: Path) -> None:
    """Give the temporary file normal permissions (mkstemp makes it 0600), then rename it into place."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


# A temporary file's name carries its writer's pid, so a later writer of the same file can tell the leftover of a
# killed one (SIGKILL, power loss: no handler runs) from a live writer's file and delete it. The age limit keeps
# a live writer on another host of a shared file system (whose pid means nothing here) safe.
STALE_SECONDS = 600


def _temp_prefix(name: str) -> str:
    return f".{name}.{os.getpid()}."


# Any temporary file of ours: .NAME.PID.XXXXXXXX.SUFFIX (mkstemp's random part is 8 of [a-z0-9_]).
_TEMP_NAME = re.compile(r"\..+\.(\d+)\.[a-z0-9_]{8}(\.[^.]+)?")
_swept: set[str] = set()


def _remove_stale(folder: Path) -> None:
    """Delete temporary files (and staging folders) in ``folder`` left by writers that died before renaming them.

    Each folder is swept once per process: a synthesis cache writes thousands of files into one folder.
    """
    key = os.path.abspath(folder)
    if key in _swept:
        return
    _swept.add(key)
    try:
        with os.scandir(folder) as entries:
            candidates = [(e.path, _TEMP_NAME.fullmatch(e.name)) for e in entries if e.name.startswith(".")]
    except OSError:
        return
    now = time.time()
    for path, match in candidates:
        if not match:
            continue
        pid = int(match.group(1))
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue  # its writer is alive
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue
        with contextlib.suppress(OSError):
            if now - os.stat(path).st_mtime > STALE_SECONDS:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)


def staging_folder(out: str | os.PathLike) -> Path:
    """A new hidden folder beside ``out`` to build it in (``.NAME.PID.XXXXXXXX.staging``), after removing the
    staging folders of builders that were killed (the same rule as temporary files)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(out.parent)
    return Path(tempfile.mkdtemp(dir=out.parent, prefix=_temp_prefix(out.name), suffix=".staging"))


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary file next to ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path.name), suffix=".tmp")
    os.close(fd)
    try:
        with open(tmp, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _publish(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path for libraries that insist on writing by name (PIL, torch.save, pandas).

    The temporary name keeps the final suffix so format detection by extension still works.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path.stem), suffix=path.suffix or ".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _publish(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_file_set(out_dir: str | os.PathLike, files: dict[str, str]) -> None:
    """Write every file of ``files`` (name -> text) under ``out_dir``, or none of them.

    Each is written into a staging folder beside them first, so a full disk or a kill leaves the previous set
    whole instead of a mix of new and old files; the renames that follow need no space.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".staging.", suffix=".tmp"))
    try:
        for name, text in files.items():
            with open(staging / name, "w") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        for name in files:
            _publish(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_write(path) as handle:
        json.dump(obj, handle, indent=2, sort_keys=True)
        handle.write("\n")


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path) as handle:
        handle.write(text)


@functools.lru_cache(maxsize=4096)
def _resolved_folder(folder: str) -> str:
    return str(Path(folder).resolve())


def resolve_file(path: str | os.PathLike, base: str | os.PathLike = ".") -> str:
    """``(base / path).resolve()`` of a file, as a string, with each folder resolved only once per process.

    Manifests and synthesis indexes hold tens of thousands of files in a few folders; resolving every
    file's every component costs an lstat each (4 s for a 9,600-row index), resolving its folder once
    costs nothing. The file name itself is kept: a file that is a symlink is not followed (a folder is).
    """
    folder, name = os.path.split(os.path.join(os.fspath(base), os.fspath(path)))
    # Absolute before the cache (the working folder may change), but not normalised: ".." after a symlinked
    # folder must be resolved from the link's target, as Path.resolve does.
    folder = folder if os.path.isabs(folder) else os.path.join(os.getcwd(), folder)
    return os.path.join(_resolved_folder(folder), name)


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()
