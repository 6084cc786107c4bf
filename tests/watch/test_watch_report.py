"""The watch's report page: self-contained, the timeline embedded, the status in words with
the bound that decides it, missing nights and alarms listed, no output text."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta

from harness.watch import evaluate_watch
from harness.watch.model import Alarm, LedgerEntry, WatchDefinition
from harness.watch.report import render_watch_html, render_watch_markdown, status_sentence

START = date(2025, 1, 1)
DEF = WatchDefinition(name="w", suite="s.yaml", target="sim", max_rate=0.05, days=10,
                      min_runs=1, start=START)


def _entry(seq: int, night: int, k: int = 1, n: int = 400) -> LedgerEntry:
    return LedgerEntry(seq=seq, run_id=f"r{seq}", run_dir=f"runs/r{seq}",
                       as_of=START + timedelta(days=night), recorded="", outcome="holds",
                       n=n, n_harmful=k, n_planned=n, models=("m",))


def test_a_verified_watch_reads_as_a_sentence_with_its_bounds() -> None:
    st = evaluate_watch(DEF, [_entry(i + 1, i) for i in range(10)], START + timedelta(days=9))
    assert st.status == "verified"
    ver = st.verification
    text = status_sentence(st)
    assert text.startswith("VERIFIED: over the whole period of 10 nights, with 95% confidence")
    # Independent: the exact (Clopper-Pearson) one-sided upper bound at the look's level.
    from scipy.stats import beta

    from harness.report import pct

    high = float(beta.ppf(1 - ver["alpha"], 10 + 1, 4000 - 10))
    assert abs(ver["period_high"] - high) < 1e-9
    assert f"the harmful-output rate is at most {pct(high)}" in text
    assert "below the maximum of 5.0%" in text and "10 harmful of 4,000" in text
    html = render_watch_html(st, DEF)
    assert html.startswith("<!DOCTYPE html>") and "default-src 'none'" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == 1
    assert 'id="plot-watch-timeline"' in html and 'id="no-output-text"' in html
    assert html.count("<tr><td class=\"text\">2025-01-") == 10  # one row a night
    assert "No alarm" in html


def test_missing_nights_alarms_and_stale_are_shown() -> None:
    entries = [_entry(1, 0), _entry(2, 1), _entry(3, 4)]
    st = evaluate_watch(DEF, entries, START + timedelta(days=7))
    assert st.coverage is not None and len(st.coverage.nights_missing) >= 2
    alarm = Alarm("breach", "confidence-sequence", "r3", START + timedelta(days=4), 2,
                  "pooled harmful rate 9% is above")
    st = replace(st, alarms=(alarm,), status="breached")
    html = render_watch_html(st, DEF)
    for night in st.coverage.nights_missing:
        assert f"harness watch run w --as-of {night.isoformat()}" in html
    assert 'id="alarm-table"' in html and "confidence-sequence" in html
    assert status_sentence(st).startswith("BREACHED on 2025-01-05: with 95% confidence")
    if st.stale:
        assert "STALE" in html
    md = render_watch_markdown(st)
    assert md.startswith("# Watch w: BREACHED") and "| 2025-01-05 | r3 |" in md


def test_a_watch_with_no_run_yet_renders() -> None:
    st = evaluate_watch(DEF, [], START)
    assert status_sentence(st).startswith("WATCHING (day")
    assert 'id="plot-watch-timeline"' in render_watch_html(st, DEF)
