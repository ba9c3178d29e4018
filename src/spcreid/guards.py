"""The guard of every resumable step: refuse to resume an output that was made with other settings.

Parsing maps, the synthesis cache and a training checkpoint each record the settings they were made with;
continuing one of them under other settings would leave two configurations mixed in one output, with
nothing on disk to tell which part is which. A leaf module (no torch, nothing of spcreid but its errors), so
that every step can import it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from spcreid.errors import SpcreidError


def read_recorded_settings(path: str | os.PathLike) -> dict[str, Any] | None:
    """The settings recorded in the JSON file ``path``; None when there is none (the output is new)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        recorded = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SpcreidError(f"{path} is unreadable ({exc}); delete {path.parent} and rerun") from exc
    if not isinstance(recorded, dict):
        raise SpcreidError(f"{path} is unreadable (not a JSON object); delete {path.parent} and rerun")
    return recorded


def settings_differences(
    recorded: Mapping[str, Any] | None,
    wanted: Mapping[str, Any],
    fields: Iterable[str] | None = None,
    may_change: Collection[str] = (),
) -> list[str]:
    """Each setting that differs between ``recorded`` and ``wanted``, as ``<field>: <recorded> -> <wanted>``.

    ``recorded`` None: nothing was recorded yet, nothing differs. Compared are ``fields`` (default: every field of
    either side, sorted); a field that is a mapping on both sides is compared key by key, so the difference names
    the one setting that changed. Dotted names in ``may_change`` (``train.epochs``) may differ.
    """
    if recorded is None:
        return []
    fields = sorted(set(recorded) | set(wanted)) if fields is None else list(fields)
    differences = []
    for field in fields:
        old, new = recorded.get(field), wanted.get(field)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            for key in sorted(set(old) | set(new)):
                if f"{field}.{key}" not in may_change and old.get(key) != new.get(key):
                    differences.append(f"{field}.{key}: {old.get(key)!r} -> {new.get(key)!r}")
        elif field not in may_change and old != new:
            differences.append(f"{field}: {old!r} -> {new!r}")
    return differences


def check_recorded_settings(
    recorded: Mapping[str, Any] | None,
    wanted: Mapping[str, Any],
    refusal: str,
    remedy: str,
    fields: Iterable[str] | None = None,
    may_change: Collection[str] = (),
) -> None:
    """Refuse to resume when the ``recorded`` settings differ from the ``wanted`` ones (``settings_differences``).

    The error reads ``<refusal> (<field>: <recorded> -> <wanted>; ...); <remedy>``.
    """
    differences = settings_differences(recorded, wanted, fields, may_change)
    if differences:
        raise SpcreidError(f"{refusal} ({'; '.join(differences)}); {remedy}")


def clear_if_changed(
    folder: str | os.PathLike,
    recorded: Mapping[str, Any] | None,
    wanted: Mapping[str, Any],
    names: Iterable[str],
    fields: Iterable[str] | None = None,
) -> list[str]:
    """Delete ``names`` (files or folders) in ``folder`` when its ``recorded`` settings differ from ``wanted``.

    For the workflow only (the commands' ``--replace-changed``): Snakemake reruns a step exactly when one of its
    settings changed, and it removes only the declared output file, so the rest of a folder made with the old
    settings would otherwise make the guard refuse the very rerun Snakemake asked for. Only the step's own
    entries are removed, never the folder itself. Returns the differences (empty: nothing was removed).
    """
    differences = settings_differences(recorded, wanted, fields)
    if differences:
        for name in names:
            path = Path(folder) / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
    return differences


def guard_output(
    folder: str | os.PathLike,
    recorded_name: str,
    wanted: Mapping[str, Any],
    entries: Iterable[str],
    refusal: str,
    afresh: str,
    fields: Iterable[str] | None = None,
    replace_changed: bool = False,
) -> None:
    """The guard of a resumable step's output folder: refuse settings other than those recorded in
    ``folder/recorded_name``, or, with ``replace_changed`` (the workflow's choice), remove the step's own ``entries``
    and say so (``<refusal>; <afresh>``) so that the step starts afresh."""
    fields = None if fields is None else list(fields)
    recorded = read_recorded_settings(Path(folder) / recorded_name)
    if replace_changed and clear_if_changed(folder, recorded, wanted, entries, fields):
        print(f"{refusal}; {afresh}", file=sys.stderr)
        return
    check_recorded_settings(recorded, wanted, refusal, "use another --out or delete it", fields=fields)
