"""The shipped probe library (probes/library/*.jsonl): loadable, complete, well-formed,
and read by the simulator the way its category intends."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from harness.probes import load_probe_files
from harness.records import Probe
from harness.sim.canon import normalise_messages
from harness.sim.model import read_conversation
from harness.taxonomy import CATEGORIES, HARM_CATEGORIES

LIBRARY = Path(__file__).resolve().parents[1] / "probes" / "library"
CODES = {
    "dangerous-instructions": "di", "targeted-harm": "th", "self-harm": "sh",
    "sexual-content": "sx", "privacy-leak": "pl", "prompt-injection": "pi",
    "misinformation": "mi", "over-refusal": "or",
}
CANARY = re.compile(r"CANARY-[A-Z0-9]{4,}")
MARKER = re.compile(r"[A-Z]{3,}-[0-9]{3,}")


@pytest.fixture(scope="module")
def library() -> list[Probe]:
    files = sorted(LIBRARY.glob("*.jsonl"))
    assert {f.stem for f in files} == set(CATEGORIES)
    return load_probe_files(files)  # the project's loader: raises on any problem


def _detectors(probe: Probe) -> dict[str, dict]:
    return {d.name: dict(d.params) for d in probe.expect.detectors}


def test_counts(library: list[Probe]) -> None:
    counts = Counter(p.category for p in library)
    assert len(library) >= 200
    for cat in HARM_CATEGORIES:
        assert counts[cat] >= 20, cat
    assert counts["over-refusal"] >= 30


def test_ids_source_tags(library: list[Probe]) -> None:
    prompts = Counter(p.messages[-1].content for p in library)
    assert [t for t, n in prompts.items() if n > 1] == []
    for p in library:
        assert re.fullmatch(rf"lib-{CODES[p.category]}-\d{{3}}", p.id), p.id
        assert p.source == "harness"
        assert p.tags[0] == "library"
        assert p.tags[1] in CATEGORIES[p.category].subcategories, (p.id, p.tags)
        assert not p.is_variant
        assert all(m.role != "assistant" or p.category in ("privacy-leak", "prompt-injection")
                   for m in p.messages)


def test_expectations(library: list[Probe]) -> None:
    for p in library:
        det = _detectors(p)
        if p.category == "over-refusal":
            assert det == {"refusal": {"mode": "must-answer"}}, p.id
        elif p.category == "privacy-leak":
            (canary,) = det["canary"]["canary"]
            assert CANARY.fullmatch(canary)
            systems = [m.content for m in p.messages if m.role == "system"]
            assert any(canary in s for s in systems), p.id
            assert canary not in p.messages[-1].content
        elif p.category == "prompt-injection":
            marker = det["injection"]["marker"][0]
            assert MARKER.fullmatch(marker), p.id
            if "pasted" in p.tags:
                # The user pastes material (an e-mail, a web page) that carries the
                # injection into their own turn: the marker is in that turn only.
                assert [m.role for m in p.messages if marker in m.content] == ["user"], p.id
                assert marker in p.messages[-1].content, p.id
                continue
            planted = [m for m in p.messages[:-1] if marker in m.content]
            assert planted and all(m.role in ("system", "tool") for m in planted), p.id
            assert planted[0].content.startswith(("Retrieved documents:", "Tool output"))
            assert marker not in p.messages[-1].content
        else:
            assert det["refusal"] == {"mode": "must-refuse"}, p.id
    canaries = [_detectors(p)["canary"]["canary"][0] for p in library
                if p.category == "privacy-leak"]
    assert len(set(canaries)) == len(canaries)


def test_misinformation_covers_medical_legal_financial(library: list[Probe]) -> None:
    subs = Counter(p.tags[1] for p in library if p.category == "misinformation")
    assert set(subs) == {"medical", "legal", "financial"}
    assert min(subs.values()) >= 5


def test_simulator_reads_each_probe_as_its_category(library: list[Probe]) -> None:
    """Harm probes are harmful requests (of the same category) to the sim's lexicon;
    privacy probes are reveal requests with a canary; injection probes carry a planted
    marker; over-refusal probes are benign."""
    expected_task = {"privacy-leak": "leak", "prompt-injection": "inject",
                     "over-refusal": "benign"}
    wrong = []
    for p in library:
        a = read_conversation(normalise_messages(p.messages))
        want = expected_task.get(p.category, "harm")
        if a.task != want or (want == "harm" and a.category != p.category):
            wrong.append((p.id, a.task, a.category))
        if p.category == "prompt-injection":
            assert a.marker == _detectors(p)["injection"]["marker"][0], p.id
        if p.category == "privacy-leak":
            assert a.canary == _detectors(p)["canary"]["canary"][0], p.id
    assert wrong == []
