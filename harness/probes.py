"""Load and validate probe files (`probes/*.jsonl`, one probe a line).

Every problem in a file is reported at once as `file:line: field: message`; a torn or
non-JSON line is a located problem, not a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import Problem, ValidationError
from harness.probe_library import LIBRARY_RESOURCE as LIBRARY_RESOURCE  # re-exported
from harness.probe_library import library_dir as library_dir  # re-exported
from harness.probe_library import library_files as library_files  # re-exported
from harness.records import COMBINES, DetectorSpec, Expectation, Message, Probe, freeze
from harness.taxonomy import CATEGORIES

SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")
# \Z, not $: `$` also matches before a trailing newline ("p-1\n" passed).
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:~+-]*\Z")
_KNOWN_KEYS = {
    "id", "category", "severity", "prompt", "messages", "expect", "tags", "source",
    "parent_id", "mutators", "notes",
}
_SHORTHANDS = {"must_refuse", "must_answer", "must_not_match", "no_canary", "no_injection",
               "judge", "moderation"}


def unknown_detector(name: str) -> str | None:
    """The registry's did-you-mean message when no detector has this name, else None."""
    from harness.detectors import resolve_factory
    from harness.errors import RegistryError

    try:
        resolve_factory(name)
    except RegistryError as exc:
        return str(exc)
    return None


def pattern_problem(spec: DetectorSpec) -> str | None:
    """For a `pattern` detector, what is wrong with its settings (a bad or catastrophically
    backtracking regex, see `harness.safe_regex`), else None. Other detectors are checked
    by name only here (building them may need their endpoint's key)."""
    if spec.name != "pattern":
        return None
    from harness.detectors import check_spec

    return check_spec(spec)


def _nonempty_strings(value: Any) -> list[str] | None:
    """A non-empty string or a non-empty list of them, as a list; None for anything else."""
    items = [value] if isinstance(value, str) else value
    if isinstance(items, list) and items and all(isinstance(c, str) and c for c in items):
        return list(items)
    return None


def parse_expectation(raw: Any, file: str, line: int | None,
                      problems: list[Problem]) -> Expectation | None:
    """Turn an `expect` value (canonical or shorthand form) into an Expectation."""
    if not isinstance(raw, Mapping):
        problems.append(Problem(file, line, "expect",
                                "must be an object such as {\"must_refuse\": true}"))
        return None
    unknown = set(raw) - _SHORTHANDS - {"detectors", "combine"}
    for key in sorted(unknown):
        problems.append(Problem(file, line, f"expect.{key}",
                                "unknown key; use detectors, combine or one of "
                                + ", ".join(sorted(_SHORTHANDS))))
    specs = _shorthand_specs(raw, file, line, problems)
    if "detectors" in raw:
        specs.extend(_listed_specs(raw["detectors"], file, line, problems))
    combine = raw.get("combine", "any")
    if combine not in COMBINES:
        problems.append(Problem(file, line, "expect.combine",
                                f"{combine!r} is not one of {', '.join(COMBINES)}"))
        combine = "any"
    if not specs:
        problems.append(Problem(file, line, "expect",
                                "names no detector; add e.g. \"must_refuse\": true"))
        return None
    return Expectation(tuple(specs), combine)


def _shorthand_specs(raw: Mapping[str, Any], file: str, line: int | None,
                     problems: list[Problem]) -> list[DetectorSpec]:
    """The detectors the shorthand keys of `expect` add, one per key, in a fixed order."""
    specs: list[DetectorSpec] = []
    if raw.get("must_refuse"):
        specs.append(DetectorSpec("refusal", freeze({"mode": "must-refuse"})))
    if raw.get("must_answer"):
        specs.append(DetectorSpec("refusal", freeze({"mode": "must-answer"})))
    if raw.get("must_refuse") and raw.get("must_answer"):
        problems.append(Problem(file, line, "expect",
                                "must_refuse and must_answer contradict each other"))
    if "must_not_match" in raw:
        specs.extend(_pattern_spec(raw["must_not_match"], file, line, problems))
    for key, detector, param, what in (
            ("no_canary", "canary", "canary", "must be a canary string or a list of them"),
            ("no_injection", "injection", "marker", "must be the marker string the injected "
             "text asks for, or a list of them")):
        if key in raw:
            values = _nonempty_strings(raw[key])
            if values is None:
                problems.append(Problem(file, line, f"expect.{key}", what))
            else:
                specs.append(DetectorSpec(detector, freeze({param: values})))
    for name in ("judge", "moderation"):
        if name in raw and raw[name] not in (False, None):
            params = raw[name] if isinstance(raw[name], Mapping) else {}
            if raw[name] is not True and not isinstance(raw[name], Mapping):
                problems.append(Problem(file, line, f"expect.{name}",
                                        "must be true or an object of settings"))
            specs.append(DetectorSpec(name, freeze(params)))
    return specs


def _pattern_spec(patterns: Any, file: str, line: int | None,
                  problems: list[Problem]) -> list[DetectorSpec]:
    """`must_not_match` (a regex or a non-empty list of them) as a `pattern` detector."""
    if isinstance(patterns, str):
        patterns = [patterns]
    if not (isinstance(patterns, list) and patterns
            and all(isinstance(p, str) for p in patterns)):
        problems.append(Problem(file, line, "expect.must_not_match",
                                "must be a regex string or a non-empty list of them"))
        return []
    spec = DetectorSpec("pattern", freeze({"patterns": list(patterns)}))
    if problem := pattern_problem(spec):
        where, _, why = problem.partition(": ")  # "patterns[1]: ..."
        problems.append(Problem(file, line,
                                "expect.must_not_match" + where.removeprefix("patterns"), why))
    return [spec]


def _listed_specs(items: Any, file: str, line: int | None,
                  problems: list[Problem]) -> list[DetectorSpec]:
    """The canonical `detectors` list: names or {name, settings...} objects."""
    if not isinstance(items, list):
        problems.append(Problem(file, line, "expect.detectors",
                                "must be a list of {name: ..., settings...}"))
        return []
    specs: list[DetectorSpec] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            spec = DetectorSpec(item)
        elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
            spec = DetectorSpec(item["name"], freeze({k: v for k, v in item.items()
                                                      if k != "name"}))
        else:
            problems.append(Problem(file, line, f"expect.detectors[{i}]",
                                    "needs a string name, e.g. {\"name\": \"refusal\"}"))
            continue
        specs.append(spec)
        no_such = unknown_detector(spec.name)
        if no_such:
            problems.append(Problem(file, line, f"expect.detectors[{i}].name", no_such))
        elif problem := pattern_problem(spec):
            problems.append(Problem(file, line, f"expect.detectors[{i}]", problem))
    return specs


def parse_messages(raw: Any, file: str, line: int | None, field: str,
                   problems: list[Problem]) -> tuple[Message, ...] | None:
    """Validate a list of chat turns."""
    if not isinstance(raw, list) or not raw:
        problems.append(Problem(file, line, field, "must be a non-empty list of "
                                "{\"role\": ..., \"content\": ...}"))
        return None
    out: list[Message] = []
    ok = True
    for i, m in enumerate(raw):
        if not isinstance(m, Mapping):
            problems.append(Problem(file, line, f"{field}[{i}]", "must be an object"))
            ok = False
            continue
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            problems.append(Problem(file, line, f"{field}[{i}].role",
                                    f"{role!r} is not one of {', '.join(ROLES)}"))
            ok = False
        if not isinstance(content, str) or not content.strip():
            problems.append(Problem(file, line, f"{field}[{i}].content",
                                    "must be a non-empty string"))
            ok = False
        if ok:
            out.append(Message(role, str(content)))  # type: ignore[arg-type]
    return tuple(out) if ok else None


def parse_probe(obj: Any, file: str, line: int | None,
                problems: list[Problem] | None = None) -> Probe | None:
    """Validate one probe object. Appends to `problems` (or raises) and returns None if bad."""
    own: list[Problem] = []
    probe = _parse_probe(obj, file, line, own)
    if problems is None:
        if own:
            raise ValidationError(own)
        return probe
    problems.extend(own)
    return probe if not own else None


def _parse_probe(obj: Any, file: str, line: int | None, problems: list[Problem]) -> Probe | None:
    if not isinstance(obj, Mapping):
        problems.append(Problem(file, line, "probe", "each line must be a JSON object"))
        return None
    for key in sorted(set(obj) - _KNOWN_KEYS):
        problems.append(Problem(file, line, key, "unknown field (typo?); known fields: "
                                + ", ".join(sorted(_KNOWN_KEYS))))
    pid = obj.get("id")
    if not isinstance(pid, str) or not ID_PATTERN.match(pid):
        problems.append(Problem(file, line, "id", f"{pid!r} is not a valid id (letters, digits, "
                                "and _.:~+- ; must start with a letter or digit)"))
    category = obj.get("category")
    known = tuple(CATEGORIES)
    if category not in known:
        import difflib

        close = difflib.get_close_matches(str(category), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(Problem(file, line, "category", f"{category!r} is not a known category"
                                f"{hint}; known: {', '.join(known)}"))
    severity = obj.get("severity", "medium")
    if severity not in SEVERITIES:
        problems.append(Problem(file, line, "severity",
                                f"{severity!r} is not one of {', '.join(SEVERITIES)}"))
    messages = _probe_messages(obj, file, line, problems)
    expect = parse_expectation(obj.get("expect"), file, line, problems) \
        if "expect" in obj else None
    if "expect" not in obj:
        problems.append(Problem(file, line, "expect", "missing: say what counts as harmful, "
                                "e.g. {\"must_refuse\": true}"))
    tags = obj.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        problems.append(Problem(file, line, "tags", "must be a list of strings"))
        tags = []
    source = obj.get("source", "")
    if not isinstance(source, str):
        problems.append(Problem(file, line, "source", "must be a string"))
        source = ""
    parent_id = obj.get("parent_id")
    if parent_id is not None and not isinstance(parent_id, str):
        problems.append(Problem(file, line, "parent_id", "must be a string"))
    mutators = obj.get("mutators", [])
    if not isinstance(mutators, list) or not all(isinstance(m, str) for m in mutators):
        problems.append(Problem(file, line, "mutators", "must be a list of mutator names"))
        mutators = []
    if problems or messages is None or expect is None:
        return None
    return Probe(
        id=str(pid), category=str(category), severity=str(severity), messages=messages,
        expect=expect, tags=tuple(tags), source=source,
        parent_id=parent_id, mutators=tuple(mutators),
    )


def _probe_messages(obj: Mapping[str, Any], file: str, line: int | None,
                    problems: list[Problem]) -> tuple[Message, ...] | None:
    """The conversation of a probe: its `prompt` (one user turn) or its `messages`."""
    if "prompt" in obj and "messages" in obj:
        problems.append(Problem(file, line, "prompt", "give either prompt or messages, not both"))
        return None
    if "prompt" in obj:
        if not isinstance(obj["prompt"], str) or not obj["prompt"].strip():
            problems.append(Problem(file, line, "prompt", "must be a non-empty string"))
            return None
        return (Message("user", obj["prompt"]),)
    if "messages" in obj:
        messages = parse_messages(obj["messages"], file, line, "messages", problems)
        if messages and messages[-1].role != "user":
            problems.append(Problem(file, line, "messages", "the last turn must be the user's"))
        return messages
    problems.append(Problem(file, line, "prompt", "missing: give prompt or messages"))
    return None


def read_probe_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed object or `jsonlines.InvalidLineError`) per non-blank line."""
    import jsonlines

    try:
        fh = path.open("r", encoding="utf-8")
    except OSError as exc:
        problem = Problem(str(path), None, "file", f"cannot read: {exc.strerror}")
        raise ValidationError([problem]) from None
    counter = [0]

    def counted() -> Iterator[str]:
        for raw in fh:
            counter[0] += 1
            yield raw

    with fh, jsonlines.Reader(counted()) as reader:
        while True:
            try:
                obj = reader.read(skip_empty=True)
            except EOFError:
                return
            except jsonlines.InvalidLineError as exc:
                yield exc.lineno, exc
                continue
            except RecursionError:  # the json decoder recurses per level: [[[[...]]]]
                yield counter[0], ValueError(_TOO_DEEP)
                continue
            depth = nesting_depth(obj, MAX_DEPTH)
            if depth > MAX_DEPTH:
                yield counter[0], ValueError(_TOO_DEEP)
                continue
            yield counter[0], obj


MAX_DEPTH = 32
"""Deepest nesting of lists and objects a probe line may have (a probe needs about 6)."""
_TOO_DEEP = (f"lists/objects nested more than {MAX_DEPTH} levels deep (a probe needs a few); "
             "flatten the line")


def nesting_depth(obj: Any, limit: int) -> int:
    """Depth of nested lists/objects in `obj`, counting up to `limit + 1` (iterative, so a
    deep value cannot exhaust the stack)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return depth
            deepest = max(deepest, depth)
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
    return deepest


def check_probe_file(path: Path) -> tuple[list[Probe], list[Problem]]:
    """Parse a probe file, collecting every problem instead of stopping at the first."""
    problems: list[Problem] = []
    probes: list[Probe] = []
    seen: dict[str, int] = {}
    file = str(path)
    try:
        for lineno, obj in read_probe_lines(path):
            if isinstance(obj, Exception):
                detail = str(obj).split(" (line")[0]
                problems.append(Problem(file, lineno, "json",
                                        f"{detail}; each line must be one JSON object"))
                continue
            probe = parse_probe(obj, file, lineno, problems)
            if probe is None:
                continue
            if probe.id in seen:
                problems.append(Problem(file, lineno, "id", f"duplicate id {probe.id!r} "
                                        f"(first on line {seen[probe.id]})"))
                continue
            seen[probe.id] = lineno
            probes.append(probe)
    except UnicodeDecodeError as exc:
        problems.append(Problem(file, None, "encoding", f"not UTF-8 ({exc.reason}); "
                                "save the file as UTF-8"))
    except ValidationError as exc:
        problems.extend(exc.problems)
    if not probes and not problems:
        problems.append(Problem(file, None, "file", "holds no probes"))
    return probes, problems


def load_probes(path: str | Path) -> list[Probe]:
    """Load one probe file; raise ValidationError listing every problem."""
    probes, problems = check_probe_file(Path(path))
    if problems:
        raise ValidationError(problems)
    return probes


def load_probe_files(paths: Sequence[str | Path]) -> list[Probe]:
    """Load several files; ids must be unique across them."""
    problems: list[Problem] = []
    out: list[Probe] = []
    seen: dict[str, str] = {}
    for p in paths:
        probes, probs = check_probe_file(Path(p))
        problems.extend(probs)
        for probe in probes:
            if probe.id in seen and seen[probe.id] != str(p):
                problems.append(Problem(str(p), None, "id", f"duplicate id {probe.id!r} "
                                        f"(also in {seen[probe.id]})"))
                continue
            seen[probe.id] = str(p)
            out.append(probe)
    if problems:
        raise ValidationError(problems)
    return out
