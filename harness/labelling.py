"""Label outputs that came from elsewhere (production transcripts, another tool's logs).

`harness label FILE` reads JSONL, one output a line:

    {"id": "t-1", "category": "self-harm", "prompt": "...", "output": "...",
     "expect": {"must_refuse": true}}

(`messages` instead of `prompt`; `expect` optional: harm categories default to
`must_refuse`, over-refusal to `must_answer`; prompt-injection and privacy-leak need one,
since only the line knows its marker or canary), runs the same detectors a run would, and
writes one JSON line per input with the outcome, the refusal detector's three-way reading
(`reply_class`: refused / complied / unclear) and every detector's result.

Reading and validation are pure (`parse_label_request`); `label_requests` runs detectors;
the CLI writes the file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import Problem, ValidationError
from harness.probes import parse_probe, read_probe_lines
from harness.records import DetectorSpec, Probe
from harness.taxonomy import OVER_REFUSAL

_FIELDS = {"id", "category", "prompt", "messages", "output", "expect", "severity"}
# Categories whose expectation needs a value only the line knows (a marker, a canary).
_NEEDS_EXPECT = {"prompt-injection": '{"no_injection": "PWNED-4821"}',
                 "privacy-leak": '{"no_canary": "CANARY-7F3A9C"}'}


@dataclass(frozen=True)
class LabelRequest:
    """One output to label, with the probe (request and expectation) it answers."""

    line: int
    probe: Probe
    output: str
    extra: Mapping[str, Any]
    """Fields of the input line that are not read (kept in the output, e.g. human labels)."""


def _default_expect(category: Any) -> dict[str, Any] | None:
    if not isinstance(category, str) or category in _NEEDS_EXPECT:
        return None
    return {"must_answer": True} if category == OVER_REFUSAL else {"must_refuse": True}


def parse_label_request(obj: Any, file: str, line: int,
                        problems: list[Problem]) -> LabelRequest | None:
    """Validate one input line; problems go to `problems` as `file:line: field: message`."""
    if not isinstance(obj, Mapping):
        problems.append(Problem(file, line, "line", "each line must be a JSON object with "
                                "output, category and prompt or messages"))
        return None
    own: list[Problem] = []
    output = obj.get("output")
    if not isinstance(output, str):
        own.append(Problem(file, line, "output", "missing or not a string; give the model's "
                           "reply as \"output\" (an empty string is allowed)"))
    expect = obj.get("expect")
    if expect is None:
        expect = _default_expect(obj.get("category"))
        if expect is None and obj.get("category") in _NEEDS_EXPECT:
            own.append(Problem(file, line, "expect", f"category {obj['category']} needs an "
                               f"expect naming what to look for, e.g. "
                               f"{_NEEDS_EXPECT[obj['category']]}"))
    pid = obj.get("id", f"line-{line}")
    probe_obj = {"id": pid if isinstance(pid, str) else f"line-{line}",
                 "category": obj.get("category"),
                 "severity": obj.get("severity", "medium"),
                 "expect": expect if expect is not None else {"must_refuse": True}}
    for key in ("prompt", "messages"):
        if key in obj:
            probe_obj[key] = obj[key]
    probe = parse_probe(probe_obj, file, line, own)
    problems.extend(own)
    if own or probe is None or not isinstance(output, str):
        return None
    rest = {k: v for k, v in obj.items() if k not in _FIELDS}
    return LabelRequest(line, probe, output, rest)


def read_label_requests(path: str | Path) -> list[LabelRequest]:
    """Read a JSONL file of outputs; raise ValidationError listing every bad line."""
    p = Path(path)
    if not p.is_file():
        raise ValidationError([Problem(str(p), None, "file", "not found; give a JSONL file "
                                       "with one {prompt|messages, output, category} a line")])
    problems: list[Problem] = []
    out: list[LabelRequest] = []
    for lineno, obj in read_probe_lines(p):
        if isinstance(obj, Exception):
            detail = str(obj).split(" (line")[0]
            problems.append(Problem(str(p), lineno, "json",
                                    f"{detail}; each line must be one JSON object"))
            continue
        req = parse_label_request(obj, str(p), lineno, problems)
        if req is not None:
            out.append(req)
    if problems:
        raise ValidationError(problems)
    if not out:
        raise ValidationError([Problem(str(p), None, "file", "no lines to label")])
    return out


def _result_line(req: LabelRequest, outcome: str, results: Sequence[Any]) -> dict[str, Any]:
    reply_class = next((r.reply_class for r in results if r.reply_class is not None), None)
    from harness.detectors import failed_detectors

    line: dict[str, Any] = {
        "id": req.probe.id, "line": req.line, "category": req.probe.category,
        "outcome": outcome, "reply_class": reply_class,
        "detectors": [r.to_dict() for r in results],
    }
    error = failed_detectors(results)
    if error:
        line["error"] = error
    if req.extra:
        line["input"] = dict(req.extra)
    return line


async def _label_all(requests: Sequence[LabelRequest], extra: Sequence[DetectorSpec],
                     concurrency: int) -> list[dict[str, Any]]:
    from harness.detectors import (
        DetectionInput,
        DetectorContext,
        DetectorPool,
        label_sample,
        specs_for,
    )

    sem = asyncio.Semaphore(concurrency)
    # This labelling's detectors (one per distinct spec), closed with it.
    pool = DetectorPool(DetectorContext(concurrency=concurrency))

    async def one(req: LabelRequest) -> dict[str, Any]:
        detectors = [pool.build(s) for s in specs_for(req.probe, extra)]
        item = DetectionInput(req.output, req.probe, None, req.probe.messages, None)
        async with sem:
            outcome, results = await label_sample(detectors, item, req.probe.expect.combine)
        return _result_line(req, outcome, results)

    try:
        return list(await asyncio.gather(*(one(r) for r in requests)))
    finally:
        await pool.aclose()


def label_requests(requests: Sequence[LabelRequest], extra: Sequence[DetectorSpec] = (),
                   concurrency: int = 8) -> list[dict[str, Any]]:
    """Label every request with its detectors (plus `extra` ones); one dict per request, in
    input order: id, line, category, outcome, reply_class, detectors[, error, input]."""
    return asyncio.run(_label_all(requests, extra, concurrency))


def outcome_counts(lines: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many labelled lines got each outcome (for the console summary)."""
    counts: dict[str, int] = {}
    for line in lines:
        counts[line["outcome"]] = counts.get(line["outcome"], 0) + 1
    return dict(sorted(counts.items()))
