"""Build report text from a summary dict: Markdown for people and a console table (JUnit XML
is `harness.junit`, HTML `harness.html_report`).

Pure: text in, text out; the caller writes files. Reports never contain model output text
(only ids, counts and rates), so they can be shared with legal and communications staff.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.summary import VerdictBasis

OUTCOME_SENTENCES = {
    "holds": "HOLDS: every gated harmful-output rate is below its maximum at the stated "
             "confidence.",
    "breached": "BREACHED: at least one gated rate is above its maximum.",
    "inconclusive": "INCONCLUSIVE: the data cannot yet tell whether every gated rate is below "
                    "its maximum; sample more.",
    "error": "ERROR: too many samples ended in error (no answer from the target, or a "
             "detector failed: see Samples below); the rates cannot be "
             "trusted.",
}


NON_REFUSAL_NOTE = (
    "Only rule detectors label {groups}: for must-refuse probes their \"harmful\" means "
    "\"did not refuse\", so the rate is a non-refusal rate, an upper bound on harm (a "
    "wrong, useless or garbled attempt counts). For a harm label add a judge or a moderation "
    "classifier (`expect: {{judge: true}}` on the probes, or `detectors: [judge]` in the "
    "suite), or calibrate the refusal detector against human labels (`harness calibrate "
    "refusal --labels FILE`, then `harness run --calibration FILE`). Replies that neither "
    "refused nor complied (empty, gibberish, off topic) are counted as unclear, apart from "
    "the rate.")


def pct(x: float | None) -> str:
    """A rate as a percentage with precision that suits its size."""
    if x is None:
        return "n/a"
    v = 100 * x
    if v == 0:
        return "0%"
    if v < 0.1:
        return f"{v:.3f}%"
    if v < 1:
        return f"{v:.2f}%"
    return f"{v:.1f}%"


def conf_pct(level: float) -> str:
    return f"{100 * level:g}%"


def _unclear_clause(summary: Mapping[str, Any]) -> str:
    n = sum(int(g.get("n_unclear", 0)) for g in summary["groups"] if g["by"] == "category")
    return f"; {n:,} unclear replies, not scored" if n else ""


def _detector_error_clause(summary: Mapping[str, Any]) -> str:
    failed = summary["errors"].get("detector_errors") or {}
    if not failed:
        return ""
    return "; detectors failed on " + ", ".join(f"{k:,} ({name})" for name, k in failed.items())


def verdict_sentence(row: Mapping[str, Any], confidence_level: float) -> str:
    """'0.4% (95% CI 0.1%-1.1%) against a maximum of 2%: below'."""
    what = ("refusal rate" if row.get("failure") == "refusal" else
            "non-refusal rate (an upper bound on harm)"
            if row.get("label_quantity") == "non-refusal" else "rate")
    base = (f"{what} {pct(row.get('rate'))} ({conf_pct(confidence_level)} CI "
            f"{pct(row.get('ci_low'))}-{pct(row.get('ci_high'))})")
    if "max_rate" not in row:
        return base
    verdict = row.get("verdict", "inconclusive")
    text = f"{base} against a maximum of {pct(row['max_rate'])}: {verdict}"
    if verdict == "inconclusive":
        more = row.get("more_samples")
        if more:
            text += f"; about {more:,} more samples would likely settle it"
        elif row.get("note"):
            text += f" ({row['note']})"
    if row.get("gate_high") is not None:
        text += f" [gate upper bound {pct(row['gate_high'])}]"
    return text


def _table(rows: Sequence[Mapping[str, Any]], cols: Sequence[tuple[str, str]]) -> list[str]:
    out = ["| " + " | ".join(h for h, _ in cols) + " |",
           "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        cells = []
        for _, key in cols:
            v = r.get(key)
            if key in ("rate", "ci_low", "ci_high", "max_rate", "gate_high", "gate_low",
                       "cluster_ci_low", "cluster_ci_high"):
                cells.append(pct(v) if v is not None else "")
            elif isinstance(v, float):
                cells.append(f"{v:.3g}")
            elif isinstance(v, bool):
                cells.append("yes" if v else "")
            else:
                cells.append("" if v is None else str(v))
        out.append("| " + " | ".join(cells) + " |")
    return out


def _interval(r: Mapping[str, Any]) -> str:
    return f"{pct(r.get('ci_low'))}-{pct(r.get('ci_high'))}"


def verdict_basis(row: Mapping[str, Any]) -> VerdictBasis:
    """The claim that decided a summary.json row's verdict (a closed vocabulary)."""
    return VerdictBasis(row.get("verdict_basis", ""))


def _with_claim_p(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row plus `p_claim`: the adjusted p-value of the claim its verdict makes (the
    "above" claim for above, the "below" claim otherwise)."""
    out = dict(row)
    if row.get("verdict") == "above":
        fixed_suite = verdict_basis(row) is VerdictBasis.FIXED_SUITE
        out["p_claim"] = row.get("p_adjusted_above_fixed_suite") if fixed_suite \
            else row.get("p_adjusted_above")
    else:
        out["p_claim"] = row.get("p_adjusted")
    return out


def truncation_lines(groups: Sequence[Mapping[str, Any]]) -> list[str]:
    """One bullet when answers were cut off at max_tokens (finish_reason "length"), with the
    share per category: a cut answer is labelled on its beginning only."""
    cats = [g for g in groups if g["by"] == "category"]
    n = sum(int(g.get("n", 0)) - int(g.get("n_error", 0)) for g in cats)
    cut = sum(int(g.get("n_truncated", 0)) for g in cats)
    if not cut:
        return []
    worst = sorted((g for g in cats if g.get("n_truncated")),
                   key=lambda g: -g["n_truncated"] / max(1, g["n"] - g.get("n_error", 0)))
    per = ", ".join(f"{g['key']} {g['n_truncated']:,}/{g['n'] - g.get('n_error', 0):,}"
                    for g in worst)
    return [f"- Cut off at max_tokens (finish_reason `length`): {cut:,} of {n:,} answers "
            f"({pct(cut / n if n else None)}; {per}). A cut answer is labelled on what it "
            "says before the cut; raise `max_tokens` in the suite if that matters."]


def tokens_line(summary: Mapping[str, Any]) -> str | None:
    """"Tokens: 12,300 in, 4,100 out; estimated cost 0.0043 USD (...)", or None when the
    summary has no token counts (written before they were counted)."""
    t = summary.get("tokens")
    if not t:
        return None
    line = f"Tokens: {t['in']:,} in, {t['out']:,} out"
    cost = t.get("cost")
    if cost:
        line += (f"; estimated cost {cost['total']:.4g} {cost['currency']} "
                 f"({cost['per_1k_in']:g} in / {cost['per_1k_out']:g} out per 1,000 tokens)")
    if t.get("n_without_usage"):
        line += f" ({t['note']})"
    elif not t["in"] and not t["out"] and t.get("n_answered"):
        line += " (the endpoint reported no usage)"
    return line


def capped_lines(summary: Mapping[str, Any]) -> list[str]:
    """One bullet when answers longer than max_response_chars were cut before labelling."""
    capped = summary.get("capped_responses") or {}
    n = int(capped.get("n_capped", 0))
    if not n:
        return []
    total = summary.get("errors", {}).get("n", 0)
    return [f"- Longer than max_response_chars ({int(capped['max_response_chars']):,} "
            f"characters): {n:,} of {total:,} answers, stored and labelled on their first "
            f"{int(capped['max_response_chars']):,} characters (records say "
            "`response_capped`); raise `max_response_chars` if that matters."]


def render_markdown(summary: Mapping[str, Any]) -> str:
    """The run's report.md: header, verdicts, sequential stopping, corrected rates, the
    breakdowns, the worst probe and the probes, in that order."""
    lines = [*_header_lines(summary), *_verdict_lines(summary), *_sequential_lines(summary),
             *_corrected_lines(summary), *_breakdown_lines(summary), *_probe_lines(summary)]
    lines += ["", "_This report contains no model output text. Outputs are in samples.jsonl "
              "(owner-readable only); read them with `harness review`._", ""]
    return "\n".join(lines)


def _header_lines(summary: Mapping[str, Any]) -> list[str]:
    conf = summary["confidence_level"]
    lines = [f"# Run {summary['run_id']}: {summary['suite']}", ""]
    lines += [f"**{OUTCOME_SENTENCES.get(summary['outcome'], summary['outcome'])}**", ""]
    lines += [f"- Target: `{summary.get('target')}`; models seen: "
              + (", ".join(f"`{m}` ({n})" for m, n in summary.get("models", {}).items())
                 or "n/a"),
              f"- Deployment context: {summary.get('deployment', 'general')}",
              f"- Confidence level: {conf_pct(conf)}; gate: one-sided "
              f"{summary['gate']['method']} bound"
              + (", clustered by probe family" if summary["gate"]["cluster"] else "")
              + f", {summary['gate']['multiplicity']} correction across gated groups",
              f"- Samples: {summary['errors']['n']:,} ({summary['errors']['n_error']:,} errors, "
              f"{pct(summary['errors']['error_share'])} against a maximum of "
              f"{pct(summary['errors']['max_error_rate'])}"
              + _unclear_clause(summary) + _detector_error_clause(summary) + ")",
              f"- Started {summary.get('started')}, finished {summary.get('finished')}"]
    tokens = tokens_line(summary)
    if tokens:
        lines.append(f"- {tokens}")
    return [*lines, *truncation_lines(summary["groups"]), *capped_lines(summary), ""]


def _verdict_lines(summary: Mapping[str, Any]) -> list[str]:
    conf = summary["confidence_level"]
    gated = [g for g in summary["groups"] if "max_rate" in g]
    if not gated:
        return []
    lines = ["## Verdicts", ""]
    for g in gated:
        name = "Overall (harm categories)" if g["by"] == "overall" else g["key"]
        lines.append(f"- **{name}**: {verdict_sentence(g, conf)}")
    lines.append("")
    lines += _table([_with_claim_p(g) for g in gated],
                    [("group", "key"), ("n", "n_scored"), ("harmful", "n_harmful"),
                     ("rate", "rate"), ("CI low", "ci_low"), ("CI high", "ci_high"),
                     ("clustered CI low", "cluster_ci_low"),
                     ("clustered CI high", "cluster_ci_high"),
                     ("design effect", "design_effect"), ("gate bound", "gate_high"),
                     ("max", "max_rate"), ("p of claim (adj.)", "p_claim"),
                     ("correction", "correction"), ("verdict", "verdict")])
    rule_only = [("overall" if g["by"] == "overall" else str(g["key"])) for g in gated
                 if g.get("label_quantity") == "non-refusal"]
    if rule_only:
        lines += ["", NON_REFUSAL_NOTE.format(groups=", ".join(rule_only))]
    return [*lines, "", "The displayed interval is the two-sided Wilson interval of the pooled "
            "rate on this suite. The verdict uses the one-sided gate bound, which accounts "
            "for correlation between samples of the same probe family (design effect) and "
            "has guaranteed coverage; see docs/statistics.md.", ""]


def _sequential_lines(summary: Mapping[str, Any]) -> list[str]:
    if not summary.get("sequential"):
        return []
    s = summary["sequential"]
    why = "stopped early: every gate settled" if s["stopped_early"] else "budget reached"
    return ["## Sequential stopping", "",
            f"Used {s['samples_used']:,} samples of a fixed plan of "
            f"{s['fixed_plan_samples']:,} (saved {s['samples_saved']:,}); "
            f"{why} after {s['rounds']} rounds.", ""]


def _corrected_lines(summary: Mapping[str, Any]) -> list[str]:
    if not summary.get("corrected"):
        return []
    conf = summary["confidence_level"]
    detectors = sorted({str(c.get("detector")) for c in summary["corrected"]})
    lines = [f"## Rates corrected by the {', '.join(detectors)} detector's calibration",
             "", "The correction (Rogan-Gladen) applies only to groups that detector "
             "labels throughout and categories the calibration measured.", ""]
    for c in summary["corrected"]:
        if c.get("rate") is None:
            lines.append(f"- {c['key']}: raw {pct(c['raw_rate'])}, no corrected rate "
                         f"({c.get('note', 'not correctable')})")
            continue
        lines.append(f"- {c['key']}: raw {pct(c['raw_rate'])} ({c.get('detector')} "
                     f"labels), corrected {pct(c['rate'])} ({conf_pct(conf)} CI "
                     f"{pct(c['low'])}-{pct(c['high'])}; {c['method']})")
    return [*lines, ""]


_BREAKDOWNS = (("category", "By category"), ("context", "By context"),
               ("temperature", "By temperature"), ("severity", "By probe severity"),
               ("mutator-family", "By mutator family (which transforms get through)"),
               ("mutator", "By mutator chain (variants)"))


def _breakdown_lines(summary: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    for by, title in _BREAKDOWNS:
        rows = [g for g in summary["groups"] if g["by"] == by]
        if not rows:
            continue
        lines += [f"## {title}", ""]
        cols = [(by, "key"), ("n", "n_scored"), ("harmful", "n_harmful"),
                ("unclear", "n_unclear"), ("blocked", "n_blocked"), ("errors", "n_error"),
                ("rate", "rate"),
                ("CI low", "ci_low"), ("CI high", "ci_high")]
        if by == "category":
            cols.insert(1, (f"severity in {summary.get('deployment', 'general')}",
                            "deployment_severity"))
        lines += _table(rows, cols)
        lines.append("")
    return lines


def _probe_lines(summary: Mapping[str, Any]) -> list[str]:
    """The worst probe's simultaneous bound, the flagged probes and the highest rates."""
    conf = summary["confidence_level"]
    groups = summary["groups"]
    lines: list[str] = []
    w = summary.get("worst_probe")
    if w:
        lines += ["## Worst probe", "",
                  f"`{w['worst_id']}`: {pct(w['worst_rate'])} ({w['worst_k']}/{w['worst_n']}). "
                  f"With {conf_pct(conf)} confidence every probe's true rate is at most "
                  f"{pct(w['upper'])} (simultaneous Bonferroni bound over {w['n_clusters']} "
                  "probes).", ""]
    flagged = [g for g in groups if g["by"] == "probe" and g.get("flagged")]
    probes = sorted((g for g in groups if g["by"] == "probe"),
                    key=lambda g: -(g["rate"] or 0))[:15]
    lines += ["## Probes", "",
              f"{len(flagged)} probe(s) flagged above their category maximum "
              "(exploratory, Benjamini-Hochberg false-discovery control)"
              + (": " + ", ".join(f"`{g['key']}`" for g in flagged) if flagged else "") + ".", ""]
    lines += ["Highest observed rates:", ""]
    return lines + _table(probes, [("probe", "key"), ("category", "category"), ("n", "n_scored"),
                                   ("harmful", "n_harmful"), ("rate", "rate"),
                                   ("CI low", "ci_low"), ("CI high", "ci_high"),
                                   ("flagged", "flagged")])


def render_console(summary: Mapping[str, Any]) -> str:
    """The summary table `harness run` prints."""
    conf = summary["confidence_level"]
    out = [f"run {summary['run_id']}  suite {summary['suite']}  target {summary.get('target')}"]
    rows = [g for g in summary["groups"] if g["by"] in ("overall", "category")]
    width = max((len(str(g["key"])) for g in rows), default=8) + 2
    out.append(f"{'group':<{width}} {'n':>7} {'harmful':>8} {'rate':>8} "
               f"{conf_pct(conf) + ' CI':>17} {'max':>7}  verdict")
    for g in rows:
        ci = _interval(g)
        mx = pct(g["max_rate"]) if "max_rate" in g else ""
        verdict = g.get("verdict", "")
        if verdict == "inconclusive" and g.get("more_samples"):
            verdict += f" (~{g['more_samples']:,} more samples)"
        elif verdict == "inconclusive" and g.get("note"):
            verdict += " (needs more probes)"
        out.append(f"{g['key']:<{width}} {g['n_scored']:>7,} {g['n_harmful']:>8,} "
                   f"{pct(g['rate']):>8} {ci:>17} {mx:>7}  {verdict}"
                   + (f"  [{g['n_unclear']:,} unclear]" if g.get("n_unclear") else ""))
    if summary.get("sequential"):
        s = summary["sequential"]
        out.append(f"sequential: {s['samples_used']:,} samples used of a fixed plan of "
                   f"{s['fixed_plan_samples']:,} (saved {s['samples_saved']:,})")
    rule_only = [str(g["key"]) for g in rows if g.get("label_quantity") == "non-refusal"
                 and "max_rate" in g]
    if rule_only:
        out.append("note: " + ", ".join(rule_only) + ": rule labels only, so the rate is a "
                   "non-refusal rate, an upper bound on harm (add a judge or a calibration "
                   "for a harm label; see report.md)")
    tokens = tokens_line(summary)
    if tokens:
        out.append(tokens[0].lower() + tokens[1:])
    out.append(f"outcome: {summary['outcome'].upper()}  "
               f"({OUTCOME_SENTENCES.get(summary['outcome'], '')})")
    return "\n".join(out)
