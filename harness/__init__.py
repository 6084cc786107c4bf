"""harness: statistical regression and watch-period evaluation for AI incident response.

The public surface is re-exported here (`harness.run_suite`, `harness.RunSummary`, ...);
everything else is private machinery behind it. Names load on first use, so `import harness`
(and the CLI's start-up) stays light.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_PUBLIC: dict[str, str] = {
    "run_suite": "harness.run",
    "resume_run": "harness.run",
    "RunOptions": "harness.run",
    "RunResult": "harness.run",
    "rescore_run": "harness.rescore",
    "compare_runs": "harness.compare",
    "load_suite": "harness.suites",
    "Suite": "harness.suites",
    "Target": "harness.targets.base",
    "make_target": "harness.targets",
    "Detector": "harness.detectors.base",
    "RunSummary": "harness.summary",
    "GroupRow": "harness.summary",
    "binomial_interval": "harness.stats",
    "load_runs": "harness.frames",
    "load_samples": "harness.frames",
    "load_watch": "harness.frames",
}

__all__ = ["__version__", *sorted(_PUBLIC)]


def __getattr__(name: str) -> object:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
