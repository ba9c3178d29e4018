"""Validation of params.yaml against workflow/schemas/params.schema.json (JSON Schema 2020-12)."""

from __future__ import annotations

import difflib
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
    # best_match descends into oneOf/anyOf branches, so a typo'd key inside an experiment is reported as
    # "'samplng' was unexpected" instead of "is not valid under any of the given schemas".
    errors = list(validator.iter_errors(params))
    if not errors:
        return
    # An unknown key is reported before the required key it was probably meant to be ('momentun' beside a
    # missing 'momentum'): its message names both.
    unknown = [e for e in _flatten(errors) if e.validator == "additionalProperties"]
    error = jsonschema.exceptions.best_match(unknown or errors)
    field = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    raise SpcreidError(
        f"{source}: field '{field}': {error.message}{_suggestion(error)}; fix it in {source} "
        "(the allowed keys and values are in workflow/schemas/params.schema.json)"
    )


def _flatten(errors):
    for error in errors:
        yield error
        yield from _flatten(error.context or [])


def _suggestion(error) -> str:
    """For an unknown key, the allowed keys it is closest to."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return ""
    allowed = sorted(error.schema.get("properties", {}))
    unknown = [key for key in error.instance if key not in allowed]
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hints.append(f"'{key}' -> did you mean '{close[0]}'?" if close else f"'{key}' is not a known key")
    return f"; {'; '.join(hints)} (allowed: {', '.join(allowed)})" if hints else ""
