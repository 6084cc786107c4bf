"""A watch's report: one self-contained HTML page (or Markdown) with the timeline embedded.

What a person opening a watch expects to read: the status in words with the bound that
decides it, nights run and missing, every alarm, each night's counts, and the timeline
(`harness.watch.plot.timeline_figure`) as an embedded PNG. `render_watch_html` and
`render_watch_markdown` are pure (status and definition in, text out); `write_watch_report`
is the one call that writes (`watch run` after each night, `harness watch report NAME`, and
`harness report WATCH_DIR`). The page holds counts, rates and bounds only, never prompt or
output text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.report import conf_pct, pct
from harness.watch.model import WatchDefinition, WatchStatus

TEMPLATE = "watch.html.j2"
REPORT_HTML = "report.html"
_CLASS = {"verified": "ok", "holding": "ok", "watching": "warn", "breached": "bad",
          "drift": "bad"}


def status_sentence(st: WatchStatus) -> str:
    """The watch's status as one sentence a lawyer could repeat, with the deciding bound."""
    conf = conf_pct(st.confidence_level)
    ver = st.verification or {}
    high = ver.get("high")
    mx = pct(st.max_rate)
    stale = (" The cron has stalled: the last run is more than the grace period behind."
             if st.stale else "")
    if st.status == "breached":
        breach = next(a for a in st.alarms if a.kind == "breach")
        return (f"BREACHED on {breach.as_of.isoformat()}: with {conf} confidence the "
                f"harmful-output rate is above the maximum of {mx} ({breach.message}).{stale}")
    if st.status == "drift":
        first = st.alarms[0]
        return (f"DRIFT: {len(st.alarms)} alarm(s), the first on {first.as_of.isoformat()} "
                f"({first.kind}, {first.signal}): {first.message}. The pooled bound no longer "
                f"speaks for the current behaviour until the cause is understood.{stale}")
    if st.status in ("verified", "holding") and high is not None:
        window = (f" and at most {pct(ver.get('window_high'))} over its last "
                  f"{ver.get('window_nights')} nights" if ver.get("window_high") is not None
                  else "")
        head = (f"VERIFIED: over the whole period of {st.days} nights" if st.status ==
                "verified" else f"HOLDING (day {st.days_elapsed} of {st.days}): so far")
        tail = ("" if st.status == "verified" else
                " It can be verified only after the period ends, with enough nights run.")
        return (f"{head}, with {conf} confidence the harmful-output rate is at most "
                f"{pct(ver.get('period_high'))}{window}, below the maximum of {mx} "
                f"({st.n_harmful:,} harmful of {st.n:,} scored samples in "
                f"{st.runs_in_segment} runs).{tail}{stale}")
    bound = f"the upper bound is {pct(high)}" if high is not None else "no run yet"
    return (f"WATCHING (day {st.days_elapsed} of {st.days}): the data cannot yet show the "
            f"harmful-output rate below the maximum of {mx}: {bound}.{stale}")


def bound_lines(st: WatchStatus) -> list[str]:
    """The bounds behind the status, one sentence each (the report's "what it shows")."""
    conf = conf_pct(st.confidence_level)
    lines = []
    ver = st.verification or {}
    if ver:
        lines.append(
            f"Verification (decides holding / verified): exact one-sided upper bounds "
            f"{pct(ver.get('period_high'))} over the current segment ({ver.get('n_harmful', 0):,}"
            f"/{ver.get('n', 0):,}) and {pct(ver.get('window_high'))} over its last "
            f"{ver.get('window_nights')} nights ({ver.get('window_n_harmful', 0):,}/"
            f"{ver.get('window_n', 0):,}), at level {ver.get('alpha', 0):.3g} this look; both "
            f"must be below {pct(st.max_rate)}.")
    lines.append(
        f"Breach monitor: the {conf_pct((1 + st.confidence_level) / 2)} confidence sequence "
        f"of the pooled rate is {pct(st.cs_low)} to {pct(st.cs_high)} (valid however often "
        f"it is looked at); a breach is called when its lower bound passes the maximum.")
    lines.append(
        f"False alarms: at most {1 - st.confidence_level:g} for breach and for verified, at "
        f"most {st.drift_alpha:g} for all drift signals together ({conf} confidence).")
    if len(st.segments) > 1:
        lines.append(f"The model changed during the watch: {len(st.segments)} segments; only "
                     "the current one counts towards the bounds.")
    return lines


def timeline_embed(st: WatchStatus, png: bytes | None = None) -> Any:
    """The timeline as an embedded figure (`png`: already drawn bytes, to draw once)."""
    import base64

    from harness.html_report import EmbeddedFigure
    from harness.plots import figure_png
    from harness.watch.plot import timeline_figure

    data = base64.b64encode(png if png is not None else figure_png(timeline_figure(st)))
    return EmbeddedFigure(
        "watch-timeline", f"Watch {st.name}: timeline",
        "Timeline of the watch: each night's rate with its interval, the upper bound "
        "deciding holding and verified, the confidence sequence, the maximum, nights run "
        "and missing, alarms and production signals",
        f"data:image/png;base64,{data.decode('ascii')}")


def render_watch_html(st: WatchStatus, definition: WatchDefinition, *,
                      png: bytes | None = None) -> str:
    """The watch's report.html (self-contained: the timeline is an embedded PNG; `png`:
    the timeline already drawn)."""
    from harness.html_report import template_environment

    cov = st.coverage
    return str(template_environment().get_template(TEMPLATE).render(
        st=st, definition=definition, conf=conf_pct(st.confidence_level),
        sentence=status_sentence(st), status_class=_CLASS.get(st.status, "bad"),
        bound_lines=bound_lines(st), figures=[timeline_embed(st, png)], coverage=cov,
        missing=list(cov.nights_missing) if cov else [],
        backfilled=set(cov.nights_backfilled) if cov else set(),
        production=st.production))


def render_watch_markdown(st: WatchStatus) -> str:
    """The same report as Markdown (no plot: `timeline.png` sits beside it)."""
    out = [f"# Watch {st.name}: {st.status.upper()}", "", status_sentence(st), ""]
    out += [f"- {line}" for line in bound_lines(st)]
    cov = st.coverage
    if cov is not None:
        out.append(f"- Nights run {len(cov.nights_run)}, due {cov.nights_due}, missing "
                   f"{len(cov.nights_missing)}; verified needs {cov.nights_needed} of "
                   f"{st.days}.")
    out += ["", "## Alarms", ""]
    out += [f"- {a.as_of.isoformat()} {a.kind} [{a.signal}]: {a.message}" for a in st.alarms] \
        or ["none"]
    out += ["", "## Nights", "", "| night | run | scored | harmful | rate |",
            "|---|---|---|---|---|"]
    out += [f"| {p.as_of.isoformat()} | {p.run_id} | {p.n:,} | {p.n_harmful:,} | "
            f"{pct(p.rate)} |" for p in st.points]
    return "\n".join(out) + "\n"


def write_watch_report(st: WatchStatus, definition: WatchDefinition, path: str | Path, *,
                       png: bytes | None = None) -> Path:
    """Render and write the watch's report.html (owner-readable, like a run's)."""
    from harness.store import write_private_text

    out = Path(path)
    write_private_text(out, render_watch_html(st, definition, png=png))
    return out
