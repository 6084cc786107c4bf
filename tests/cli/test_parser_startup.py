"""Building the parser stays cheap: no command pays for another's heavy imports."""

from __future__ import annotations

import subprocess
import sys


def test_building_the_parser_imports_neither_scipy_nor_pandas_nor_openai() -> None:
    # `harness --help` and `harness validate` (a CI lint step) used to spend ~1.5 s
    # importing scipy because one command imported harness.stats at module level.
    code = ("import sys; from harness.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('scipy', 'pandas', 'openai', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
