"""The JSON Schemas of summary.json, watch status, compare and error documents, checked with
the `jsonschema` package against real documents (and shown to reject broken ones)."""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.schemas import SCHEMAS, check_document, load_schema, schema_errors
from tests.conftest import ROOT

GOLDEN = ROOT / "tests" / "fixtures" / "golden"
LIBRARY = ROOT / "probes" / "library"


def test_every_schema_is_a_valid_draft_2020_12_schema() -> None:
    import jsonschema

    for name in SCHEMAS:
        jsonschema.Draft202012Validator.check_schema(load_schema(name))


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.summary.json")), ids=lambda p: p.name)
def test_golden_summaries_follow_the_summary_schema(path: Path) -> None:
    assert schema_errors(json.loads(path.read_text()), "summary") == []


def test_a_fresh_run_summary_follows_the_schema_and_broken_ones_do_not(tmp_path: Path) -> None:
    from harness.run import RunOptions, run_suite
    from tests.conftest import write_small_suite

    res = run_suite(write_small_suite(tmp_path, samples=2),
                    RunOptions(target="sim", out_dir=tmp_path / "r", progress=False))
    doc = json.loads((res.run_dir / "summary.json").read_text())
    check_document(doc, "summary")
    broken = copy.deepcopy(doc)
    del broken["run_id"]
    broken["outcome"] = "fine"
    gated = next(g for g in broken["groups"] if "max_rate" in g)
    del gated["verdict"]
    broken["groups"][0]["rate"] = 1.5
    errors = schema_errors(broken, "summary")
    assert any("'run_id' is a required property" in e for e in errors)
    assert any(e.startswith("$.outcome:") for e in errors)
    assert any("$.groups[0].rate" in e for e in errors)
    assert any("'verdict' is a dependency of 'max_rate'" in e for e in errors)
    with pytest.raises(InputError, match="summary schema"):
        check_document(broken, "summary", "summary.json")


def test_watch_status_follows_its_schema(tmp_path: Path) -> None:
    from harness.watch import init_watch, run_watch, watch_status

    suite = tmp_path / "suite.yaml"
    suite.write_text("name: watch-schema\n"
                     f"probes:\n  - {LIBRARY / 'dangerous-instructions.jsonl'}\n"
                     "temperatures: [0.7]\nsamples: 1\nseed: 3\n"
                     "max_rate: {overall: 0.05}\n", encoding="utf-8")
    res = tmp_path / "results"
    start = date(2026, 1, 1)
    init_watch("s", suite=suite, target="sim:patched", max_rate=0.05, days=5, min_runs=2,
               results=res, start=start)
    for day in range(2):
        run_watch("s", as_of=start + timedelta(days=day), results=res)
    doc = json.loads(json.dumps(watch_status("s", as_of=start + timedelta(days=1), results=res,
                                             now=start + timedelta(days=1)).to_dict()))
    assert doc["runs"] == 2
    assert schema_errors(doc, "watch-status") == []
    doc["status"] = "fine"
    doc["runs_detail"][0]["as_of"] = "yesterday"
    errors = schema_errors(doc, "watch-status")
    assert any(e.startswith("$.status") for e in errors)
    assert any(e.startswith("$.runs_detail[0].as_of") for e in errors)
