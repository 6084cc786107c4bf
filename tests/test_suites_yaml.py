"""Suite YAML is parsed within limits: hostile files give located problems, fast, in bounded
memory (harness.suites._yaml)."""

from __future__ import annotations

import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from harness.suites import validate_files
from harness.suites._yaml import MAX_DEPTH, load_yaml_text

# Nine levels of nine aliases: 9**9 = 387 million strings once expanded (the "billion laughs").
ALIAS_BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]"
       for i in range(8)]) + "\n"


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return [str(p) for p in validate_files([path])]


def test_alias_bomb_is_refused_fast_and_small(tmp_path: Path) -> None:
    assert len(ALIAS_BOMB) < 400
    t0 = time.process_time()  # CPU time: the machine's load does not count
    problems = problems_of(tmp_path, ALIAS_BOMB)
    assert time.process_time() - t0 < 1.0  # ~0.2 s here; was 48 s before the limits
    tracemalloc.start()  # measured apart: tracing makes it ~5x slower
    problems_of(tmp_path, ALIAS_BOMB)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 100 * 2**20  # ~8 MB; was 1.2 GB
    assert len(problems) == 1 and "expands to more than" in problems[0]
    assert problems[0].startswith(f"{tmp_path / 's.yaml'}:")


def test_alias_bomb_one_level_deeper_still_refused(tmp_path: Path) -> None:
    deeper = ALIAS_BOMB + "j: &j [" + ",".join(["*i"] * 9) + "]\n"
    t0 = time.process_time()
    problems = problems_of(tmp_path, deeper)
    assert time.process_time() - t0 < 1.0
    assert "expands to more than" in problems[0]


def test_validate_cli_on_alias_bomb_exits_2_under_a_second(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB, encoding="utf-8")
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "validate", str(path)],
                          capture_output=True, text=True, timeout=60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "bomb.yaml:" in proc.stderr
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < 5.0  # CPU seconds of the child, interpreter start-up included


@pytest.mark.parametrize(("text", "words"), [
    ("a: &a [1, *a]\n", "recursive alias"),
    ("a: &a {b: *a}\n", "recursive alias"),
    ("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n", "merge keys"),
    ("? [1, 2]\n: value\n", "key must be a plain value"),
    ("? {a: 1}\n: value\n", "key must be a plain value"),
    ("name: !foo bar\n", "unsupported tag '!foo'"),
    ("x: !!python/object:os.system {}\n", "unsupported tag"),
    ("x: !!set {a, b}\n", "unsupported tag"),
    ("x: !!binary aGVsbG8=\n", "unsupported tag"),
    ("x: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n", "nested deeper"),
    ("x: " + "[" * 5000 + "]" * 5000 + "\n", "nested"),
])
def test_hostile_constructs_are_located_problems(tmp_path: Path, text: str, words: str) -> None:
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1, problems
    assert words in problems[0]
    assert ": yaml: " in problems[0]


def test_too_many_aliases(tmp_path: Path) -> None:
    text = "a: &a 1\nb: [" + ",".join(["*a"] * 1500) + "]\n"
    problems = problems_of(tmp_path, text)
    assert "more than 1000 aliases" in problems[0]


def test_plain_yaml_and_a_few_aliases_still_load() -> None:
    obj, lines = load_yaml_text(
        "ctx: &c {name: guarded, system: be careful}\ncontexts: [*c]\nt: [0, 0.7, 1.0]\n"
        "when: 2026-01-02\nok: true\nnothing: null\n", "f.yaml")
    assert obj["contexts"] == [{"name": "guarded", "system": "be careful"}]
    assert obj["t"] == [0, 0.7, 1.0] and obj["ok"] is True and obj["nothing"] is None
    assert str(obj["when"]) == "2026-01-02"
    assert lines[("t", 1)] == 3
