"""Where a JSON Schema error is, in words a person editing the file understands.

Registry files (``sources:``) and case files (``claims:``) both hold a list of named entries;
an error is reported as the entry (by its ``id``, or ``#n`` when the id itself is missing or
wrong) and the field inside it (``politeness.delay``, ``evidence[0].from``), naming the missing
or unexpected property when that is the error.
"""

from __future__ import annotations

from typing import Any


def first_error(
    validator: Any, doc: dict[str, Any], list_key: str
) -> tuple[str | None, str | None, Any] | None:
    """The most relevant schema error in ``doc`` with its (entry, field), or None if valid."""
    errors = list(validator.iter_errors(doc))
    if not errors:
        return None
    from jsonschema.exceptions import best_match

    error = best_match(errors)
    entry, field = error_location(error, doc, list_key)
    return entry, field, error


def error_location(error: Any, doc: dict[str, Any], list_key: str) -> tuple[str | None, str | None]:
    """(entry name or None, field path or None) of a ``jsonschema`` error in ``doc``."""
    parts = list(error.absolute_path)
    index = (
        parts[1] if len(parts) >= 2 and parts[0] == list_key and isinstance(parts[1], int) else None
    )
    rest = parts[2:] if index is not None else parts
    if error.validator == "required" and isinstance(error.validator_value, list):
        missing = [
            name
            for name in error.validator_value
            if isinstance(error.instance, dict) and name not in error.instance
        ]
        if missing:
            rest = [*rest, missing[0]]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        if extra:
            rest = [*rest, extra[0]]
    text = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in rest).replace(".[", "[")
    return _entry_name(doc, list_key, index), text or None


def _entry_name(doc: dict[str, Any], list_key: str, index: int | None) -> str | None:
    if index is None:
        return None
    try:
        entry = doc[list_key][index]
        if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"]:
            return str(entry["id"])
    except (KeyError, IndexError, TypeError):
        pass
    return f"#{index + 1}"
