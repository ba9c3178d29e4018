"""Project metadata agrees with itself: licence, citation, changelog and the package version."""

from __future__ import annotations

import re
import tomllib

import yaml

from spcreid import __version__
from workflow_helpers import REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_license_file_is_the_declared_licence():
    assert PROJECT["license"] == "MIT"
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License\n") and "Permission is hereby granted, free of charge" in text
    assert re.search(r"^Copyright \(c\) \d{4} \S", text, re.M)


def test_citation_names_the_software_and_the_paper():
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["type"] == "software"
    assert {"message", "title", "authors"} <= set(citation)
    assert citation["version"] == PROJECT["version"] == __version__
    assert citation["license"] == PROJECT["license"]
    paper = citation["preferred-citation"]
    assert paper["title"] == "Unsupervised clothing change adaptive person ReID"
    assert [a["family-names"] for a in paper["authors"]] == ["Zhang", "Jiang", "Huang", "Xu"]
    assert (paper["journal"], paper["volume"], paper["year"]) == ("IEEE Signal Processing Letters", 29, 2022)
    assert {i["value"] for i in paper["identifiers"]} == {"arXiv:2109.03702"}


def test_changelog_has_the_current_version_and_unreleased():
    headings = re.findall(r"^## \[([^\]]+)\]", (REPO / "CHANGELOG.md").read_text(), re.M)
    assert headings[0] == "Unreleased" and PROJECT["version"] in headings
