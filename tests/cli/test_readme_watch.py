"""The README's watch example, run as written (slow: 60 nightly runs on the simulator):
one watch ends verified (exit 0), the other breached (exit 1), and list shows both."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from harness.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _commands() -> list[list[str]]:
    """The README's watch block as argv lists, the `for night in ...{01..30}` loop expanded."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Watch periods (nightly runs)", 1)[1].split("```sh", 1)[1]
    block = block.split("```", 1)[0]
    out: list[list[str]] = []
    loop: list[str] | None = None
    nights: list[str] = []
    for raw in block.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"for night in (\d{4}-\d{2})-\{(\d+)\.\.(\d+)\}; do$", line)
        if m:
            nights = [f"{m[1]}-{d:02d}" for d in range(int(m[2]), int(m[3]) + 1)]
            loop = []
        elif line == "done":
            assert loop is not None
            out += [shlex.split(cmd.replace("$night", n)) for n in nights for cmd in loop]
            loop = None
        elif loop is not None:
            loop.append(line)
        else:
            out.append(shlex.split(line))
    assert all(argv[0] == "harness" for argv in out)
    return [argv[1:] for argv in out]


def test_the_readme_lists_a_runnable_example() -> None:
    cmds = _commands()
    # init x2, 30 nights x2, ingest, status x2, report, list
    assert len(cmds) == 2 + 60 + 1 + 2 + 1 + 1
    assert cmds[2][:4] == ["watch", "run", "fix-holds", "--as-of"]


@pytest.mark.slow
def test_the_readme_watch_example_ends_verified_and_breached(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("suites", "probes", "docs"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    codes: dict[str, int] = {}
    for argv in _commands():
        code = main(argv)
        if argv[:2] == ["watch", "status"]:
            codes[argv[2]] = code
        elif argv[:2] == ["watch", "list"]:
            assert code == 0
        else:
            assert code in (0, 1), argv
    out = capsys.readouterr().out
    assert codes == {"fix-holds": 0, "fix-drifts": 1}
    assert "watch fix-holds: VERIFIED" in out and "watch fix-drifts: BREACHED" in out
    assert "ALARM model-update" in out and "ALARM production [user-reports]" in out
    assert (tmp_path / "drifts.png").read_bytes()[:4] == b"\x89PNG"
    page = (tmp_path / "results" / "watches" / "fix-drifts" / "report.html").read_text()
    assert 'id="plot-watch-timeline"' in page and "BREACHED" in page
