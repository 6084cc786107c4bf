"""Checks of single suite fields: numbers, probe selections, contexts and max rates.

Each helper appends what is wrong to a `_Checker` (file, YAML line map, problems so far)
rather than raising, so a suite file's problems are all reported at once.
"""

from __future__ import annotations

import glob as globmod
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness import taxonomy
from harness.errors import Problem
from harness.probes import check_probe_file, parse_messages
from harness.records import Context, Message, Probe
from harness.suites._model import Price


class _Checker:
    def __init__(self, file: str, lines: dict[tuple[Any, ...], int]):
        self.file = file
        self.lines = lines
        self.problems: list[Problem] = []

    def line(self, path: tuple[Any, ...]) -> int | None:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path)

    def add(self, path: tuple[Any, ...], message: str) -> None:
        field = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in path)
        field = field.replace(".[", "[")
        self.problems.append(Problem(self.file, self.line(path), field or "suite", message))


def _number(ck: _Checker, raw: Mapping[str, Any], key: str, kind: type, lo: float, hi: float,
            *, lo_open: bool = False, hi_open: bool = False) -> Any:
    if key not in raw:
        return None
    v = raw[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and
                                                                 not isinstance(v, int)):
        ck.add((key,), f"{v!r} is not {'an integer' if kind is int else 'a number'}")
        return None
    bad = (v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi))
    if bad:
        lo_s = "(" if lo_open else "["
        hi_s = ")" if hi_open else "]"
        ck.add((key,), f"{v!r} is outside {lo_s}{lo:g}, {hi:g}{hi_s}")
        return None
    return kind(v)


def _parse_probes(ck: _Checker, raw: Any, base: Path) -> list[Probe]:
    if not isinstance(raw, list) or not raw:
        ck.add(("probes",), "must be a non-empty list of files, globs or selections")
        return []
    out: list[Probe] = []
    seen: dict[str, str] = {}
    for i, entry in enumerate(raw):
        path = ("probes", i)
        if isinstance(entry, str):
            entry = {"file": entry}
        if not isinstance(entry, Mapping):
            ck.add(path, "must be a path or a mapping with file or glob")
            continue
        unknown = set(entry) - {"file", "glob", "ids", "categories", "tags", "exclude_ids"}
        for k in sorted(unknown):
            ck.add((*path, k), "unknown key; use file, glob, ids, categories, tags, exclude_ids")
        files = _entry_files(ck, entry, path, base)
        selectors: dict[str, set[str]] = {}
        for key in ("ids", "categories", "tags", "exclude_ids"):
            if key in entry:
                v = entry[key]
                if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                    ck.add((*path, key), "must be a list of strings")
                else:
                    selectors[key] = set(v)
        picked: list[Probe] = []
        for f in files:
            probes, problems = check_probe_file(f)
            ck.problems.extend(problems)
            picked.extend(p for p in probes if _selected(p, selectors))
        if "ids" in selectors and files:
            missing = selectors["ids"] - {p.id for p in picked} - {p.parent_id for p in picked}
            if missing:
                ck.add((*path, "ids"), f"not found in the selected files: "
                       f"{', '.join(sorted(missing))}")
        for p in picked:
            if p.id in seen:
                continue  # selected twice by overlapping entries: run it once
            seen[p.id] = str(i)
            out.append(p)
    return out


def _entry_files(ck: _Checker, entry: Mapping[str, Any], path: tuple[str | int, ...],
                 base: Path) -> list[Path]:
    """The probe files a `probes` entry names: its `file` and every match of its `glob`."""
    files: list[Path] = []
    if "file" in entry:
        f = base / str(entry["file"])
        if not f.is_file():
            ck.add((*path, "file"), f"{entry['file']!r} not found (looked for {f})")
        else:
            files.append(f)
    if "glob" in entry:
        found = sorted(Path(p) for p in globmod.glob(str(base / str(entry["glob"])),
                                                     recursive=True))
        if not found:
            ck.add((*path, "glob"), f"{entry['glob']!r} matches no file under {base}")
        files.extend(found)
    if "file" not in entry and "glob" not in entry:
        ck.add(path, "needs file or glob")
    return files


def _selected(p: Probe, selectors: Mapping[str, set[str]]) -> bool:
    """Whether a probe passes an entry's selectors (`ids` also selects a parent's variants)."""
    if "ids" in selectors and p.id not in selectors["ids"] and (
            p.parent_id not in selectors["ids"]):
        return False
    if "categories" in selectors and p.category not in selectors["categories"]:
        return False
    if "tags" in selectors and not selectors["tags"] & set(p.tags):
        return False
    return p.id not in selectors.get("exclude_ids", set())


def _parse_context(ck: _Checker, raw: Any, i: int) -> Context | None:
    path = ("contexts", i)
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, Mapping):
        ck.add(path, "must be a mapping with at least a name")
        return None
    unknown = set(raw) - {"name", "system", "turns", "documents", "tool_outputs", "description"}
    for k in sorted(unknown):
        ck.add((*path, k), "unknown key; use name, system, turns, documents, tool_outputs, "
               "description")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        ck.add((*path, "name"), "must be a non-empty string")
        return None
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        ck.add((*path, "name"), f"{name!r} holds a line break or control character; give a "
               "one-line name")
        return None
    system = raw.get("system")
    if system is not None and not isinstance(system, str):
        ck.add((*path, "system"), "must be a string")
        system = None
    turns: tuple[Message, ...] = ()
    if raw.get("turns"):
        probs: list[Problem] = []
        parsed = parse_messages(raw["turns"], ck.file, ck.line((*path, "turns")), "turns", probs)
        for p in probs:
            ck.problems.append(replace(p, field=f"contexts[{i}].{p.field}"))
        turns = parsed or ()
    docs: list[str] = []
    tools: list[str] = []
    for key in ("documents", "tool_outputs"):
        v = raw.get(key, [])
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            ck.add((*path, key), "must be a list of strings")
            v = []
        if key == "documents":
            docs = list(v)
        else:
            tools = list(v)
    return Context(name=name, system=system, turns=turns, documents=tuple(docs),
                   tool_outputs=tuple(tools), description=str(raw.get("description", "")))


def _parse_max_rate(ck: _Checker, raw: Any, deployment: str) -> dict[str, float]:
    rates: dict[str, float] = dict(taxonomy.max_rates_for(deployment, {}))
    if raw is None:
        return rates
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        raw = {"overall": raw}
    if not isinstance(raw, Mapping):
        ck.add(("max_rate",), "must be a number or a mapping {overall: 0.05, <category>: 0.01}")
        return rates
    known = set(taxonomy.CATEGORIES) | {"overall"}
    for k, v in raw.items():
        if k not in known:
            import difflib

            close = difflib.get_close_matches(str(k), sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            ck.add(("max_rate", k), f"{k!r} is not a category{hint}")
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
            ck.add(("max_rate", k), f"{v!r} must be a rate strictly between 0 and 1")
            continue
        rates[str(k)] = float(v)
    return rates


def _parse_price(ck: _Checker, raw: Any) -> Price | None:
    """`price: {per_1k_in: 0.00015, per_1k_out: 0.0006, currency: USD}`."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        ck.add(("price",), "must be a mapping {per_1k_in: 0.00015, per_1k_out: 0.0006, "
               "currency: USD}")
        return None
    for k in sorted(set(raw) - {"per_1k_in", "per_1k_out", "currency"}):
        ck.add(("price", k), "unknown key; use per_1k_in, per_1k_out, currency")
    values: dict[str, float] = {}
    for key in ("per_1k_in", "per_1k_out"):
        v = raw.get(key)
        if v is None:
            ck.add(("price", key), "missing: the price of 1,000 tokens (0 when free)")
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            ck.add(("price", key), f"{v!r} must be a number >= 0 (price of 1,000 tokens)")
        else:
            values[key] = float(v)
    currency = raw.get("currency", "USD")
    if not isinstance(currency, str) or not currency.strip():
        ck.add(("price", "currency"), f"{currency!r} must be a currency name, e.g. USD")
        currency = "USD"
    if len(values) < 2:
        return None
    return Price(values["per_1k_in"], values["per_1k_out"], currency.strip())


def _valid_sample_capture(capture: str) -> bool:
    if not capture.startswith("sample:"):
        return False
    try:
        frac = float(capture.split(":", 1)[1])
    except ValueError:
        return False
    return 0 < frac <= 1
