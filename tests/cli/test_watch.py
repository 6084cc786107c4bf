"""`harness watch ...` from the command line: output, JSON and exit codes."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import TargetUnreachableError

LIBRARY = Path(__file__).resolve().parents[2] / "probes" / "library"
START = date(2026, 1, 1)


def _suite(tmp_path: Path, samples: int = 2) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(
        "name: watch-cli\n"
        f"probes:\n  - {LIBRARY / 'dangerous-instructions.jsonl'}\n"
        f"temperatures: [0.7]\nsamples: {samples}\nseed: 5\n"
        "max_rate: {overall: 0.05}\nconfidence_level: 0.95\n", encoding="utf-8")
    return path


def _init(tmp_path: Path, name: str, profile: str, days: int = 30, samples: int = 2) -> Path:
    res = tmp_path / "results"
    code = main(["watch", "init", name, "--suite", str(_suite(tmp_path, samples)),
                 "--target", f"sim:{profile}", "--max-rate", "0.05", "--days", str(days),
                 "--start", START.isoformat(), "--results", str(res)])
    assert code == 0
    return res


def _night(d: int) -> str:
    return (START + timedelta(days=d)).isoformat()


def test_watch_commands_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _init(tmp_path, "pw", "patched", days=10)
    for d in range(3):
        assert main(["watch", "run", "pw", "--as-of", _night(d), "--quiet", "--no-plot",
                     "--results", str(res)]) == 0
    capsys.readouterr()
    assert main(["watch", "status", "pw", "--json", "--as-of", _night(2),
                 "--results", str(res)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] in ("watching", "holding")
    assert (doc["days_elapsed"], doc["days_left"], doc["runs"]) == (3, 7, 3)
    pooled = doc["pooled"]
    assert pooled["n"] == 150 and pooled["cs_low"] <= pooled["rate"] <= pooled["cs_high"]
    assert doc["alarms"] == [] and len(doc["runs_detail"]) == 3
    # status reads only: --no-plot runs wrote no timeline, and status did not either
    assert not (res / "watches" / "pw" / "timeline.png").exists()
    assert main(["watch", "status", "pw", "--as-of", _night(2), "--plot",
                 str(tmp_path / "t.png"), "--results", str(res)]) == 0
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert main(["watch", "list", "--results", str(res)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["NAME", "STATUS", "STALE", "DAY", "LAST", "RUN",
                                           "NEXT", "DUE", "MISSING"]
    assert out.splitlines()[1].split()[0] == "pw" and _night(2) in out


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _init(tmp_path, "u", "patched", days=5)
    assert main(["watch", "status", "missing", "--results", str(res)]) == 2
    assert "no watch named 'missing'" in capsys.readouterr().err
    assert main(["watch", "run", "u", "--as-of", "2026-13-01", "--results", str(res)]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err
    assert main(["watch", "init", "u", "--suite", str(_suite(tmp_path)), "--target", "sim",
                 "--max-rate", "0.05", "--days", "5", "--results", str(res)]) == 2
    assert main(["watch", "init", "v", "--suite", str(tmp_path / "nope.yaml"), "--target",
                 "sim", "--max-rate", "0.05", "--days", "5", "--results", str(res)]) == 2
    assert main(["watch"]) == 2


def test_infrastructure_error_exits_4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    res = _init(tmp_path, "inf", "patched", days=5)

    def unreachable(*_a: object, **_k: object) -> None:
        raise TargetUnreachableError("cannot reach http://127.0.0.1:9/v1 after 6 attempts")

    monkeypatch.setattr("harness.run.run_suite", unreachable)
    assert main(["watch", "run", "inf", "--as-of", _night(0), "--results", str(res)]) == 4
    assert "cannot reach" in capsys.readouterr().err


def test_drift_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _init(tmp_path, "dw", "drifting")
    codes = [main(["watch", "run", "dw", "--as-of", _night(d), "--quiet", "--no-plot",
                   "--results", str(res)]) for d in (0, 1, 24)]
    assert codes[:2] == [0, 0] and codes[2] == 1
    capsys.readouterr()
    assert main(["watch", "status", "dw", "--results", str(res), "--as-of", _night(24)]) == 1
    out = capsys.readouterr().out
    assert "ALARM model-update" in out


@pytest.mark.slow
def test_thirty_day_watch_tells_patched_from_drifting(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Done-when: a 30-day watch driven with --as-of over the patched and drifting profiles;
    `watch status` tells them apart with the right exit codes and a timeline plot."""
    res = tmp_path / "results"
    for profile in ("patched", "drifting"):
        _init(tmp_path, profile, profile, days=30, samples=4)
        for d in range(30):
            main(["watch", "run", profile, "--as-of", _night(d), "--quiet", "--no-plot",
                  "--results", str(res)])
    capsys.readouterr()
    assert main(["watch", "status", "patched", "--json", "--results", str(res)]) == 0
    pat = json.loads(capsys.readouterr().out)
    assert pat["status"] == "verified" and pat["days_left"] == 0 and pat["alarms"] == []
    assert main(["watch", "status", "drifting", "--json", "--results", str(res)]) == 1
    drf = json.loads(capsys.readouterr().out)
    assert drf["status"] in ("breached", "drift")
    kinds = {a["kind"] for a in drf["alarms"]}
    assert "model-update" in kinds and ({"breach", "drift"} & kinds)
    first = min(a["run_index"] for a in drf["alarms"] if a["kind"] in ("breach", "drift"))
    assert first + 1 <= 20  # run number (1-based); docs/watch.md states this measured bound
    for profile in ("patched", "drifting"):
        png = tmp_path / f"{profile}.png"
        main(["watch", "status", profile, "--plot", str(png), "--results", str(res)])
        assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow  # draws the timeline and a run report several times (~4 s of CPU)
def test_a_night_writes_the_watch_report_and_reports_render_a_watch(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`watch run` writes the watch's report.html (timeline embedded) beside timeline.png;
    `watch report` and `harness report WATCH_DIR` render the same page, and the night's run
    report rendered by `harness report` embeds the timeline; status and list write
    nothing."""
    import re

    res = tmp_path / "results"
    assert main(["watch", "init", "rw", "--suite", str(_suite(tmp_path, 1)), "--target",
                 "sim:patched", "--max-rate", "0.05", "--days", "5", "--start",
                 START.isoformat(), "--no-canaries", "--results", str(res)]) == 0
    assert main(["watch", "run", "rw", "--as-of", _night(0), "--quiet",
                 "--results", str(res)]) == 0
    wdir = res / "watches" / "rw"
    page = (wdir / "report.html").read_text()
    assert 'id="plot-watch-timeline"' in page and "default-src 'none'" in page
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert (wdir / "timeline.png").read_bytes()[:4] == b"\x89PNG"
    before = {p: p.stat().st_mtime_ns for p in wdir.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["watch", "status", "rw", "--as-of", _night(0), "--results", str(res)]) == 0
    assert main(["watch", "list", "--results", str(res)]) in (0, 4)
    assert main(["watch", "report", "rw", "--format", "md", "--results", str(res)]) == 0
    assert capsys.readouterr().out.count("# Watch rw: ") == 1
    after = {p: p.stat().st_mtime_ns for p in wdir.rglob("*") if p.is_file()}
    assert after == before, "read commands wrote into the watch folder"
    out = tmp_path / "w.html"
    assert main(["watch", "report", "rw", "--out", str(out), "--results", str(res)]) == 0
    assert main(["report", str(wdir), "--out", str(tmp_path / "r.html")]) == 0
    strip = re.compile(r'data:image/png;base64,[^"]+')  # PNG bytes may differ by metadata
    assert strip.sub("", out.read_text()) == strip.sub("", (tmp_path / "r.html").read_text())
    assert main(["report", str(wdir), "--format", "junit"]) == 2
    (run_dir,) = (wdir / "runs").iterdir()
    assert main(["report", str(run_dir), "--out", str(tmp_path / "n.html")]) == 0
    night = (tmp_path / "n.html").read_text()
    assert 'id="plot-watch-timeline"' in night and 'id="verdict-table"' in night
