"""The params schema (package data ``spcreid/resources/params.schema.json``, JSON Schema 2020-12) and its loader.

The schema is the one declaration of every option of params.yaml, its allowed values and its default. Both the
Snakemake workflow (workflow/rules/common.smk) and every ``spcreid`` command validate through
:func:`validate_params`, which fills the schema's defaults in place, as ``snakemake.utils.validate(...,
set_default=True)`` does (tests/test_workflow_schema.py checks that the two agree). The schema ships inside the
package, so an installed ``spcreid`` (a container, a wheel) finds it without a source tree.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from spcreid.errors import SpcreidError

# A regular install keeps package data as plain files, so this is a real path; Snakemake's validate() and
# `dvc.yaml` deps may use it as such.
SCHEMA_PATH = Path(str(resources.files("spcreid") / "resources" / "params.schema.json"))


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    try:
        with open(SCHEMA_PATH) as handle:
            return json.load(handle)
    except OSError as exc:
        raise SpcreidError(f"params schema {SCHEMA_PATH} is missing ({exc}); reinstall spcreid") from exc


def schema() -> dict[str, Any]:
    return copy.deepcopy(_schema())


def _defaulting_validator(schema_doc: dict[str, Any]):
    import jsonschema
    from jsonschema import validators

    base = jsonschema.Draft202012Validator
    check_properties = base.VALIDATORS["properties"]

    def properties_with_defaults(validator, properties, instance, subschema):
        if validator.is_type(instance, "object"):
            for name, prop in properties.items():
                if "default" in prop:
                    instance.setdefault(name, copy.deepcopy(prop["default"]))
        yield from check_properties(validator, properties, instance, subschema)

    return validators.extend(base, {"properties": properties_with_defaults}, type_checker=_type_checker())(schema_doc)


def _type_checker():
    """JSON Schema's 'integer' accepts 1.0; a seed or an epoch count written 1.0 then made paths like seed1.0
    that nothing reads. Only a YAML integer is an integer here."""
    import jsonschema

    return jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, instance: isinstance(instance, int) and not isinstance(instance, bool)
    )


def validate_params(params: dict[str, Any], source: str = "params.yaml") -> dict[str, Any]:
    """Fill the schema's defaults into ``params`` (in place, and return it) and check it.

    Raises SpcreidError naming the offending field (as a dotted path) and the rule it breaks.
    """
    import jsonschema

    _refuse_non_finite(params, source)
    validator = _defaulting_validator(_schema())
    # best_match descends into oneOf/anyOf branches, so a typo'd key inside an experiment is reported as
    # "'samplng' was unexpected" instead of "is not valid under any of the given schemas".
    errors = list(validator.iter_errors(params))
    if not errors:
        return params
    # An unknown key is reported before the required key it was probably meant to be ('momentun' beside a
    # missing 'momentum'): its message names both.
    unknown = [e for e in _flatten(errors) if e.validator == "additionalProperties"]
    error = jsonschema.exceptions.best_match(unknown or errors)
    field = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    raise SpcreidError(
        f"{source}: field '{field}': {_bounded(error.message)}{_suggestion(error)}; fix it in {source} "
        "(the allowed keys and values are in spcreid/resources/params.schema.json)"
    )


# jsonschema's message embeds the offending value: a YAML alias bomb would make it megabytes long.
MESSAGE_LIMIT = 300


def _bounded(message: str) -> str:
    return message if len(message) <= MESSAGE_LIMIT else message[:MESSAGE_LIMIT] + " ... (value shortened)"


def _refuse_non_finite(value: Any, source: str, path: tuple = ()) -> None:
    """NaN compares false with every bound, so `minimum`/`maximum` let it through: refuse NaN and inf first."""
    if isinstance(value, float) and not math.isfinite(value):
        field = ".".join(str(p) for p in path) or "<top level>"
        raise SpcreidError(f"{source}: field '{field}' is {value}, not a finite number; fix it in {source}")
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_non_finite(item, source, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _refuse_non_finite(item, source, (*path, i))


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


def method_defaults() -> dict[str, Any]:
    """Optional ``method`` fields and the values they take when absent."""
    props = _schema()["properties"]["method"]["properties"]
    return {name: copy.deepcopy(prop["default"]) for name, prop in props.items()}


def method_choices(field: str) -> tuple[str, ...]:
    """The allowed values of an enumerated ``method`` field, e.g. ``sampling``."""
    return tuple(_schema()["$defs"]["methodFields"]["properties"][field]["enum"])


def validate_method(method: dict[str, Any], source: str = "method") -> dict[str, Any]:
    """Fill defaults into a resolved ``method`` block (in place) and check it against the schema."""
    for name, value in method_defaults().items():
        method.setdefault(name, value)
    _refuse_non_finite(method, source)
    import jsonschema

    doc = _schema()
    sub = {"$schema": doc["$schema"], "$defs": doc["$defs"], "$ref": "#/$defs/methodFields"}
    strict = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_type_checker())
    errors = sorted(strict(sub).iter_errors(method), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        field = ".".join(str(p) for p in error.absolute_path)
        message = _bounded(error.message)
        raise SpcreidError(f"{source}.{field}: {message}" if field else f"{source}: {message}")
    return method
