"""Building the parser stays cheap: no command pays for another's heavy imports."""

from __future__ import annotations

import argparse
import subprocess
import sys

from harness.cli import _COMMAND_MODULES, build_parser


def test_building_the_parser_imports_neither_scipy_nor_pandas_nor_openai() -> None:
    # `harness --help` and `harness validate` (a CI lint step) used to spend ~1.5 s
    # importing scipy because one command imported harness.stats at module level.
    code = ("import sys; from harness.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('scipy', 'pandas', 'openai', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def test_a_command_line_builds_only_its_own_subcommand_with_the_same_options() -> None:
    full = _subparsers(build_parser())
    assert set(full) == {m.rpartition(".")[2] for m in _COMMAND_MODULES}
    for name, sub in full.items():
        alone = _subparsers(build_parser(name))
        assert list(alone) == [name]
        assert alone[name].format_help() == sub.format_help()
    # Not a command (a typo, an option first): the whole parser, so errors list every command.
    assert set(_subparsers(build_parser("rnu"))) == set(full)


def test_harness_run_imports_no_other_subcommand() -> None:
    code = ("import sys\n"
            "from harness import cli\n"
            "try:\n"
            "    cli.main(['run', '--help'])\n"
            "except SystemExit:\n"
            "    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('harness.cli.') and "
            "m not in ('harness.cli.run', 'harness.cli._output')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1]
    assert out == "[]"
