"""Reading samples.jsonl back: every line checked to be a sample record, a damaged line
named by file and line, a torn tail skipped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonlines

from harness.errors import StoreError
from harness.records import OUTCOMES, SampleRecord
from harness.store._files import SAMPLES

__all__ = ["iter_numbered_samples", "iter_records", "iter_sample_dicts", "record_shape_problem"]

_RECORD_TYPES: tuple[tuple[str, type | tuple[type, ...], str], ...] = (
    ("run_id", str, "a string"), ("probe_id", str, "a string"), ("category", str, "a string"),
    ("context", str, "a string"), ("temperature", (int, float), "a number"),
    ("sample_index", int, "an integer"), ("seed", int, "an integer"),
    ("outcome", str, "a string"), ("time", str, "a string"),
)


def record_shape_problem(d: dict[str, Any]) -> str | None:
    """What makes `d` not a sample record that every reader can use, or None (pure).

    Checks the fields `SampleRecord.from_dict` and the tally need, with their types, so a
    hand-edited or foreign line fails here with its line number, not deep inside a reader.
    """
    for name, kind, what in _RECORD_TYPES:
        if name not in d:
            return f"not a sample record: the field {name!r} is missing"
        value = d[name]
        if isinstance(value, bool) or not isinstance(value, kind):
            return f"not a sample record: {name} is {value!r}, not {what}"
    if d["outcome"] not in OUTCOMES:
        return f"not a sample record: outcome {d['outcome']!r} is not one of {', '.join(OUTCOMES)}"
    messages = d.get("messages")
    if messages is not None and not (isinstance(messages, list) and all(
            isinstance(m, dict) and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str) for m in messages)):
        return "not a sample record: messages is not a list of {role, content} objects"
    detectors = d.get("detectors")
    if detectors is not None and not (isinstance(detectors, list) and all(
            isinstance(r, dict) and isinstance(r.get("name"), str) and "harmful" in r
            and isinstance(r.get("score"), (int, float)) for r in detectors)):
        return "not a sample record: detectors is not a list of {name, harmful, score} objects"
    return None


def _damaged(path: Path, lineno: int, what: str) -> StoreError:
    return StoreError(f"{path}:{lineno}: {what}; the file is damaged at that line: delete the "
                      "line (harness run --resume samples it again) or restore the file")


def iter_numbered_samples(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Stream (line number, record) from samples.jsonl.

    A torn last line (no trailing newline: a write cut short by a crash or a full disk,
    possibly in the middle of a character) is skipped, as `repair_torn_tail` would cut
    it. Any other line that is not UTF-8, not JSON or not a sample record
    (`record_shape_problem`) raises StoreError naming the file and line and how to fix it.
    """
    if not path.exists():
        return
    state = {"lineno": 0, "terminated": True}
    with path.open("rb") as fh:
        def lines() -> Iterator[bytes]:
            for raw in fh:
                state["lineno"] += 1
                state["terminated"] = raw.endswith(b"\n")
                yield raw

        reader = jsonlines.Reader(lines())
        try:
            for d in reader.iter(type=dict, skip_empty=True):
                problem = record_shape_problem(d)
                if problem is not None:
                    if not state["terminated"]:
                        return  # a torn tail that happens to parse
                    raise _damaged(path, state["lineno"], problem)
                yield state["lineno"], d
        except jsonlines.InvalidLineError as exc:
            if not state["terminated"]:
                return  # the torn tail of a crash
            reason = str(exc).removesuffix(f" (line {exc.lineno})")
            if "utf-8" in reason:
                reason = reason.replace("line is not valid utf-8", "not UTF-8 text")
            elif "requested type" in reason:
                reason = "not a sample record (a JSON value that is not an object)"
            else:
                reason = reason.replace("line contains invalid json", "not JSON")
            raise _damaged(path, state["lineno"], reason) from None
        except RecursionError:
            raise _damaged(path, state["lineno"],
                           "not a sample record (JSON nested too deeply to parse)") from None


def iter_sample_dicts(path: Path) -> Iterator[dict[str, Any]]:
    """Stream the records of samples.jsonl (a torn last line is skipped; a damaged line is
    a StoreError naming file and line, see `iter_numbered_samples`)."""
    for _, d in iter_numbered_samples(path):
        yield d


def iter_records(run_dir: Path) -> Iterator[SampleRecord]:
    """Stream SampleRecords of a run."""
    path = run_dir / SAMPLES
    for lineno, d in iter_numbered_samples(path):
        try:
            yield SampleRecord.from_dict(d)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _damaged(path, lineno, f"not a sample record ({type(exc).__name__}: "
                           f"{exc})") from None
