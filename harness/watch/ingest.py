"""Production signals for a watch: parse daily telemetry files into `DailySignal` rows.

`harness watch ingest NAME FILE` reads one of (see docs/watch.md, "Production signals", and
docs/examples/production-signals.jsonl):

* JSONL, one day a line: ``{"date": "2026-01-05", "traffic": 12000, "reports": 3,
  "model_version": "v7", "classifier_scores": [0.1, 0.8, ...]}`` (``reports`` may be
  called ``complaints``; instead of raw scores, ``classifier_histogram`` gives counts in
  10 equal bins over [0, 1]);
* CSV with a header: ``date,traffic,reports[,model_version][,classifier_scores]
  [,classifier_histogram]`` (score lists separated by spaces);
* OpenTelemetry GenAI spans as JSON: an OTLP export (``{"resourceSpans": [...]}``, one
  document or one per line as the collector's file exporter writes) or a list of spans.
  Every span with a ``gen_ai.*`` attribute is one request on the UTC day of its start
  time; the model version is ``gen_ai.response.model`` (else ``gen_ai.request.model``);
  ``gen_ai.evaluation.result`` events (or attributes on the span) named ``user_report``
  count as reports and those named ``content_classifier`` give classifier scores
  (``gen_ai.evaluation.score.value``).

Pure: text in, rows or a `ValidationError` listing every bad row as ``file:line: field:
message`` out. Raw scores are reduced to the 10-bin histogram; no text is kept.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from harness.errors import Problem, ValidationError

SCORE_BINS = 10
REPORT_EVALUATION = "user_report"
CLASSIFIER_EVALUATION = "content_classifier"


@dataclass(frozen=True)
class DailySignal:
    """One day of production telemetry."""

    day: date
    traffic: int
    reports: int
    model_version: str | None = None
    score_histogram: tuple[int, ...] | None = None
    source: str = ""
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The line of `signals.jsonl`."""
        return {"date": self.day.isoformat(), "traffic": self.traffic, "reports": self.reports,
                "model_version": self.model_version,
                "classifier_histogram": list(self.score_histogram)
                if self.score_histogram is not None else None,
                "source": self.source}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DailySignal:
        """Parse a `signals.jsonl` line (raises KeyError/ValueError/TypeError)."""
        hist = d.get("classifier_histogram")
        return cls(day=date.fromisoformat(d["date"]), traffic=int(d["traffic"]),
                   reports=int(d["reports"]), model_version=d.get("model_version"),
                   score_histogram=tuple(int(x) for x in hist) if hist is not None else None,
                   source=str(d.get("source", "")))


def histogram(scores: Iterable[float]) -> tuple[int, ...]:
    """Counts of scores in 10 equal bins over [0, 1] (1.0 falls in the last bin)."""
    out = [0] * SCORE_BINS
    for s in scores:
        out[min(int(s * SCORE_BINS), SCORE_BINS - 1)] += 1
    return tuple(out)


@dataclass
class _Day:
    traffic: int = 0
    reports: int = 0
    versions: dict[str, int] = field(default_factory=dict)
    scores: list[float] = field(default_factory=list)


class _Problems:
    def __init__(self, file: str):
        self.file = file
        self.items: list[Problem] = []

    def add(self, line: int | None, fld: str, message: str) -> None:
        self.items.append(Problem(self.file, line, fld, message))


def _int_field(raw: Any, fld: str, minimum: int, line: int, probs: _Problems) -> int | None:
    if isinstance(raw, bool) or raw is None or raw == "":
        probs.add(line, fld, f"missing; give a whole number >= {minimum}")
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        probs.add(line, fld, f"{raw!r} is not a number")
        return None
    if value != int(value) or value < minimum:
        probs.add(line, fld, f"{raw!r} must be a whole number >= {minimum}")
        return None
    return int(value)


def _scores(raw: Any, line: int, probs: _Problems, fld: str) -> list[float] | None:
    if isinstance(raw, str):
        raw = raw.split()
    if not isinstance(raw, list):
        probs.add(line, fld, "must be a list of numbers in [0, 1]")
        return None
    try:
        vals = [float(x) for x in raw]
    except (TypeError, ValueError):
        probs.add(line, fld, "must be a list of numbers in [0, 1]")
        return None
    bad = [v for v in vals if not 0.0 <= v <= 1.0]
    if bad:
        probs.add(line, fld, f"{bad[0]!r} is outside [0, 1] (scores are probabilities)")
        return None
    return vals


def _row(d: Mapping[str, Any], line: int, probs: _Problems, source: str) -> DailySignal | None:
    n0 = len(probs.items)
    day = None
    raw_day = d.get("date")
    with contextlib.suppress(ValueError):
        day = date.fromisoformat(str(raw_day)[:10]) if raw_day else None
    if day is None:
        probs.add(line, "date", f"{raw_day!r} is not a date; use YYYY-MM-DD")
    traffic = _int_field(d.get("traffic"), "traffic", 1, line, probs)
    reports_raw = d.get("reports", d.get("complaints"))
    reports = _int_field(reports_raw, "reports", 0, line, probs)
    if traffic is not None and reports is not None and reports > traffic:
        probs.add(line, "reports", f"{reports} reports is more than traffic {traffic}")
    hist: tuple[int, ...] | None = None
    if d.get("classifier_scores") not in (None, ""):
        vals = _scores(d["classifier_scores"], line, probs, "classifier_scores")
        hist = histogram(vals) if vals is not None else None
    elif d.get("classifier_histogram") not in (None, ""):
        raw = d["classifier_histogram"]
        parts = raw.split() if isinstance(raw, str) else raw
        if not isinstance(parts, list) or len(parts) != SCORE_BINS:
            probs.add(line, "classifier_histogram",
                      f"must be {SCORE_BINS} counts (bins of width 0.1 over [0, 1])")
        else:
            counts = [_int_field(x, "classifier_histogram", 0, line, probs) for x in parts]
            if all(c is not None for c in counts):
                hist = tuple(int(c) for c in counts if c is not None)
    version = d.get("model_version")
    if len(probs.items) > n0 or day is None or traffic is None or reports is None:
        return None
    return DailySignal(day, traffic, reports, str(version) if version not in (None, "") else None,
                       hist, source, line)


def _attrs(raw: Any) -> dict[str, Any]:
    """OTLP attributes (list of {key, value: {stringValue|intValue|...}}) or a plain dict."""
    if isinstance(raw, dict):
        return dict(raw)
    out: dict[str, Any] = {}
    for a in raw or []:
        if not isinstance(a, dict) or "key" not in a:
            continue
        v = a.get("value") or {}
        for k in ("stringValue", "intValue", "doubleValue", "boolValue"):
            if k in v:
                out[str(a["key"])] = v[k]
                break
    return out


def _span_day(span: Mapping[str, Any]) -> date | None:
    ns = span.get("startTimeUnixNano")
    if ns is not None:
        return datetime.fromtimestamp(int(ns) / 1e9, UTC).date()
    iso = span.get("start_time") or span.get("startTime")
    if iso:
        return datetime.fromisoformat(str(iso).replace("Z", "+00:00")).astimezone(UTC).date()
    return None


def _iter_spans(doc: Any) -> Iterable[Mapping[str, Any]]:
    if isinstance(doc, list):
        for x in doc:
            yield from _iter_spans(x)
    elif isinstance(doc, dict):
        if "resourceSpans" in doc:
            for rs in doc.get("resourceSpans") or []:
                for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []:
                    yield from ss.get("spans") or []
        elif "attributes" in doc and ("name" in doc or "spanId" in doc or "context" in doc):
            yield doc


def _evaluations(span: Mapping[str, Any], attrs: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    if "gen_ai.evaluation.name" in attrs:
        out.append(dict(attrs))
    for ev in span.get("events") or []:
        if isinstance(ev, dict) and ev.get("name") == "gen_ai.evaluation.result":
            out.append(_attrs(ev.get("attributes")))
    return out


def _otel_rows(docs: list[tuple[int, Any]], probs: _Problems, source: str
               ) -> list[DailySignal]:
    days: dict[date, _Day] = {}
    for line, doc in docs:
        for span in _iter_spans(doc):
            attrs = _attrs(span.get("attributes"))
            evals = _evaluations(span, attrs)
            is_request = any(k.startswith("gen_ai.") and not k.startswith("gen_ai.evaluation")
                             for k in attrs)
            if not is_request and not evals:
                continue
            try:
                day = _span_day(span)
            except (ValueError, TypeError, OverflowError):
                day = None
            if day is None:
                probs.add(line, "startTimeUnixNano",
                          f"span {span.get('spanId') or span.get('name') or '?'} has no "
                          "readable start time")
                continue
            acc = days.setdefault(day, _Day())
            if is_request:
                acc.traffic += 1
                model = attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model")
                if model:
                    acc.versions[str(model)] = acc.versions.get(str(model), 0) + 1
            for ev in evals:
                name = ev.get("gen_ai.evaluation.name")
                if name == REPORT_EVALUATION:
                    acc.reports += 1
                elif name == CLASSIFIER_EVALUATION:
                    score = ev.get("gen_ai.evaluation.score.value")
                    try:
                        value = float(score)  # type: ignore[arg-type]
                    except (TypeError, ValueError):
                        probs.add(line, "gen_ai.evaluation.score.value",
                                  f"{score!r} is not a number")
                        continue
                    if not 0.0 <= value <= 1.0:
                        probs.add(line, "gen_ai.evaluation.score.value",
                                  f"{value!r} is outside [0, 1]")
                        continue
                    acc.scores.append(value)
    rows = []
    for day in sorted(days):
        acc = days[day]
        if acc.traffic == 0:
            probs.add(None, "spans", f"{day.isoformat()}: evaluations but no gen_ai request "
                      "spans (traffic 0)")
            continue
        version = max(acc.versions, key=lambda v: acc.versions[v]) if acc.versions else None
        rows.append(DailySignal(day, acc.traffic, acc.reports, version,
                                histogram(acc.scores) if acc.scores else None, source))
    if not rows and not probs.items:
        probs.add(None, "spans", "no span with gen_ai.* attributes found; export GenAI spans "
                  "(OpenTelemetry semantic conventions for generative AI)")
    return rows


def parse_signals(text: str, file: str) -> list[DailySignal]:
    """Daily rows from a JSONL, CSV or OpenTelemetry JSON file's text (sorted by date).

    Raises ValidationError with every problem as ``file:line: field: message``.
    """
    probs = _Problems(file)
    rows: list[DailySignal] = []
    stripped = text.lstrip()
    if not stripped:
        raise ValidationError([Problem(file, None, "file", "empty; nothing to ingest")])
    if file.lower().endswith(".csv") or not stripped.startswith(("{", "[")):
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in ("date", "traffic") if c not in header]
        if missing or not ({"reports", "complaints"} & set(header)):
            need = ", ".join(missing + ([] if {"reports", "complaints"} & set(header)
                                        else ["reports"]))
            raise ValidationError([Problem(file, 1, "header", f"missing column(s) {need}; "
                                           "expected date,traffic,reports[,model_version]"
                                           "[,classifier_scores][,classifier_histogram]")])
        for i, rec in enumerate(reader, start=2):
            clean = {(k or "").strip(): (v.strip() if isinstance(v, str) else v)
                     for k, v in rec.items()}
            row = _row(clean, i, probs, file)
            if row is not None:
                rows.append(row)
    else:
        docs: list[tuple[int, Any]] = []
        try:
            docs = [(1, json.loads(text))]
        except ValueError:
            for i, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    docs.append((i, json.loads(line)))
                except json.JSONDecodeError as exc:
                    probs.add(i, "json", f"not valid JSON ({exc.msg})")
        first = docs[0][1] if docs else None
        if isinstance(first, dict) and "date" in first:
            for i, doc in docs:
                if not isinstance(doc, dict):
                    probs.add(i, "row", "must be a JSON object with date, traffic, reports")
                    continue
                row = _row(doc, i, probs, file)
                if row is not None:
                    rows.append(row)
        elif docs:
            rows = _otel_rows(docs, probs, file)
    seen: dict[date, int | None] = {}
    for r in rows:
        if r.day in seen:
            probs.add(r.line, "date", f"{r.day.isoformat()} appears twice (also line "
                      f"{seen[r.day]}); one row a day")
        seen[r.day] = r.line
    if probs.items:
        raise ValidationError(probs.items)
    return sorted(rows, key=lambda r: r.day)
