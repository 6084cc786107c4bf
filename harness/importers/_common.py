"""What the format parsers share: the result record, the probe builder, CSV row reading.

`_Builder` turns rows into probe objects in the `probes/*.jsonl` format (ids, categories,
severities, expectations, tags) and collects every problem of a file before raising.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.errors import InputError, Problem, UsageError, ValidationError
from harness.taxonomy import CATEGORIES, SEVERITIES, category_for

FORMATS: tuple[str, ...] = ("harmbench", "advbench", "jailbreakbench", "text")
"""Importable formats, as named on the command line."""

DEFAULT_PREFIX: Mapping[str, str] = {
    "harmbench": "hb",
    "advbench": "adv",
    "jailbreakbench": "jbb",
    "text": "txt",
}
"""Default id prefix per format (override with `id_prefix`)."""

FALLBACK_CATEGORY = "dangerous-instructions"

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.:~+-]+")


@dataclass(frozen=True)
class ImportResult:
    """What an import produced: probe objects (probe-file format), warnings, the format."""

    format: str
    file: str
    probes: tuple[dict[str, Any], ...]
    warnings: tuple[str, ...] = field(default=())

    def counts_by_category(self) -> dict[str, int]:
        """Number of probes per category, in taxonomy order."""
        counts = Counter(p["category"] for p in self.probes)
        return {c: counts[c] for c in CATEGORIES if counts[c]}


@dataclass
class _Builder:
    """Collects probes, problems and unmapped-category counts while parsing one file."""

    fmt: str
    file: str
    id_prefix: str
    default_category: str | None
    severity: str | None
    benign: bool
    probes: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    unmapped: Counter[str] = field(default_factory=Counter)
    seen_ids: dict[str, int] = field(default_factory=dict)

    def category(self, mapped: str | None, raw: str) -> str:
        """The taxonomy category of a row: forced, mapped, or default (counted)."""
        if self.benign:
            return "over-refusal"
        if mapped is not None:
            return mapped
        self.unmapped[raw] += 1
        return self.default_category or FALLBACK_CATEGORY

    def add(self, line: int, local_id: str, category: str, messages: list[dict[str, str]],
            source: str, tags: Sequence[str]) -> None:
        pid = f"{self.id_prefix}-{_slug(local_id)}"
        if pid in self.seen_ids:
            self.problems.append(Problem(
                self.file, line, "id",
                f"duplicate id {pid!r} (first on line {self.seen_ids[pid]}); the source "
                "has a repeated identifier: remove or rename one of the rows"))
            return
        self.seen_ids[pid] = line
        obj: dict[str, Any] = {
            "id": pid,
            "category": category,
            "severity": self.severity or CATEGORIES[category].default_severity,
        }
        if len(messages) == 1 and messages[0]["role"] == "user":
            obj["prompt"] = messages[0]["content"]
        else:
            obj["messages"] = messages
        obj["expect"] = _expectation(category)
        obj["tags"] = _dedupe(["imported", self.fmt, *tags])
        obj["source"] = source
        self.probes.append(obj)

    def result(self) -> ImportResult:
        if self.problems:
            raise ValidationError(self.problems)
        if not self.probes:
            raise InputError(f"{self.file}: no probes found (only a header, blank lines or "
                             "comments); check that this is the right file and format")
        warnings: list[str] = []
        target = self.default_category or FALLBACK_CATEGORY
        hint = "" if self.default_category else " (pass --category to choose another)"
        for raw, n in sorted(self.unmapped.items()):
            if raw:
                warnings.append(f"{self.file}: source category {raw!r} has no taxonomy "
                                f"mapping; {n} probe(s) filed under {target!r}{hint}")
            elif not self.default_category:
                # A format without categories: the caller chose none, so say what we did.
                warnings.append(f"{self.file}: the format carries no categories; {n} "
                                f"probe(s) filed under {target!r}{hint}")
        return ImportResult(self.fmt, self.file, tuple(self.probes), tuple(warnings))


def _expectation(category: str) -> dict[str, Any]:
    # Imported behaviours are requests that must be refused; benign controls (e.g. the
    # JailbreakBench benign set imported with benign=True) must be answered.
    if CATEGORIES[category].failure == "refusal":
        return {"must_answer": True}
    return {"must_refuse": True}


def _slug(text: str) -> str:
    """An id-safe form of a source identifier (letters, digits and _.:~+- only)."""
    slug = _ID_UNSAFE.sub("_", text.strip()).strip("_")
    return slug or "x"


def _tag(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _dedupe(items: Sequence[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        if item and item not in out:
            out.append(item)
    return out


def _builder(fmt: str, file: str, id_prefix: str | None, default_category: str | None,
             severity: str | None, benign: bool) -> _Builder:
    if default_category is not None:
        category_for(default_category)  # RegistryError with did-you-mean
    if severity is not None and severity not in SEVERITIES:
        raise UsageError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    prefix = DEFAULT_PREFIX[fmt] if id_prefix is None else id_prefix
    if not prefix or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:~+-]*", prefix):
        raise UsageError(f"id prefix {prefix!r} is not valid: use letters, digits and "
                         "_.:~+- and start with a letter or digit (e.g. --id-prefix hb)")
    return _Builder(fmt, file, prefix, default_category, severity, benign)


def _rows(text: str, file: str, required: Sequence[str], fmt_title: str,
          problems: list[Problem]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (first line number, row) of a CSV, checking the header first.

    Column names are matched exactly after stripping spaces; extra columns are ignored.
    A bad header raises at once; bad rows are appended to `problems` and skipped.
    """
    if not text.strip():
        raise InputError(f"{file}: the file is empty; expected a {fmt_title} CSV with the "
                         f"header {','.join(required)}")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except csv.Error as exc:
        raise ValidationError([Problem(file, 1, "header", f"not valid CSV: {exc}")]) from None
    missing = [c for c in required if c not in header]
    if missing:
        raise ValidationError([Problem(
            file, 1, "header",
            f"missing column(s) {', '.join(missing)}; a {fmt_title} CSV needs the header "
            f"{','.join(required)} (found: {','.join(header) or 'nothing'}). "
            "Is this the right FORMAT?")])
    index = {name: i for i, name in reversed(list(enumerate(header)))}
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(Problem(file, start, "csv", f"not valid CSV: {exc}; check quoting"))
            break
        line, start = start, reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        if len(cells) < len(header):
            # A short row means a missing separator or a broken quote, not an empty cell.
            problems.append(Problem(file, line, "row", f"has {len(cells)} field(s), the "
                                    f"header has {len(header)}; check commas and quotes"))
            continue
        yield line, {name: cells[i] for name, i in index.items()}


def _need(row: Mapping[str, str], column: str, file: str, line: int,
          problems: list[Problem]) -> str | None:
    value = row.get(column, "").strip()
    if not value:
        problems.append(Problem(file, line, column, "is empty; every row needs a value"))
        return None
    return value
