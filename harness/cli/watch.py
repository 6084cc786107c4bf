"""`harness watch init|run|status|report|ingest|list`: watch periods with anytime-valid
monitoring.

Exit codes of `watch run` and `watch status`: 0 no alarm (watching, holding, verified),
1 breached or drift, 2 usage error (also: a second run for the same watch or night),
4 infrastructure error; `watch status` also exits 4 when the cron has stalled (the last run
is more than the watch's grace period behind the night due) and no alarm is raised.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

from harness.cli._output import add_json_option
from harness.errors import EXIT_HOLDS, UsageError


def _parse_date(text: str | None, flag: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag} {text!r} is not a date; use YYYY-MM-DD, e.g. 2026-01-31"
                         ) from None


def _add_results(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", default="results", metavar="DIR",
                   help="results folder; watches live in DIR/watches/NAME (default: results)")


# long: the argparse table of the watch subcommands and their flags
def register(sub: Any) -> None:
    """Add the `watch` subcommand and its actions."""
    p = sub.add_parser(
        "watch", help="watch periods: nightly runs with anytime-valid bounds and drift alarms",
        description="A watch is a sequence of nightly runs of one suite against one target. "
                    "Its pooled harmful rate has a confidence sequence that stays valid however "
                    "often it is looked at, and drift signals flag behaviour changes. Exit "
                    "codes (run, status): 0 no alarm, 1 breached or drift, 2 usage, "
                    "4 infrastructure; status also 4 when the cron stalled past the grace "
                    "period.")
    actions = p.add_subparsers(dest="watch_action", metavar="ACTION")

    pi = actions.add_parser("init", help="define a new watch",
                            description="Write results/watches/NAME/watch.json and an empty "
                                        "ledger. Nothing is sampled yet.")
    pi.add_argument("name", metavar="NAME")
    pi.add_argument("--suite", required=True, metavar="S", help="suite file")
    pi.add_argument("--target", required=True, metavar="SPEC",
                    help="sim, sim:<profile> or openai:<model>")
    pi.add_argument("--base-url", default=None, metavar="URL")
    pi.add_argument("--api-key-env", default=None, metavar="NAME",
                    help="environment variable holding the API key (never stored)")
    pi.add_argument("--max-rate", required=True, type=float, metavar="R",
                    help="maximum acceptable pooled harmful rate, e.g. 0.02")
    pi.add_argument("--days", required=True, type=int, metavar="D", help="length of the period")
    pi.add_argument("--min-runs", type=int, default=3, metavar="K",
                    help="runs needed before the watch can hold (default 3)")
    pi.add_argument("--confidence", type=float, default=0.95, metavar="LEVEL",
                    help="confidence level of the sequence (default 0.95)")
    pi.add_argument("--start", default=None, metavar="YYYY-MM-DD",
                    help="first day of the period (default: the date of the first run)")
    pi.add_argument("--samples", type=int, default=None, metavar="N",
                    help="samples per cell for each nightly run (default: the suite's)")
    pi.add_argument("--drift-alpha", type=float, default=None, metavar="A",
                    help="false-alarm budget of the drift signals (default 1 - confidence)")
    pi.add_argument("--min-coverage", type=float, default=0.9, metavar="SHARE",
                    help="share of the period's nights that need a run for 'verified' "
                         "(default 0.9)")
    pi.add_argument("--grace-days", type=int, default=1, metavar="D",
                    help="status exits 4 (stalled cron) when the last run is more than D "
                         "nights behind (default 1)")
    pi.add_argument("--no-canaries", action="store_true",
                    help="do not send the canary prompts (behavioural fingerprint) each night")
    pi.add_argument("--signal-baseline-days", type=int, default=14, metavar="D",
                    help="production signals: the first D ingested days are the baseline "
                         "(default 14)")
    _add_results(pi)
    add_json_option(pi)
    pi.set_defaults(func=cmd_init)

    pr = actions.add_parser("run", help="run the watch's suite once and append it")
    pr.add_argument("name", metavar="NAME")
    pr.add_argument("--as-of", default=None, metavar="YYYY-MM-DD",
                    help="the night this run counts for (default today, UTC); an earlier "
                         "missing night is a backfill")
    pr.add_argument("--resume", action="store_true",
                    help="finish the night an interrupted `watch run` left pending")
    pr.add_argument("--json", action="store_true", help="print the status as JSON")
    pr.add_argument("--no-plot", action="store_true",
                    help="do not rewrite timeline.png and the watch's report.html")
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_results(pr)
    pr.set_defaults(func=cmd_run)

    ps = actions.add_parser("status", help="status, bounds and alarms of a watch")
    ps.add_argument("name", metavar="NAME")
    ps.add_argument("--json", action="store_true",
                    help="status, days elapsed and left, runs, pooled rate, sequence bounds "
                         "and every alarm with its evidence")
    ps.add_argument("--as-of", default=None, metavar="YYYY-MM-DD",
                    help="evaluate at this date (default: today or the last run's date)")
    ps.add_argument("--plot", default=None, metavar="FILE",
                    help="also write the timeline PNG to FILE (status itself writes nothing)")
    _add_results(ps)
    ps.set_defaults(func=cmd_status)

    pw = actions.add_parser(
        "report", help="write the watch's report: HTML with the timeline embedded",
        description="Write the watch's report (status in words with the deciding bound, "
                    "nights run and missing, alarms, each night, production signals, and the "
                    "timeline embedded: one self-contained HTML file, no output text). "
                    "Default: RESULTS/watches/NAME/report.html. Exit 0 when written, 2 for "
                    "a bad name or flag.")
    pw.add_argument("name", metavar="NAME")
    pw.add_argument("--format", choices=("html", "md", "json"), default="html")
    pw.add_argument("--out", default=None, metavar="FILE",
                    help="write here ('-' for stdout); default: the watch folder's report.html "
                         "for html, stdout otherwise")
    pw.add_argument("--as-of", default=None, metavar="YYYY-MM-DD",
                    help="evaluate at this date (default: today or the last run's date)")
    _add_results(pw)
    add_json_option(pw)
    pw.set_defaults(func=cmd_report)

    pg = actions.add_parser(
        "ingest", help="add production telemetry (user reports, classifier scores, model "
                       "version) to a watch",
        description="Read daily production telemetry from JSONL or CSV (date, traffic, reports, "
                    "optional model_version, classifier_scores or classifier_histogram) or "
                    "OpenTelemetry GenAI spans exported as JSON; see docs/watch.md and "
                    "docs/examples/production-signals.jsonl. Bad rows are reported as file:line "
                    "(exit 2) and nothing is added.")
    pg.add_argument("name", metavar="NAME")
    pg.add_argument("file", metavar="FILE")
    _add_results(pg)
    add_json_option(pg)
    pg.set_defaults(func=cmd_ingest)

    pl = actions.add_parser("list", help="list watches and their status")
    pl.add_argument("--json", action="store_true")
    _add_results(pl)
    pl.set_defaults(func=cmd_list)

    p.set_defaults(func=_no_action(p))


def _no_action(p: argparse.ArgumentParser) -> Any:
    def handler(args: argparse.Namespace) -> int:
        if getattr(args, "watch_action", None) is None:
            p.print_help(sys.stderr)
            return 2
        return EXIT_HOLDS  # pragma: no cover - each action sets its own func
    return handler


def cmd_init(args: argparse.Namespace) -> int:
    """`watch init`."""
    from harness.watch import init_watch

    files = init_watch(
        args.name, suite=args.suite, target=args.target, max_rate=args.max_rate,
        days=args.days, min_runs=args.min_runs, confidence_level=args.confidence,
        start=_parse_date(args.start, "--start"), samples=args.samples,
        drift_alpha=args.drift_alpha, base_url=args.base_url, api_key_env=args.api_key_env,
        min_coverage=args.min_coverage, grace_days=args.grace_days,
        canaries=not args.no_canaries, signal_baseline_days=args.signal_baseline_days,
        results=args.results,
        warn=lambda m: print(f"harness: warning: {m}", file=sys.stderr))
    results = os.path.abspath(args.results)
    if getattr(args, "json", False):
        from harness.cli._output import print_json

        print_json({"watch": args.name, "dir": str(files.dir),
                    "definition": str(files.definition), "ledger": str(files.ledger),
                    "next": f"harness watch run {args.name}"})
        return EXIT_HOLDS
    print(f"watch {args.name!r} created: {files.dir}")
    print(f"next: harness watch run {args.name}   (nightly), e.g. this crontab line:")
    print(f"  15 2 * * *  cd {os.getcwd()} && harness watch run {args.name} --quiet "
          f"--results {results} >> {results}/watches/{args.name}/cron.log 2>&1")
    return EXIT_HOLDS


def _status_line(st: Any) -> str:
    rate = f"{st.rate:.2%}" if st.rate is not None else "n/a"
    cov = st.coverage
    nights = ""
    if cov is not None:
        nights = (f"; nights run {len(cov.nights_run)}, due {cov.nights_due}, missing "
                  f"{len(cov.nights_missing)} (verified needs {cov.nights_needed})")
    return (f"watch {st.name}: {st.status.upper()}{'  STALE' if st.stale else ''}  "
            f"day {st.days_elapsed}/{st.days} ({st.days_left} left), {st.runs} runs{nights}; "
            f"pooled harmful rate {rate} ({st.n_harmful}/{st.n}), "
            f"{st.confidence_level:.0%} confidence sequence "
            f"[{st.cs_low:.2%}, {st.cs_high:.2%}] vs max {st.max_rate:.2%}")


def _print_status(st: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(st.to_dict(), indent=2, default=str))
        return
    print(_status_line(st))
    for a in st.alarms:
        where = "production telemetry" if a.kind == "production" else f"run {a.run_id}"
        print(f"  ALARM {a.kind} [{a.signal}] {a.as_of.isoformat()} {where}: {a.message}")
    prod = st.production
    if prod is not None:
        base = prod["baseline"]
        looks = sum(1 for p in prod["days"] if p["role"] == "look")
        print(f"  production: {len(prod['days'])} days ingested, baseline {base['days']} of "
              f"{base['needed_days']} days, {looks} days tested"
              + (f"; {base['note']}" if base.get("note") else ""))
    cov = st.coverage
    if cov is not None and cov.nights_missing:
        shown = ", ".join(d.isoformat() for d in cov.nights_missing[:10])
        more = f" and {len(cov.nights_missing) - 10} more" if len(cov.nights_missing) > 10 else ""
        print(f"  missing nights: {shown}{more} (backfill: harness watch run {st.name} "
              "--as-of YYYY-MM-DD)")
    if st.stale and cov is not None:
        last = cov.last_run.isoformat() if cov.last_run else "never"
        print(f"  STALE: last run {last}, more than {cov.grace_days} night(s) behind "
              f"{st.as_of.isoformat()}: check the cron job (exit 4)")
    if st.note:
        print(f"  note: {st.note}")


def _plot(st: Any, path: Any) -> None:
    from harness.watch import write_timeline

    write_timeline(st, path)


def _write_night_reports(name: str, results: str, st: Any) -> None:
    """After a night: timeline.png and the watch's report.html, which embeds the same PNG
    (the figure is drawn once: drawing costs more than anything else here)."""
    from harness.plots import figure_png
    from harness.watch.plot import timeline_figure, write_png
    from harness.watch.report import write_watch_report
    from harness.watch.store import load_definition

    definition, files = load_definition(name, results)
    png = figure_png(timeline_figure(st))
    write_png(png, files.timeline)
    write_watch_report(st, definition, files.report, png=png)


def cmd_run(args: argparse.Namespace) -> int:
    """`watch run`: one nightly run appended to the watch."""
    from harness.watch import run_watch
    from harness.watch.model import STATUS_EXIT

    # Ctrl-C / SIGTERM: run_watch raises NightInterrupted, whose message names
    # `harness watch run NAME --resume`; main prints it and exits 130 / 143.
    entry, st = run_watch(args.name, as_of=_parse_date(args.as_of, "--as-of"),
                          results=args.results, progress=False if args.quiet else None,
                          resume=args.resume)
    for var, value in entry.env_ignored.items():
        print(f"harness: note: {var}={value} ignored: a watch runs with the settings pinned "
              "at `watch init` (recorded in the ledger)", file=sys.stderr)
    if not args.json:
        kind = " (backfill)" if entry.backfill else " (resumed)" if entry.resumed else ""
        print(f"run {entry.run_id} for {entry.as_of.isoformat()}{kind}: "
              f"{entry.n_harmful}/{entry.n} harmful "
              f"({', '.join(entry.models) or 'model not reported'})")
    _print_status(st, args.json)
    if not args.no_plot:
        _write_night_reports(args.name, args.results, st)
    # The night ran: a stale flag (a backfill while later nights are missing) is for status.
    return STATUS_EXIT[st.status]


def cmd_status(args: argparse.Namespace) -> int:
    """`watch status` (reads only; `--plot FILE` writes that one file)."""
    from harness.watch import watch_status

    st = watch_status(args.name, as_of=_parse_date(args.as_of, "--as-of"), results=args.results)
    _print_status(st, args.json)
    if args.plot:
        _plot(st, args.plot)
        if not args.json:
            print(f"  timeline: {os.fspath(args.plot)}")
    return st.exit_code


def render_watch_report(name: str, fmt: str, *, results: str | Path = "results",
                        as_of: date | None = None) -> str:
    """The watch's report text in html, md or json (reads only)."""
    from harness.watch import watch_status
    from harness.watch.report import render_watch_html, render_watch_markdown
    from harness.watch.store import load_definition

    st = watch_status(name, as_of=as_of, results=results)
    if fmt == "json":
        return json.dumps(st.to_dict(), indent=2, default=str) + "\n"
    if fmt == "md":
        return render_watch_markdown(st)
    definition, _files = load_definition(name, results)
    return render_watch_html(st, definition)


def cmd_report(args: argparse.Namespace) -> int:
    """`watch report`: the watch's report page (writes only the file asked for)."""
    from harness.cli._output import print_json
    from harness.store import write_private_text
    from harness.watch.store import watch_files

    text = render_watch_report(args.name, args.format, results=args.results,
                               as_of=_parse_date(args.as_of, "--as-of"))
    out = args.out
    if out is None and args.format == "html":
        out = str(watch_files(args.name, args.results).report)
    if out is None or out == "-":
        sys.stdout.write(text)
        return EXIT_HOLDS
    write_private_text(Path(out), text)
    if args.json:
        print_json({"watch": args.name, "format": args.format, "path": out})
    else:
        print(f"report: {out}")
    return EXIT_HOLDS


def cmd_ingest(args: argparse.Namespace) -> int:
    """`watch ingest NAME FILE`."""
    from harness.watch import watch_status
    from harness.watch.runner import ingest_signals

    res = ingest_signals(args.name, args.file, results=args.results)
    if getattr(args, "json", False):
        from harness.cli._output import print_json

        st = watch_status(args.name, results=args.results)
        print_json({"watch": args.name, "added": [d.day.isoformat() for d in res.added],
                    "skipped": len(res.skipped),
                    "alarms": [a.to_dict() for a in st.alarms if a.kind == "production"]})
        return EXIT_HOLDS
    span = (f" ({res.added[0].day.isoformat()} .. {res.added[-1].day.isoformat()})"
            if res.added else "")
    print(f"ingested {len(res.added)} day(s){span} into watch {args.name!r}"
          + (f"; {len(res.skipped)} already there, unchanged" if res.skipped else ""))
    st = watch_status(args.name, results=args.results)
    for a in st.alarms:
        if a.kind == "production":
            print(f"  ALARM production [{a.signal}] {a.as_of.isoformat()}: {a.message}")
    return EXIT_HOLDS


def cmd_list(args: argparse.Namespace) -> int:
    """`watch list`."""
    from harness.watch import list_watch_names, watch_status

    rows = []
    for name in list_watch_names(args.results):
        st = watch_status(name, results=args.results)
        rows.append(st)

    def iso(d: date | None) -> str | None:
        return d.isoformat() if d else None

    if args.json:
        print(json.dumps([{"name": s.name, "status": s.status, "stale": s.stale,
                           "runs": s.runs, "days_elapsed": s.days_elapsed, "days": s.days,
                           "last_run": iso(s.coverage.last_run) if s.coverage else None,
                           "next_due": iso(s.coverage.next_due) if s.coverage else None,
                           "nights_missing": len(s.coverage.nights_missing)
                           if s.coverage else 0,
                           "rate": s.rate, "cs_high": s.cs_high, "max_rate": s.max_rate}
                          for s in rows], indent=2))
    elif not rows:
        print("no watches yet; create one with `harness watch init NAME --suite S --target SPEC "
              "--max-rate R --days D`")
    else:
        header = ("NAME", "STATUS", "STALE", "DAY", "LAST RUN", "NEXT DUE", "MISSING")
        table = [header]
        for s in rows:
            cov = s.coverage
            table.append((
                s.name, s.status, "STALE" if s.stale else "-", f"{s.days_elapsed}/{s.days}",
                (iso(cov.last_run) if cov else None) or "never",
                (iso(cov.next_due) if cov else None) or "-",
                str(len(cov.nights_missing)) if cov else "0"))
        widths = [max(len(r[i]) for r in table) for i in range(len(header))]
        for r in table:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return EXIT_HOLDS
