"""JSON Schemas of the documents other tools read: summary.json, watch status, compare
results and `--json` error documents (files in harness/data/schemas/, draft 2020-12).

`check_document(doc, "summary")` validates with the `jsonschema` package and raises
`InputError` listing every violation with its JSON path.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from harness.errors import InputError

SCHEMAS = ("summary", "watch-status", "compare", "error")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema document for `name` (one of SCHEMAS)."""
    if name not in SCHEMAS:
        raise InputError(f"unknown schema {name!r}; one of {', '.join(SCHEMAS)}")
    text = resources.files("harness").joinpath("data", "schemas",
                                               f"{name}.schema.json").read_text("utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def schema_errors(doc: Any, name: str) -> list[str]:
    """Every violation of schema `name` in `doc`, as "path: message" (empty when valid)."""
    import jsonschema

    schema = load_schema(name)
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    out = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path))):
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.path)
        out.append(f"{path}: {err.message}")
    return out


def check_document(doc: Any, name: str, source: str = "document") -> None:
    """Raise InputError naming every violation when `doc` does not follow schema `name`."""
    errors = schema_errors(doc, name)
    if errors:
        raise InputError(f"{source} does not follow the {name} schema "
                         f"(harness/data/schemas/{name}.schema.json):\n  " + "\n  ".join(errors))
