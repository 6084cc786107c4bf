"""harness: statistical regression and watch-period evaluation for AI incident response."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_runs", "load_samples", "load_watch"]


def __getattr__(name: str) -> object:
    # The DataFrame loaders import pandas; load them on first use so `import harness` (and the
    # CLI's start-up) stays light.
    if name in ("load_runs", "load_samples", "load_watch"):
        from harness import frames

        return getattr(frames, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
