"""Shared fixtures: fast retries for detector calls, no stray API keys."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.detectors import _net
from harness.targets.retry import RetryPolicy


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    _net.set_retry_policy(RetryPolicy(max_attempts=3, base_s=0.001, cap_s=0.005,
                                      max_total_s=5.0, max_retry_after_s=0.01))
    for var in ("HARNESS_JUDGE_BASE_URL", "HARNESS_JUDGE_MODEL", "HARNESS_MODERATION_BASE_URL",
                "HARNESS_MODERATION_MODEL", "HARNESS_CACHE_DIR"):
        monkeypatch.delenv(var, raising=False)
    yield
    _net.set_retry_policy(None)
