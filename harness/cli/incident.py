"""`harness incident new|stage|status`: turn incident prompts into a suite and track it.

Exit codes of `status`: 0 the mitigation holds and generalizes, 1 it does not (exact prompts
breached, variants leaking, or over-refusal), 3 inconclusive, 2 usage, 4 infrastructure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from harness.cli._output import add_json_option
from harness.errors import EXIT_HOLDS, UsageError


# long: the argparse table of the incident subcommands and their flags
def register(sub: Any) -> None:
    p = sub.add_parser(
        "incident", help="create an incident suite from its prompts, record stage handoffs, "
        "and show whether the mitigation generalizes",
        description="Incident workflow: `new` writes suites/incidents/NAME.yaml (exact prompts, "
        "variants from the mutators, the context matrix, thresholds from the severity matrix); "
        "`stage` records a handoff; `status` reports exact-versus-variant rates and their gap.")
    isub = p.add_subparsers(dest="incident_command", metavar="ACTION")

    new = isub.add_parser("new", help="create suites/incidents/NAME.yaml from a prompts file",
                          description="Write DIR/NAME.yaml and DIR/NAME.probes.jsonl: the "
                          "exact prompts, N variants of each, the default incident context "
                          "matrix, over-refusal controls and thresholds from the severity "
                          "matrix. The stage starts at stop-the-bleed.")
    new.add_argument("name", help="incident name (lower-case letters, digits, - and _)")
    new.add_argument("--prompts", required=True, metavar="FILE",
                     help="text file, one prompt a line (# comments; or blocks separated by "
                          "--- lines), or a probes .jsonl file")
    new.add_argument("--category", default="dangerous-instructions", metavar="C",
                     help="harm category of the prompts (taxonomy id; default "
                          "dangerous-instructions)")
    new.add_argument("--variants", type=int, default=20, metavar="N",
                     help="mutator variants per exact prompt (default 20)")
    new.add_argument("--families", default=None, metavar="F,F",
                     help="mutator families to draw from (noise, encoding, wrapper, injection, "
                          "multi-turn; default all)")
    new.add_argument("--deployment", default="general", metavar="D",
                     help="severity-matrix column (general, healthcare, legal, finance, "
                          "children)")
    new.add_argument("--seed", type=int, default=0, metavar="S", help="variant and run seed")
    new.add_argument("--samples", type=int, default=None, metavar="N",
                     help="samples per cell (default: enough for the exact prompts to show "
                          "'below' with zero harmful samples)")
    new.add_argument("--controls", default=None, metavar="FILE",
                     help="over-refusal control probes (default: the library's "
                          "probes/library/over-refusal.jsonl shipped next to the harness "
                          "package, else under the current directory)")
    new.add_argument("--no-controls", action="store_true", help="no over-refusal controls")
    new.add_argument("--dir", default="suites/incidents", metavar="DIR",
                     help="where incident suites live")
    new.add_argument("--force", action="store_true", help="overwrite an existing incident")
    new.add_argument("--max-calls", type=int, default=None, metavar="N",
                     help="refuse (exit 2, nothing written) when one run of the new suite "
                          "would make more than N model calls (samples plus the judge and "
                          "moderation calls its probes' detectors make); the planned number is "
                          "always printed")
    new.add_argument("--paraphrase-target", default=None, metavar="SPEC",
                     help="OpenAI-compatible model for paraphrase/translation variants, e.g. "
                          "openai:gpt-4o-mini (or $HARNESS_PARAPHRASE_TARGET); optional")
    new.add_argument("--base-url", default=None, metavar="URL",
                     help="endpoint of the paraphrase target")
    new.add_argument("--api-key-env", default=None, metavar="NAME",
                     help="environment variable with the paraphrase target's API key")
    new.add_argument("--rewrites", default="paraphrase", metavar="K,K",
                     help="model rewrites per prompt when a paraphrase target is set: "
                          "paraphrase, translate:<lang> (default paraphrase)")
    add_json_option(new)
    new.set_defaults(func=cmd_new)

    stage = isub.add_parser("stage", help="record a stage handoff with a note",
                            description="Set the incident's stage (stop-the-bleed, fan-out, "
                            "fix-at-source) and append {stage, time, note} to its history.")
    stage.add_argument("name", help="incident name (or the suite path)")
    stage.add_argument("stage", help="stop-the-bleed, fan-out or fix-at-source")
    stage.add_argument("--note", default="", help="handoff note (what was done, what is next)")
    stage.add_argument("--by", default=None, metavar="WHO",
                       help="who hands over (default: $HARNESS_RESPONDER, else $USER); shown "
                            "in the incident dossier")
    stage.add_argument("--dir", default="suites/incidents", metavar="DIR")
    add_json_option(stage)
    stage.set_defaults(func=cmd_stage)

    status = isub.add_parser(
        "status", help="exact-versus-variant rates and gap from the latest run",
        description="Read the latest run of the incident suite under --out (or run it with "
        "--run) and report, per stage, the exact prompts' rate, the variants' rate per "
        "mutator family and the exact-versus-variant gap with its interval. Exit 0 holds and "
        "generalizes, 1 does not, 3 inconclusive.")
    status.add_argument("name", help="incident name (or the suite path)")
    status.add_argument("--run", action="store_true", help="run the suite first")
    from harness.cli.run import add_target_options

    add_target_options(status)
    status.add_argument("--out", default="results", metavar="DIR", help="results folder")
    status.add_argument("--samples", type=int, default=None, metavar="N",
                        help="with --run: samples per cell")
    status.add_argument("--dir", default="suites/incidents", metavar="DIR")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--quiet", action="store_true", help="no progress bar")
    status.set_defaults(func=cmd_status)

    report = isub.add_parser(
        "report", help="the incident dossier (HTML or Markdown) for the people running it",
        description="Stages with timestamps, who handed over and what was run, the exact-prompt "
        "rate, variant families and the exact-versus-variant gap, over-refusal controls, "
        "watch status and open risks, in plain language with intervals and no prompt or "
        "output text. Exit 0 when written, 2 when the incident or its runs are missing.")
    report.add_argument("name", help="incident name (or the suite path)")
    report.add_argument("--format", choices=("html", "md"), default="html")
    report.add_argument("--output", default=None, metavar="FILE",
                        help="write here (default: RESULTS/incidents/NAME.html or .md; '-' for "
                             "stdout)")
    report.add_argument("--out", default="results", metavar="DIR", help="results folder")
    report.add_argument("--dir", default="suites/incidents", metavar="DIR")
    report.add_argument("--json", action="store_true",
                        help="print where the dossier was written as JSON (errors as JSON too)")
    report.set_defaults(func=cmd_report)
    p.set_defaults(func=_cmd_help(p))


def _cmd_help(parser: argparse.ArgumentParser) -> Any:
    def show(args: argparse.Namespace) -> int:
        raise UsageError("missing ACTION: use `harness incident new|stage|status|report` "
                         "(see `harness incident --help`)")
    return show


def cmd_new(args: argparse.Namespace) -> int:
    from harness.incidents import create_incident

    families = [f.strip() for f in args.families.split(",") if f.strip()] if args.families \
        else None
    from harness.settings import environment

    target = args.paraphrase_target or environment().paraphrase_target
    rewrite = None
    kinds: list[str] = []
    if target:
        from harness.mutators.rewrite import RewriteConfig

        rewrite = RewriteConfig(target=target, base_url=args.base_url,
                                api_key_env=args.api_key_env)
        kinds = [k.strip() for k in args.rewrites.split(",") if k.strip()]
    if args.no_controls and args.controls:
        raise UsageError("give --controls FILE or --no-controls, not both")
    if args.max_calls is not None and args.max_calls < 1:
        raise UsageError(f"--max-calls must be at least 1, got {args.max_calls}")
    kwargs: dict[str, Any] = {}
    if args.no_controls:
        kwargs["controls"] = None
    elif args.controls:
        kwargs["controls"] = Path(args.controls)
    created = create_incident(
        args.name, args.prompts, category=args.category, variants=args.variants,
        seed=args.seed, deployment=args.deployment, families=families, directory=args.dir,
        samples=args.samples, rewrite=rewrite, rewrite_kinds=kinds, force=args.force,
        max_calls=args.max_calls, **kwargs)
    if args.json:
        from harness.cli._output import print_json

        print_json({"suite": str(created.suite_path), "probes": str(created.probes_path),
                    "n_exact": created.n_exact, "n_variants": created.n_variants,
                    "controls": created.controls,
                    "planned_calls": created.plan.calls if created.plan else None,
                    "planned_judge_calls": created.plan.n_judge_calls if created.plan else None,
                    "planned_moderation_calls": (created.plan.n_moderation_calls
                                                 if created.plan else None),
                    "notes": list(created.notes),
                    "skipped_rewrites": list(created.skipped_rewrites)})
        return EXIT_HOLDS
    print(f"wrote {created.suite_path} ({created.n_exact} exact prompt(s), "
          f"{created.n_variants} variant(s)) and {created.probes_path}")
    if created.plan is not None:
        print(f"planned: {created.plan.calls:,} model calls a run = {created.plan.describe()} "
              "(refuse bigger plans with --max-calls N; shrink with --variants, --samples)")
    if created.controls:
        print(f"over-refusal controls: {created.controls}")
    if not target:
        print("paraphrase/translate variants skipped: no paraphrase target configured "
              "(--paraphrase-target openai:<model> --base-url URL)")
    for note in created.notes:
        print(f"note: {note}")
    for skipped in created.skipped_rewrites:
        print(f"skipped rewrite: {skipped}")
    print(f"next: harness run {created.suite_path} --target sim:patched   # or your model")
    print(f"then: harness incident status {args.name}")
    return EXIT_HOLDS


def cmd_stage(args: argparse.Namespace) -> int:
    from harness.incidents import set_stage
    from harness.settings import environment

    by = args.by if args.by is not None else (environment().responder or "")
    block = set_stage(args.name, args.stage, args.note, directory=args.dir, by=by)
    if args.json:
        from harness.cli._output import print_json

        print_json({"incident": block.get("name", args.name), "stage": block["stage"],
                    "history": block.get("stages", [])})
        return EXIT_HOLDS
    print(f"incident {block.get('name', args.name)}: stage {block['stage']} "
          f"(handoff {len(block.get('stages', []))} recorded)")
    return EXIT_HOLDS


def cmd_status(args: argparse.Namespace) -> int:
    from harness.incidents import incident_status, render_status

    options = None
    if args.run:
        from harness.cli.run import target_options_from_args
        from harness.run import RunOptions
        from harness.settings import Overrides, environment

        if args.samples is not None and args.samples < 1:
            raise UsageError(f"--samples must be at least 1, got {args.samples}")
        options = RunOptions(
            target=args.target or environment().target or "sim",
            out_dir=Path(args.out),
            target_options=target_options_from_args(args),
            overrides=Overrides(samples=args.samples),
            progress=False if args.quiet else None)
    elif args.target or args.samples is not None:
        raise UsageError("--target and --samples only apply with --run")
    status = incident_status(args.name, directory=args.dir, results_dir=Path(args.out),
                             run=args.run, run_options=options)
    if args.json:
        print(json.dumps(status.to_dict(), indent=2, default=str))
    else:
        print(render_status(status), end="")
    return status.exit_code


def cmd_report(args: argparse.Namespace) -> int:
    from harness.cli._output import print_json
    from harness.incident_report import (
        build_dossier,
        render_dossier_html,
        render_dossier_markdown,
    )
    from harness.store import make_private_dir, write_private_text

    dossier = build_dossier(args.name, directory=args.dir, results_dir=Path(args.out))
    text = render_dossier_html(dossier) if args.format == "html" else \
        render_dossier_markdown(dossier)
    if args.output == "-":
        sys.stdout.write(text)
        return EXIT_HOLDS
    if args.output:
        path = Path(args.output)
    else:
        folder = make_private_dir(make_private_dir(Path(args.out)) / "incidents")
        path = folder / f"{dossier.name}.{args.format}"
    write_private_text(path, text)
    if args.json:
        print_json({"incident": dossier.name, "format": args.format, "path": str(path),
                    "conclusion": dossier.conclusion, "risks": list(dossier.risks)})
    else:
        print(f"dossier: {path} ({dossier.conclusion}; {len(dossier.risks)} open risk(s))")
    return EXIT_HOLDS
