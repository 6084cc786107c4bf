"""Progress: a tqdm bar with rate and time left on a terminal, plain lines every ~10 s in logs."""

from __future__ import annotations

import io

import pytest

from harness.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_every_ten_seconds_with_rate_and_time_left(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    out, clock = io.StringIO(), Clock()
    p = Progress(1000, None, stream=out, clock=clock)
    assert p.mode == "lines"
    for _ in range(9):  # 9 s: nothing yet
        clock.t += 1
        p.advance(10)
    assert out.getvalue() == ""
    clock.t += 1.0  # 10 s, 100 samples: 10/s, 900 left -> 90 s
    p.advance(10)
    lines = out.getvalue().splitlines()
    assert lines == ["harness: 100/1000 samples (10%) | 10.00 samples/s | elapsed 00:10 | "
                     "about 01:30 left"]
    clock.t += 5
    p.advance(50)
    assert len(out.getvalue().splitlines()) == 1  # next line only after another 10 s
    clock.t += 5
    p.advance(50)
    assert "200/1000 samples (20%)" in out.getvalue().splitlines()[-1]
    p.close()
    assert len(out.getvalue().splitlines()) == 3
    assert "\r" not in out.getvalue()


def test_a_slow_model_gets_seconds_per_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    # A small local model under load: 20 s a sample (tqdm inverts rates below 1/s).
    monkeypatch.delenv("CI", raising=False)
    out, clock = io.StringIO(), Clock()
    p = Progress(126, None, stream=out, clock=clock)
    clock.t += 60.0
    p.advance(3)
    assert out.getvalue().splitlines() == [
        "harness: 3/126 samples (2%) | 20.00 s/sample | elapsed 01:00 | about 41:00 left"]


def test_a_short_run_in_a_log_prints_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress(10, None, stream=out, clock=clock)
    p.advance(10)
    p.close()
    assert out.getvalue() == ""


def test_a_terminal_gets_a_tqdm_bar_unless_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    out = Tty()
    p = Progress(50, None, stream=out)
    assert p.mode == "bar"
    for _ in range(5):
        p.advance(10)
    p.close()
    text = out.getvalue()
    assert "50/50" in text and "samples/s" in text and "100%" in text
    monkeypatch.setenv("CI", "true")
    assert Progress(50, None, stream=Tty()).mode == "lines"
    silent = io.StringIO()
    q = Progress(50, False, stream=silent)
    q.advance(50)
    q.close()
    assert silent.getvalue() == "" and not q.enabled
