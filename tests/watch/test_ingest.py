"""`harness watch ingest`: production telemetry formats, located errors, and the alarms in
status, its JSON and the CLI (the documented example files)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import ValidationError
from harness.watch import init_watch, watch_status
from harness.watch.ingest import histogram, parse_signals
from harness.watch.model import WatchDefinition
from harness.watch.production import evaluate_signals
from harness.watch.runner import ingest_signals

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
LIBRARY = ROOT / "probes" / "library"
START = date(2025, 1, 1)


def _definition(**kw: object) -> WatchDefinition:
    return WatchDefinition(name="p", suite="s.yaml", target="sim", max_rate=0.05, days=30,
                           start=START, **kw)  # type: ignore[arg-type]


def test_the_example_files_parse_in_all_three_formats() -> None:
    rows = parse_signals((EXAMPLES / "production-signals.jsonl").read_text(), "x.jsonl")
    assert len(rows) == 30 and rows[0].day == START and rows[0].traffic == 9450
    assert rows[0].score_histogram is not None and sum(rows[0].score_histogram) == 2000
    csv_rows = parse_signals((EXAMPLES / "production-signals.csv").read_text(), "x.csv")
    assert [(r.day, r.traffic, r.reports, r.score_histogram) for r in csv_rows] == [
        (r.day, r.traffic, r.reports, r.score_histogram) for r in rows[:3]]
    otel = parse_signals((EXAMPLES / "genai-spans.otlp.json").read_text(), "spans.json")
    assert [(r.day, r.traffic, r.reports, r.model_version) for r in otel] == [
        (START, 3, 1, "chat-v7"), (START + timedelta(days=1), 3, 2, "chat-v8")]
    assert otel[0].score_histogram == histogram([0.05, 0.12, 0.3])


def test_otel_collector_file_exporter_lines_and_flat_spans(tmp_path: Path) -> None:
    doc = json.loads((EXAMPLES / "genai-spans.otlp.json").read_text())
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    # one ExportTraceServiceRequest a line, as the collector's file exporter writes
    lines = [json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [s]}]}]}) for s in spans]
    rows = parse_signals("\n".join(lines) + "\n", "otel.jsonl")
    assert [r.traffic for r in rows] == [3, 3]
    # the SDK's console exporter: plain attribute maps and ISO times
    flat = [{"name": "chat m", "context": {"span_id": "0x1"}, "start_time":
             "2026-03-02T23:59:00Z", "attributes": {"gen_ai.operation.name": "chat",
                                                   "gen_ai.response.model": "m-1"}}]
    assert [(r.day, r.traffic, r.model_version) for r in parse_signals(
        json.dumps(flat), "c.json")] == [(date(2026, 3, 2), 1, "m-1")]


def test_every_bad_row_is_reported_with_file_and_line() -> None:
    text = "\n".join([
        json.dumps({"date": "2026-01-01", "traffic": 100, "reports": 2}),
        json.dumps({"date": "2026-13-01", "traffic": 100, "reports": 2}),
        json.dumps({"date": "2026-01-03", "traffic": 0, "reports": 2}),
        json.dumps({"date": "2026-01-04", "traffic": 100, "reports": 1.5}),
        json.dumps({"date": "2026-01-05", "traffic": 100, "reports": 1,
                    "classifier_scores": [0.2, 1.7]}),
        "{not json",
        json.dumps({"date": "2026-01-01", "traffic": 100, "reports": 3}),
    ]) + "\n"
    with pytest.raises(ValidationError) as info:
        parse_signals(text, "telemetry.jsonl")
    msg = str(info.value)
    for where in ("telemetry.jsonl:2: date", "telemetry.jsonl:3: traffic",
                  "telemetry.jsonl:4: reports", "telemetry.jsonl:5: classifier_scores",
                  "telemetry.jsonl:6: json", "telemetry.jsonl:7: date"):
        assert where in msg
    assert "appears twice (also line 1)" in msg
    with pytest.raises(ValidationError, match=r"t\.csv:1: header: missing column\(s\) traffic"):
        parse_signals("date,reports\n2026-01-01,3\n", "t.csv")
    with pytest.raises(ValidationError, match=r"t\.csv:3: reports: 500 reports is more"):
        parse_signals("date,traffic,reports\n2026-01-01,100,3\n2026-01-02,100,500\n", "t.csv")


def test_example_alarms_a_spike_a_shift_and_a_version_change_after_day_24() -> None:
    rows = parse_signals((EXAMPLES / "production-signals.jsonl").read_text(), "x.jsonl")
    section, alarms = evaluate_signals(_definition(), rows)
    assert section["baseline"]["days"] == 14 and section["baseline"]["tested"]
    assert {a.signal for a in alarms} == {"user-reports", "classifier-shift", "model-version"}
    assert all(a.as_of >= START + timedelta(days=24) for a in alarms)
    # the first 24 days alone (the fix holding in production) raise nothing
    section, alarms = evaluate_signals(_definition(), rows[:24])
    assert alarms == [] and len(section["days"]) == 24
    # a short baseline says so instead of testing
    section, alarms = evaluate_signals(_definition(), rows[:10])
    assert not section["baseline"]["tested"] and "10 of 14 days" in section["baseline"]["note"]


def test_a_baseline_with_too_few_reports_is_not_tested() -> None:
    rows = parse_signals("".join(json.dumps({"date": (START + timedelta(days=i)).isoformat(),
                                             "traffic": 1000, "reports": 1 if i < 14 else 9})
                                 + "\n" for i in range(20)), "few.jsonl")
    section, alarms = evaluate_signals(_definition(), rows)
    assert alarms == [] and "too few" in section["baseline"]["note"]


def _watch(tmp_path: Path) -> Path:
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"name: ingest\nprobes:\n  - {LIBRARY / 'dangerous-instructions.jsonl'}\n"
                     "temperatures: [0.7]\nsamples: 1\nseed: 3\nmax_rate: {overall: 0.05}\n",
                     encoding="utf-8")
    res = tmp_path / "results"
    init_watch("p", suite=suite, target="sim:patched", max_rate=0.05, days=30, start=START,
               results=res)
    return res


def test_ingest_is_idempotent_refuses_rewrites_and_feeds_status(tmp_path: Path) -> None:
    res = _watch(tmp_path)
    first = tmp_path / "first.jsonl"
    lines = (EXAMPLES / "production-signals.jsonl").read_text().splitlines(keepends=True)
    first.write_text("".join(lines[:20]))
    assert len(ingest_signals("p", first, results=res).added) == 20
    again = ingest_signals("p", EXAMPLES / "production-signals.jsonl", results=res)
    assert (len(again.added), len(again.skipped)) == (10, 20)
    changed = tmp_path / "changed.jsonl"
    row = json.loads(lines[3])
    row["reports"] += 1
    changed.write_text(json.dumps(row) + "\n")
    with pytest.raises(ValidationError, match=r"changed\.jsonl:1: date: 2025-01-04 was "
                                              "already ingested"):
        ingest_signals("p", changed, results=res)
    st = watch_status("p", as_of=START + timedelta(days=29), results=res)
    assert st.status == "drift" and st.exit_code == 1
    assert {a.signal for a in st.alarms if a.kind == "production"} == {
        "user-reports", "classifier-shift", "model-version"}
    doc = st.to_dict()
    assert doc["production"]["baseline"]["tested"] and len(doc["production"]["days"]) == 30
    early = watch_status("p", as_of=START + timedelta(days=20), results=res)
    assert early.production is not None and len(early.production["days"]) == 21
    assert not [a for a in early.alarms if a.kind == "production"]


def test_cli_ingest_reports_bad_rows_and_alarms(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    res = _watch(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("date,traffic,reports\n2026-01-01,100,x\n", encoding="utf-8")
    assert main(["watch", "ingest", "p", str(bad), "--results", str(res)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: reports" in err and "Traceback" not in err
    assert main(["watch", "ingest", "p", str(tmp_path / "nope.jsonl"), "--results",
                 str(res)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["watch", "ingest", "p", str(EXAMPLES / "production-signals.jsonl"),
                 "--results", str(res)]) == 0
    out = capsys.readouterr().out
    assert "ingested 30 day(s) (2025-01-01 .. 2025-01-30)" in out
    assert "ALARM production [user-reports]" in out
    assert main(["watch", "status", "p", "--as-of", "2025-01-30", "--results", str(res)]) == 1
    out = capsys.readouterr().out
    assert "production: 30 days ingested, baseline 14 of 14 days, 16 days tested" in out
