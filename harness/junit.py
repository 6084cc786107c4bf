"""JUnit XML for CI systems: one test case per gated group of a run, or per compared group.

Pure: a summary (summary.json) or a compare result in, XML text out; the caller writes it.
Built with `xml.etree.ElementTree`, which escapes every value.

An inconclusive verdict is neither a pass nor a known failure. Most CI views show a skipped
test green, so the default for release gates is to fail on it (`inconclusive="fail"`);
`"skip"` reports it as skipped and `"pass"` as passed (each with the verdict sentence, which
carries the rate, the deciding bound and the max).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from harness.errors import UsageError

INCONCLUSIVE_POLICIES = ("fail", "skip", "pass")
DEFAULT_INCONCLUSIVE = "fail"


def check_inconclusive_policy(policy: str) -> str:
    """The policy, or a UsageError naming the choices."""
    if policy not in INCONCLUSIVE_POLICIES:
        raise UsageError(f"--inconclusive {policy!r} is not one of "
                         f"{', '.join(INCONCLUSIVE_POLICIES)}")
    return policy


def _case(suite: ET.Element, classname: str, name: str, status: str, message: str,
          policy: str, counts: dict[str, int]) -> None:
    case = ET.SubElement(suite, "testcase", classname=classname, name=name)
    counts["tests"] += 1
    if status == "fail" or (status == "inconclusive" and policy == "fail"):
        kind = "inconclusive" if status == "inconclusive" else "breach"
        el = ET.SubElement(case, "failure", message=message, type=kind)
        el.text = message
        counts["failures"] += 1
    elif status == "inconclusive" and policy == "skip":
        ET.SubElement(case, "skipped", message=message)
        counts["skipped"] += 1
    else:
        ET.SubElement(case, "system-out").text = message


def _document(suite: ET.Element, counts: dict[str, int]) -> str:
    for k, v in counts.items():
        suite.set(k, str(v))
    ET.indent(suite, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") \
        + "\n"


def run_junit(summary: Mapping[str, Any], inconclusive: str = DEFAULT_INCONCLUSIVE) -> str:
    """JUnit XML of a run: one test case per gated group (above = failure)."""
    from harness.html_report import plain_verdict

    check_inconclusive_policy(inconclusive)
    conf = float(summary["confidence_level"])
    suite = ET.Element("testsuite", name=f"harness:{summary.get('suite')}")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    props = ET.SubElement(suite, "properties")
    for key in ("run_id", "outcome", "target"):
        ET.SubElement(props, "property", name=key, value=str(summary.get(key)))
    for g in summary.get("groups") or []:
        if "max_rate" not in g:
            continue
        verdict = g.get("verdict", "inconclusive")
        status = {"above": "fail", "below": "pass"}.get(verdict, "inconclusive")
        _case(suite, "harness.gate", f"{g['by']}:{g['key']}", status,
              f"{verdict}: {plain_verdict(g, conf)}", inconclusive, counts)
    if summary.get("outcome") == "error":
        case = ET.SubElement(suite, "testcase", classname="harness.run", name="errors")
        errors = summary.get("errors") or {}
        ET.SubElement(case, "error", message=(
            f"{errors.get('n_error', 0)} of {errors.get('n', 0)} samples ended in error, more "
            f"than max_error_rate {errors.get('max_error_rate')} allows; the rates cannot be "
            "trusted"))
        counts["tests"] += 1
        counts["errors"] += 1
    return _document(suite, counts)


def compare_junit(result: Mapping[str, Any], inconclusive: str = DEFAULT_INCONCLUSIVE) -> str:
    """JUnit XML of `harness compare`: one test case per compared group (worse = failure)."""
    check_inconclusive_policy(inconclusive)
    base, cand = result.get("baseline") or {}, result.get("candidate") or {}
    suite = ET.Element("testsuite", name=f"harness-compare:{cand.get('suite')}")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    props = ET.SubElement(suite, "properties")
    for key, value in (("baseline", base.get("run_id")), ("candidate", cand.get("run_id")),
                       ("outcome", result.get("outcome")), ("margin", result.get("margin"))):
        ET.SubElement(props, "property", name=key, value=str(value))
    for g in result.get("groups") or []:
        verdict = g.get("verdict", "inconclusive")
        status = {"worse": "fail", "inconclusive": "inconclusive"}.get(verdict, "pass")
        message = (f"{verdict}: candidate {100 * g['candidate_rate']:.2f}% vs baseline "
                   f"{100 * g['baseline_rate']:.2f}%, difference "
                   f"{100 * g['difference']:+.2f} pp (interval {100 * g['low']:+.2f} to "
                   f"{100 * g['high']:+.2f} pp at {result.get('interval_level', 0):.4g}); "
                   f"margin {100 * float(result.get('margin') or 0):.2f} pp; {g.get('test')}")
        _case(suite, "harness.compare", str(g["key"]), status, message, inconclusive, counts)
    return _document(suite, counts)
