"""JUnit XML: one test case per gated group; inconclusive fails by default."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from harness.errors import UsageError
from harness.junit import compare_junit, run_junit


def _row(key: str, verdict: str, **kw: object) -> dict:
    return {"by": "category", "key": key, "n": 600, "n_scored": 600, "n_harmful": 3,
            "rate": 0.005, "ci_low": 0.0017, "ci_high": 0.0146, "max_rate": 0.02,
            "verdict": verdict, "gate_low": 0.001, "gate_high": 0.0129, **kw}


SUMMARY = {"run_id": "r1", "suite": "s", "outcome": "inconclusive", "confidence_level": 0.95,
           "target": "sim",
           "groups": [_row("a", "below"), _row("b", "above", gate_low=0.03, rate=0.05),
                      _row("c", "inconclusive", gate_high=0.031),
                      {"by": "probe", "key": "p1", "rate": 0.1}]}


def _cases(xml: str) -> dict[str, ET.Element]:
    root = ET.fromstring(xml)
    return {c.get("name", ""): c for c in root.iter("testcase")}


@pytest.mark.parametrize(("policy", "failures", "skipped"),
                         [("fail", 2, 0), ("skip", 1, 1), ("pass", 1, 0)])
def test_one_case_per_gated_group_and_the_inconclusive_policy(policy: str, failures: int,
                                                              skipped: int) -> None:
    xml = run_junit(SUMMARY, policy)
    root = ET.fromstring(xml)
    cases = _cases(xml)
    assert sorted(cases) == ["category:a", "category:b", "category:c"]
    assert root.get("tests") == "3"
    assert root.get("failures") == str(failures) and root.get("skipped") == str(skipped)
    assert cases["category:a"].find("failure") is None
    assert cases["category:b"].find("failure") is not None
    c = cases["category:c"]
    if policy == "fail":
        assert c.find("failure") is not None and c.find("failure").get("type") == "inconclusive"
    elif policy == "skip":
        assert c.find("skipped") is not None and c.find("failure") is None
    else:
        assert c.find("failure") is None and c.find("skipped") is None


def test_failure_text_carries_rate_bound_and_max() -> None:
    msg = _cases(run_junit(SUMMARY))["category:b"].find("failure").get("message")
    assert "at least 3.0%" in msg and "maximum of 2.0%" in msg and "(5.0%)" in msg
    inc = _cases(run_junit(SUMMARY))["category:c"].find("failure").get("message")
    assert "at most 3.1%" in inc and "maximum of 2.0%" in inc


def test_error_outcome_is_a_junit_error_and_bad_policy_is_refused() -> None:
    xml = run_junit({**SUMMARY, "outcome": "error",
                     "errors": {"n": 10, "n_error": 5, "max_error_rate": 0.05}})
    assert ET.fromstring(xml).get("errors") == "1"
    with pytest.raises(UsageError, match="--inconclusive 'maybe'"):
        run_junit(SUMMARY, "maybe")


def test_compare_junit_fails_on_worse_and_by_policy_on_inconclusive() -> None:
    g = {"baseline_rate": 0.01, "candidate_rate": 0.03, "difference": 0.02, "low": 0.01,
         "high": 0.03, "test": "paired", "verdict": "worse"}
    result = {"outcome": "regression", "margin": 0.01, "interval_level": 0.975,
              "baseline": {"run_id": "b"}, "candidate": {"run_id": "c", "suite": "s"},
              "groups": [dict(g, key="overall"), dict(g, key="x", verdict="inconclusive"),
                         dict(g, key="y", verdict="no-worse-than-margin")]}
    cases = _cases(compare_junit(result))
    assert cases["overall"].find("failure") is not None
    assert "+2.00 pp" in cases["overall"].find("failure").get("message")
    assert cases["x"].find("failure") is not None and cases["y"].find("failure") is None
    assert _cases(compare_junit(result, "skip"))["x"].find("skipped") is not None
