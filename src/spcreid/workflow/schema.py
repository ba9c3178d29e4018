"""Validation of params.yaml against workflow/schemas/params.schema.json (JSON Schema 2020-12)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from spcreid.errors import SpcreidError

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "params.schema.json"


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    with open(SCHEMA_PATH) as handle:
        return json.load(handle)


def validate_params(params: dict[str, Any], source: str = "params.yaml") -> None:
    """Raise SpcreidError naming the offending field (as a dotted path) and the rule it breaks."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(params), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        field = ".".join(str(p) for p in error.absolute_path) or "<top level>"
        raise SpcreidError(f"{source}: field '{field}': {error.message}")
