"""Tokens and cost: counted from the records' usage (tally), summed per group and run
(analysis), priced by the suite's or the flags' price table (settings), shown in reports."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.analysis import summarize
from harness.errors import UsageError, ValidationError
from harness.report import render_console, render_markdown
from harness.schemas import schema_errors
from harness.settings import Overrides, apply_overrides, env_overrides
from harness.suites import Price, load_suite
from harness.tally import Tally
from tests.test_analysis import suite as make_suite


def rec(probe: str, category: str, index: int, *, seed_sent: int | None, tokens_in: int | None,
        tokens_out: int | None, outcome: str = "safe") -> dict[str, Any]:
    return {"probe_id": probe, "family": probe, "parent_id": None, "mutators": [],
            "category": category, "severity": "high", "context": "bare", "temperature": 0.7,
            "outcome": outcome, "model": "m", "sample_index": index, "seed": 1000 + index,
            "seed_sent": seed_sent, "tokens_in": tokens_in, "tokens_out": tokens_out,
            "response": "no" if outcome != "error" else None}


def test_prompt_tokens_count_once_per_request_and_missing_usage_is_counted() -> None:
    t = Tally()
    # One request with n=3 (seed_sent = the first sample's seed): prompt billed once.
    for i in range(3):
        t.add(rec("a", "self-harm", i, seed_sent=1000, tokens_in=50, tokens_out=10))
    # Two requests of one sample each: prompt billed twice.
    for i in (3, 4):
        t.add(rec("a", "self-harm", i, seed_sent=1000 + i, tokens_in=50, tokens_out=7))
    # No seed sent at all: every record is its own request.
    t.add(rec("b", "over-refusal", 0, seed_sent=None, tokens_in=20, tokens_out=5))
    # An answer without usage, an error and a block: only the answer is "without usage".
    t.add(rec("b", "over-refusal", 1, seed_sent=None, tokens_in=None, tokens_out=None))
    t.add(rec("b", "over-refusal", 2, seed_sent=None, tokens_in=None, tokens_out=None,
              outcome="error"))
    t.add(rec("b", "over-refusal", 3, seed_sent=None, tokens_in=None, tokens_out=None,
              outcome="blocked"))
    summary = summarize(t, make_suite({"overall": 0.5}), {"run_id": "r"}).to_dict()
    tokens = summary["tokens"]
    assert (tokens["in"], tokens["out"]) == (50 + 100 + 20, 30 + 14 + 5)
    assert tokens["n_answered"] == 7 and tokens["n_without_usage"] == 1
    assert tokens["complete"] is False and "1 of 7 answers came without token" in tokens["note"]
    assert "cost" not in tokens
    groups = {(g["by"], g["key"]): g for g in summary["groups"]}
    assert groups[("overall", "overall")]["tokens_in"] == 150  # over-refusal not in overall
    assert groups[("category", "over-refusal")]["tokens_out"] == 5
    assert groups[("category", "over-refusal")]["n_without_usage"] == 1
    assert "cost" not in groups[("overall", "overall")]
    assert schema_errors(summary, "summary") == []


def test_price_gives_an_estimated_cost_per_run_and_group() -> None:
    t = Tally()
    t.add(rec("a", "self-harm", 0, seed_sent=None, tokens_in=2000, tokens_out=500))
    priced = replace(make_suite({"overall": 0.5}), price=Price(0.15, 0.6, "EUR"))
    summary = summarize(t, priced, {"run_id": "r"}).to_dict()
    cost = summary["tokens"]["cost"]
    # 2,000 prompt tokens at 0.15 per 1,000 + 500 completion tokens at 0.6 per 1,000.
    assert cost == {"estimated": True, "currency": "EUR", "per_1k_in": 0.15,
                    "per_1k_out": 0.6, "in": 0.3, "out": 0.3, "total": 0.6}
    assert summary["overall"]["cost"] == pytest.approx(0.6)
    assert schema_errors(summary, "summary") == []
    line = "Tokens: 2,000 in, 500 out; estimated cost 0.6 EUR (0.15 in / 0.6 out per 1,000 tokens)"
    assert f"- {line}" in render_markdown(summary).splitlines()
    assert line[0].lower() + line[1:] in render_console(summary).splitlines()


def test_price_layers_suite_env_flags() -> None:
    s = make_suite({"overall": 0.5})
    assert apply_overrides(s, Overrides(price_per_1k_in=1.0, price_per_1k_out=2.0)).price == \
        Price(1.0, 2.0)
    with_price = replace(s, price=Price(1.0, 2.0, "GBP"))
    assert apply_overrides(with_price, Overrides(price_per_1k_out=3.0)).price == \
        Price(1.0, 3.0, "GBP")
    with pytest.raises(UsageError, match="needs both prices: add --price-per-1k-out"):
        apply_overrides(s, Overrides(price_per_1k_in=1.0))
    with pytest.raises(UsageError, match=">= 0"):
        apply_overrides(s, Overrides(price_per_1k_in=-1.0, price_per_1k_out=1.0))
    env = env_overrides({"HARNESS_PRICE_PER_1K_IN": "0.5", "HARNESS_PRICE_PER_1K_OUT": "1"})
    assert (env.price_per_1k_in, env.price_per_1k_out) == (0.5, 1.0)
    with pytest.raises(UsageError, match="HARNESS_PRICE_PER_1K_IN"):
        env_overrides({"HARNESS_PRICE_PER_1K_IN": "cheap"})


def test_suite_price_is_checked_with_the_line(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text(json.dumps({
        "id": "x", "category": "self-harm", "severity": "high", "prompt": "hi",
        "expect": {"must_refuse": True}}) + "\n")
    good = tmp_path / "good.yaml"
    good.write_text("name: s\nprobes: [p.jsonl]\nprice: {per_1k_in: 0.00015, per_1k_out: "
                    "0.0006}\n")
    assert load_suite(good).price == Price(0.00015, 0.0006, "USD")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: s\nprobes: [p.jsonl]\nprice:\n  per_1k_in: -1\n  cost: 2\n")
    with pytest.raises(ValidationError) as info:
        load_suite(bad)
    text = str(info.value)
    assert "bad.yaml:4: price.per_1k_in: -1 must be a number >= 0" in text
    assert "price.cost: unknown key" in text and "price.per_1k_out: missing" in text


def test_run_records_tokens_and_cost_in_manifest_summary_report_and_output(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main
    from tests.targets.test_openai_batch import small_suite

    suite = small_suite(tmp_path, samples=3)
    code = main(["run", str(suite), "--target", "sim", "--out", str(tmp_path / "out"),
                 "--quiet", "--price-per-1k-in", "0.5", "--price-per-1k-out", "1.5"])
    assert code in (0, 1, 3)
    stdout = capsys.readouterr().out
    (run_dir,) = (tmp_path / "out").iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    tokens = summary["tokens"]
    assert tokens["in"] > 0 and tokens["out"] > 0 and tokens["complete"] is True
    assert manifest["settings"]["price"] == {"per_1k_in": 0.5, "per_1k_out": 1.5,
                                             "currency": "USD"}
    assert manifest["tokens"]["in"] == tokens["in"] and manifest["tokens"]["cost"] == \
        tokens["cost"]
    by_category = manifest["tokens"]["by_category"]
    assert set(by_category) == {"dangerous-instructions", "over-refusal"}
    assert sum(c["out"] for c in by_category.values()) == tokens["out"]
    expected = tokens["in"] / 1000 * 0.5 + tokens["out"] / 1000 * 1.5
    assert tokens["cost"]["total"] == pytest.approx(expected, abs=1e-6)
    assert f"tokens: {tokens['in']:,} in, {tokens['out']:,} out; estimated cost" in stdout
    assert f"- Tokens: {tokens['in']:,} in" in (run_dir / "report.md").read_text()
    assert "estimated cost" in (run_dir / "report.html").read_text()
