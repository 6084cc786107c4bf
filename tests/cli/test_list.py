"""`harness list probes|detectors|mutators|contexts|categories`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from tests.conftest import ROOT, SMALL_PROBES, write_small_suite


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict]:
    assert main(["list", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_probes_of_the_library_by_id_without_prompt_text(
        capsys: pytest.CaptureFixture[str]) -> None:
    rows = _json(capsys, "probes")
    lines = [json.loads(x) for f in sorted((ROOT / "probes" / "library").glob("*.jsonl"))
             for x in f.read_text().splitlines() if x.strip()]
    assert sorted(r["id"] for r in rows) == sorted(d["id"] for d in lines)
    text = json.dumps(rows)
    assert not any(d.get("prompt", "")[:40] in text for d in lines if d.get("prompt"))
    self_harm = _json(capsys, "probes", "--category", "self-harm")
    assert self_harm and {r["category"] for r in self_harm} == {"self-harm"}
    assert len(self_harm) == sum(d["category"] == "self-harm" for d in lines)


def test_probes_and_contexts_of_a_suite(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    suite = str(write_small_suite(tmp_path))
    assert [r["id"] for r in _json(capsys, "probes", "--suite", suite)] == \
        [p["id"] for p in SMALL_PROBES]
    contexts = _json(capsys, "contexts", "--suite", suite)
    assert [c["name"] for c in contexts] == ["bare", "guarded"]
    assert contexts[1]["system_prompt"] is True and contexts[0]["system_prompt"] is False
    assert "bare" in [c["name"] for c in _json(capsys, "contexts")]


def test_detectors_mutators_categories(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.mutators import names
    from harness.taxonomy import CATEGORIES

    detectors = {r["name"]: r for r in _json(capsys, "detectors")}
    assert {"refusal", "pattern", "canary", "judge", "moderation"} <= set(detectors)
    assert detectors["refusal"]["source"] == "built-in"
    assert [r["name"] for r in _json(capsys, "mutators")] == names()
    cats = {r["id"]: r for r in _json(capsys, "categories")}
    assert list(cats) == list(CATEGORIES)
    assert cats["over-refusal"]["failure"] == "refusal"
    assert main(["list", "mutators"]) == 0
    assert "base64" in capsys.readouterr().out


def test_bad_input_is_a_json_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "probes", "--category", "nope", "--json"]) == 2
    assert "not a taxonomy category" in json.loads(capsys.readouterr().out)["error"]["message"]
    assert main(["list", "widgets", "--json"]) == 2
    assert "invalid choice" in json.loads(capsys.readouterr().out)["error"]["message"]
