"""`harness probes`: import benchmark files as probes, and list what probe files hold.

    harness probes import FORMAT FILE [--out PATH] [--category C] [--id-prefix P]
                                      [--severity S] [--benign]
    harness probes list [FILES_OR_DIRS...] [--json]

`list` prints counts per category and severity, never the prompt texts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from harness.cli._output import add_json_option
from harness.errors import EXIT_HOLDS, InputError
from harness.importers import FORMATS, import_file
from harness.taxonomy import CATEGORIES, SEVERITIES


def register(subparsers: Any) -> None:
    """Add the `probes` subcommand and its `import` and `list` actions."""
    parser = subparsers.add_parser(
        "probes", help="import benchmark files as probes; list probe files",
        description="Import public red-team benchmark files as probe JSONL, or count "
        "what probe files hold.")
    sub = parser.add_subparsers(dest="probes_command", metavar="ACTION")
    parser.set_defaults(func=_no_action, _parser=parser)

    imp = sub.add_parser(
        "import", help="convert a HarmBench/AdvBench/JailbreakBench CSV or a text file",
        description="Convert a benchmark file into validated probe JSONL with its source "
        "recorded. Categories are mapped to the taxonomy (docs/taxonomy.md); unmapped "
        "ones get --category (default dangerous-instructions, with a warning).")
    imp.add_argument("format", metavar="FORMAT", choices=FORMATS,
                     help=f"one of: {', '.join(FORMATS)}")
    imp.add_argument("file", metavar="FILE", type=Path, help="the file to import")
    imp.add_argument("--out", type=Path, default=None,
                     help="output JSONL (default: probes/imported/<FILE stem>.jsonl)")
    imp.add_argument("--category", default=None, metavar="C",
                     help="category for rows the mapping does not cover "
                     f"({', '.join(CATEGORIES)}; default dangerous-instructions)")
    imp.add_argument("--id-prefix", default=None, metavar="P",
                     help="prefix of probe ids (default per format: hb, adv, jbb, txt)")
    imp.add_argument("--severity", default=None, choices=SEVERITIES,
                     help="severity of every probe (default: the category's default)")
    imp.add_argument("--benign", action="store_true",
                     help="the rows are benign controls (e.g. JailbreakBench's benign set): "
                     "file them as over-refusal probes that must be answered")
    add_json_option(imp)
    imp.set_defaults(func=_cmd_import)

    lst = sub.add_parser(
        "list", help="count probes per category and severity",
        description="Validate probe files and print counts per category and severity "
        "(never the prompt texts).")
    lst.add_argument("paths", nargs="*", type=Path, metavar="FILES",
                     help="probe files or folders (default: every probes/**/*.jsonl)")
    lst.add_argument("--json", action="store_true", help="print the counts as JSON")
    lst.set_defaults(func=_cmd_list)


def _no_action(args: argparse.Namespace) -> int:
    args._parser.print_help(sys.stderr)
    return 2


def _cmd_import(args: argparse.Namespace) -> int:
    result, out = import_file(args.format, args.file, args.out, id_prefix=args.id_prefix,
                              default_category=args.category, severity=args.severity,
                              benign=args.benign)
    for warning in result.warnings:
        print(f"harness: warning: {warning}", file=sys.stderr)
    if args.json:
        from harness.cli._output import print_json

        print_json({"imported": len(result.probes), "file": str(args.file),
                    "format": args.format, "out": str(out),
                    "by_category": dict(result.counts_by_category()),
                    "warnings": list(result.warnings)})
        return EXIT_HOLDS
    counts = ", ".join(f"{c} {n}" for c, n in result.counts_by_category().items())
    print(f"imported {len(result.probes)} probes from {args.file} ({args.format}) "
          f"to {out}: {counts}"
          + (f" ({len(result.warnings)} warning(s))" if result.warnings else ""))
    return EXIT_HOLDS


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given; folders expanded to their *.jsonl files (recursively, sorted)."""
    if not paths:
        paths = [Path("probes")]
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(p.rglob("*.jsonl")))
        elif p.exists():
            out.append(p)
        else:
            raise InputError(f"{p}: no such file or folder; give probe .jsonl files or "
                             "folders holding them")
    if not out:
        raise InputError(f"no .jsonl probe files under {', '.join(map(str, paths))}")
    return out


def count_probes(paths: list[Path]) -> dict[str, Any]:
    """Load and validate probe files; counts per category x severity, per file, variants."""
    from harness.probes import load_probe_files

    probes = load_probe_files(paths)
    by_cat: dict[str, Counter[str]] = {}
    for probe in probes:
        by_cat.setdefault(probe.category, Counter())[probe.severity] += 1
    order = [c for c in CATEGORIES if c in by_cat] + sorted(set(by_cat) - set(CATEGORIES))
    return {
        "files": [str(p) for p in paths],
        "total": len(probes),
        "variants": sum(1 for p in probes if p.is_variant),
        "categories": {
            cat: {"total": sum(by_cat[cat].values()),
                  "severity": {s: by_cat[cat][s] for s in SEVERITIES}}
            for cat in order
        },
    }


def format_counts(counts: dict[str, Any]) -> str:
    """A plain-text table of `count_probes` output."""
    width = max([len("category"), *(len(c) for c in counts["categories"])])
    head = f"{'category':<{width}}  " + "  ".join(f"{s:>8}" for s in SEVERITIES) + "     total"
    lines = [head, "-" * len(head)]
    totals: Counter[str] = Counter()
    for cat, row in counts["categories"].items():
        totals.update(row["severity"])
        lines.append(f"{cat:<{width}}  "
                     + "  ".join(f"{row['severity'][s]:>8}" for s in SEVERITIES)
                     + f"  {row['total']:>8}")
    lines.append("-" * len(head))
    lines.append(f"{'all':<{width}}  " + "  ".join(f"{totals[s]:>8}" for s in SEVERITIES)
                 + f"  {counts['total']:>8}")
    extra = f", {counts['variants']} variants" if counts["variants"] else ""
    lines.append(f"{counts['total']} probes in {len(counts['files'])} file(s){extra}")
    return "\n".join(lines)


def _cmd_list(args: argparse.Namespace) -> int:
    counts = count_probes(expand_paths(list(args.paths)))
    if args.json:
        print(json.dumps(counts, indent=2))
    else:
        print(format_counts(counts))
    return EXIT_HOLDS
