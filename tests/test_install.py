"""A regular (non-editable) install of the package, as the containers do it, works away from the source tree.

The wheel is built from a copy of what the images copy (pyproject.toml, README.md, src/), installed with
--no-deps into a scratch folder and run with only that folder on the path: `spcreid` commands that read
params.yaml must find the params schema inside the installed package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from workflow_helpers import REPO


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    wheels = base / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(wheels), str(source)],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = wheels.glob("spcreid-*.whl")
    target = base / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-build-isolation", "--no-index", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        text=True,
    )
    work = base / "work"  # no source tree here: only the params file a user would have
    work.mkdir()
    shutil.copy2(REPO / "params.yaml", work / "params.yaml")
    return {"wheel": wheel, "site": target, "work": work}


def _spcreid(installed, *args):
    # Only the installed copy on the path (PYTHONPATH=src of the worktree would otherwise win).
    env = dict(os.environ, PYTHONPATH=str(installed["site"]), MPLBACKEND="Agg")
    return subprocess.run(
        [str(installed["site"] / "bin" / "spcreid"), *args],
        cwd=installed["work"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_wheel_ships_the_params_schema(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    assert "spcreid/resources/params.schema.json" in names
    schema = json.loads((installed["site"] / "spcreid/resources/params.schema.json").read_text())
    assert schema["$defs"]["methodFields"]["properties"]["momentum"]["exclusiveMaximum"] == 1


def test_installed_command_reads_params_and_writes_tables(installed):
    work = installed["work"]
    (work / "metrics").mkdir(exist_ok=True)
    result = _spcreid(
        installed,
        "make-tables",
        "--params",
        "params.yaml",
        "--metrics-dir",
        "metrics",
        "--paper-dir",
        str(REPO / "results/published"),
        "--out",
        "tables",
        "--allow-missing",
    )
    assert result.returncode == 0, result.stderr
    assert (work / "tables/table1.csv").is_file() and (work / "tables/summary.json").is_file()
    where = subprocess.run(
        [sys.executable, "-c", "import spcreid.config.schema as s; print(s.SCHEMA_PATH)"],
        env=dict(os.environ, PYTHONPATH=str(installed["site"])),
        capture_output=True,
        text=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(installed["site"]), where.stdout + where.stderr


def test_installed_command_names_a_bad_field(installed):
    work = installed["work"]
    bad = (work / "params.yaml").read_text().replace("  momentum: 0.3\n", "  momentum: 1.0\n", 1)
    assert bad != (work / "params.yaml").read_text()
    (work / "bad.yaml").write_text(bad)
    result = _spcreid(installed, "make-tables", "--params", "bad.yaml", "--out", "never")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        "spcreid make-tables: error: bad.yaml: field 'method.momentum': 1.0 is greater than or equal to the "
        "maximum of 1"
    ), line
    assert not (work / "never").exists()


def test_installed_version_matches_the_project(installed):
    result = _spcreid(installed, "--version")
    assert result.returncode == 0
    import tomllib

    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert result.stdout.strip() == f"spcreid {version}"
