"""The pacer spreads request starts at (fastest latency seen) / concurrency."""

from __future__ import annotations

import pytest

from harness.engine._sampling import Pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_no_waiting_until_a_latency_has_been_seen() -> None:
    pacer = Pacer(8, clock=FakeClock())
    assert [pacer.delay_s() for _ in range(5)] == [0.0] * 5


def test_starts_are_spaced_by_fastest_latency_over_concurrency() -> None:
    clock = FakeClock()
    pacer = Pacer(4, clock=clock)
    pacer.observe(0.4)
    pacer.observe(0.8)  # slower answers do not widen the spacing
    delays = [pacer.delay_s() for _ in range(4)]  # four workers ask at the same instant
    assert delays == pytest.approx([0.0, 0.1, 0.2, 0.3])
    # The ceiling is exactly concurrency / fastest latency: 4 / 0.4 s = 10 starts a second.
    assert 1.0 / pacer.spacing_s == pytest.approx(10.0)


def test_idle_time_is_not_saved_up_as_a_burst() -> None:
    clock = FakeClock()
    pacer = Pacer(2, clock=clock)
    pacer.observe(0.2)
    assert pacer.delay_s() == 0.0
    clock.now += 5.0  # a long quiet spell
    assert [pacer.delay_s() for _ in range(3)] == pytest.approx([0.0, 0.1, 0.2])


def test_a_faster_answer_tightens_the_spacing_and_nonsense_is_ignored() -> None:
    pacer = Pacer(10, clock=FakeClock())
    pacer.observe(1.0)
    pacer.observe(0.0)
    pacer.observe(-1.0)
    assert pacer.spacing_s == pytest.approx(0.1)
    pacer.observe(0.5)
    assert pacer.spacing_s == pytest.approx(0.05)
