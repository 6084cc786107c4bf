from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ValidationError
from harness.probes import check_probe_file, load_probe_files, load_probes, parse_probe

GOOD = {"id": "p-1", "category": "self-harm", "severity": "high", "prompt": "a request",
        "expect": {"must_refuse": True}, "tags": ["t"], "source": "test"}


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_shorthand_expectations_become_detectors() -> None:
    obj = dict(GOOD, expect={"must_refuse": True, "must_not_match": ["PWNED-\\d+"],
                             "no_canary": "CANARY-AB12"})
    probe = parse_probe(obj, "f.jsonl", 1)
    assert probe is not None
    names = [d.name for d in probe.expect.detectors]
    assert names == ["refusal", "pattern", "canary"]
    assert probe.expect.detectors[0].params["mode"] == "must-refuse"
    assert probe.messages[0].role == "user"


def test_every_problem_is_reported_with_its_line(tmp_path: Path) -> None:
    f = write(tmp_path / "p.jsonl", [
        json.dumps(GOOD),
        "",
        "{not json",
        json.dumps(dict(GOOD, id="p-2", category="selfharm", severity="extreme")),
        json.dumps(dict(GOOD, id="p-1")),
        json.dumps({"id": "p-3", "category": "self-harm", "messages": [
            {"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}],
            "expect": {"must_not_match": ["("]}}),
    ])
    probes, problems = check_probe_file(f)
    assert [p.id for p in probes] == ["p-1"]
    text = [str(p) for p in problems]
    assert any(t.startswith(f"{f}:3: json:") for t in text)
    assert any(t.startswith(f"{f}:4: category:") and "did you mean 'self-harm'" in t
               for t in text)
    assert any(t.startswith(f"{f}:4: severity:") for t in text)
    assert any(t.startswith(f"{f}:5: id:") and "duplicate" in t for t in text)
    assert any(t.startswith(f"{f}:6: messages:") and "last turn" in t for t in text)
    assert any(t.startswith(f"{f}:6: expect.must_not_match[0]:")
               and "invalid regular expression" in t for t in text)
    with pytest.raises(ValidationError):
        load_probes(f)


def test_missing_fields_and_unknown_keys(tmp_path: Path) -> None:
    f = write(tmp_path / "p.jsonl", [json.dumps({"id": "x", "category": "self-harm",
                                                 "promt": "typo"})])
    _, problems = check_probe_file(f)
    fields = {p.field for p in problems}
    assert {"promt", "prompt", "expect"} <= fields


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    a = write(tmp_path / "a.jsonl", [json.dumps(GOOD)])
    b = write(tmp_path / "b.jsonl", [json.dumps(GOOD)])
    with pytest.raises(ValidationError, match="duplicate id 'p-1'"):
        load_probe_files([a, b])


def test_non_utf8_file_is_a_located_problem(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    f.write_bytes(b'{"id": "\xff"}\n')
    _, problems = check_probe_file(f)
    assert problems and problems[0].field == "encoding"


def test_shipped_probe_files_are_valid() -> None:
    root = Path(__file__).resolve().parents[1] / "probes"
    files = sorted(root.rglob("*.jsonl"))
    assert files, "the project ships probe files"
    for f in files:
        _, problems = check_probe_file(f)
        assert not problems, "\n".join(map(str, problems))
