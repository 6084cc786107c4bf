"""Shared fixtures: no stray judge/moderation settings from the environment."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_detector_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Detectors over HTTP take a fast retry policy from `_http.fast_context()` (there is no
    # module-global policy to set).
    for var in ("HARNESS_JUDGE_BASE_URL", "HARNESS_JUDGE_MODEL", "HARNESS_MODERATION_BASE_URL",
                "HARNESS_MODERATION_MODEL", "HARNESS_CACHE_DIR"):
        monkeypatch.delenv(var, raising=False)
