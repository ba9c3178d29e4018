"""Hostile params.yaml: duplicate keys, typo'd keys, wrong types, broken cross-references, broken YAML.

Each probe edits the repository's real params.yaml as a user might, runs `spcreid make-tables` with it and
expects one error line naming the file and the field, exit status 2, and no output folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hostile_helpers import assert_refused, spcreid
from spcreid.config.experiments import load_params
from spcreid.errors import SpcreidError

REPO = Path(__file__).resolve().parents[1]
PARAMS = (REPO / "params.yaml").read_text()


def replace(old: str, new: str):
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return edit


def structured(change):
    def edit(text: str) -> str:
        params = yaml.safe_load(text)
        change(params)
        return yaml.safe_dump(params, sort_keys=False)

    return edit


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return lines[occurrence - 1]


PROFILE_LINE = line_of(PARAMS, "profile: embedded")

# probe -> (edit of params.yaml text, fragments the error line must hold)
PROBES = {
    "duplicate experiment (second full_eps0.6 with eps 0.9)": (
        replace("  full_eps0.7:", "  full_eps0.6:    {eps: 0.9}\n  full_eps0.7:"),
        [
            "key 'full_eps0.6' appears twice",
            f"lines {line_of(PARAMS, 'full_eps0.6:')} and {line_of(PARAMS, 'full_eps0.7:')}",
        ],
    ),
    "duplicate nested key (method.eps twice)": (
        replace("  min_samples: 4\n", "  min_samples: 4\n  eps: 0.9\n"),
        [
            "key 'eps' appears twice",
            f"lines {line_of(PARAMS, '  eps: 0.4')} and {line_of(PARAMS, 'min_samples: 4') + 1}",
        ],
    ),
    "duplicate top-level key (profile twice)": (
        replace("profile: embedded\n", "profile: embedded\nprofile: paper\n"),
        ["key 'profile' appears twice", f"lines {PROFILE_LINE} and {PROFILE_LINE + 1}"],
    ),
    "typo'd key in an experiment (samplng)": (
        replace("  full_eps0.2:    {eps: 0.2}", "  full_eps0.2:    {eps: 0.2, samplng: both}"),
        ["experiments.full_eps0.2", "'samplng' was unexpected", "did you mean 'sampling'"],
    ),
    "typo'd key in method (momentun)": (
        replace("  momentum: 0.3", "  momentun: 0.3"),
        ["field 'method'", "'momentun' was unexpected", "did you mean 'momentum'"],
    ),
    "typo'd top-level key (tabels)": (
        structured(lambda p: p.update(tabels=p["tables"])),
        ["'tabels' was unexpected", "did you mean 'tables'"],
    ),
    "wrong type: eps as a string": (
        replace("  eps: 0.4\n", "  eps: '0.4'\n"),
        ["field 'method.eps'", "'0.4' is not of type 'number'"],
    ),
    "wrong type: seeds not a list": (
        structured(lambda p: p["profiles"]["embedded"].update(seeds=1)),
        ["field 'profiles.embedded.seeds'", "is not of type 'array'"],
    ),
    "out of range: P = 0": (
        replace("  P: 8", "  P: 0") if "  P: 8" in PARAMS else structured(lambda p: p["method"].update(P=0)),
        ["field 'method.P'"],
    ),
    "unknown active profile": (
        replace("profile: embedded\n", "profile: embeded\n"),
        ["field 'profile' is 'embeded'"],
    ),
    "table cell names an undeclared experiment": (
        structured(lambda p: p["tables"]["table2"]["rows"][0].update(experiment="basline")),
        ["tables.table2.rows[0].experiment 'basline' is not declared"],
    ),
    "not YAML (unclosed bracket)": (
        replace("  baseline:       {augment: false,", "  baseline:       {augment: false, ["),
        ["is not valid YAML"],
    ),
    "empty file": (lambda text: "", ["must hold a mapping"]),
    "a list instead of a mapping": (lambda text: "- profile\n- embedded\n", ["must hold a mapping"]),
}


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_bad_params_are_refused_with_the_field_named(probe, tmp_path, capsys):
    edit, fragments = PROBES[probe]
    params = tmp_path / "params.yaml"
    params.write_text(edit(PARAMS))
    out = tmp_path / "tables"
    outcome = spcreid(
        capsys,
        "make-tables",
        "--params",
        params,
        "--metrics-dir",
        tmp_path / "metrics",
        "--paper-dir",
        REPO / "results/published",
        "--out",
        out,
    )
    line = assert_refused(outcome, "make-tables", params, *fragments)
    assert "\n" not in line
    assert not out.exists()


def test_missing_params_file(tmp_path, capsys):
    outcome = spcreid(capsys, "make-tables", "--params", tmp_path / "nope.yaml", "--out", tmp_path / "t")
    assert_refused(outcome, "make-tables", tmp_path / "nope.yaml", "not found")


def test_duplicate_key_was_silently_won_by_the_last_entry_before(tmp_path):
    # Defect 2: the second `full_eps0.6` (eps 0.9) used to replace the first; the table's 0.6 row trained at 0.9.
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS.replace("  full_eps0.7:", "  full_eps0.6:    {eps: 0.9}\n  full_eps0.7:", 1))
    first, second = line_of(params.read_text(), "full_eps0.6:", 1), line_of(params.read_text(), "full_eps0.6:", 2)
    with pytest.raises(SpcreidError, match=rf"key 'full_eps0.6' appears twice .*lines {first} and {second}"):
        load_params(params)


def test_the_repository_params_have_no_duplicate_keys():
    assert load_params(REPO / "params.yaml")["experiments"]["full_eps0.6"] == {"eps": 0.6}
