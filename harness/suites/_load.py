"""Validate a whole suite mapping and load suite files; check suite and probe files."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import taxonomy
from harness.contexts import expand_matrix
from harness.errors import Problem, ValidationError
from harness.probes import check_probe_file, pattern_problem, unknown_detector
from harness.records import Context, DetectorSpec, Probe, freeze
from harness.suites._fields import (
    _Checker,
    _number,
    _parse_context,
    _parse_max_rate,
    _parse_price,
    _parse_probes,
    _valid_sample_capture,
)
from harness.suites._model import DEFAULTS, STORAGE_MODES, GatePolicy, Suite
from harness.suites._yaml import _read_yaml

_GATE_METHODS = ("clopper-pearson", "wilson", "wilson-cc", "jeffreys", "mid-p", "agresti-coull")
_MULTIPLICITY = ("holm", "benjamini-hochberg", "none")
_SUITE_KEYS = {
    "name", "description", "deployment", "probes", "contexts", "context_matrix", "temperatures",
    "samples", "max_tokens", "seed", "detectors", "max_rate", "confidence_level",
    "max_error_rate", "gate", "storage", "forensic_capture", "incident", "concurrency",
    "price",
    "max_response_chars",
}


def parse_suite(raw: Any, lines: dict[tuple[Any, ...], int], file: str, base: Path,
                content: bytes = b"") -> tuple[Suite | None, list[Problem]]:
    """Validate a suite mapping; return the suite (or None) and every problem found."""
    ck = _Checker(file, lines)
    if not isinstance(raw, Mapping):
        ck.add((), "a suite file must be a YAML mapping (name:, probes:, ...)")
        return None, ck.problems
    for k in sorted(set(raw) - _SUITE_KEYS):
        import difflib

        close = difflib.get_close_matches(str(k), sorted(_SUITE_KEYS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        ck.add((k,), f"unknown key{hint}")
    name = _parse_name(ck, raw, file)
    deployment = raw.get("deployment", "general")
    if deployment not in taxonomy.DEPLOYMENTS:
        ck.add(("deployment",), f"{deployment!r} is not one of "
               f"{', '.join(taxonomy.DEPLOYMENTS)}")
        deployment = "general"
    probes = _parse_probes(ck, raw.get("probes"), base) if "probes" in raw else []
    if "probes" not in raw:
        ck.add(("probes",), "missing: list the probe files to run")
    contexts = _parse_contexts(ck, raw, file)
    temps = _parse_temperatures(ck, raw)
    samples = _number(ck, raw, "samples", int, 1, 10**7)
    max_tokens = _number(ck, raw, "max_tokens", int, 1, 10**6)
    max_chars = _number(ck, raw, "max_response_chars", int, 1, 10**9)
    seed = _number(ck, raw, "seed", int, 0, 2**63 - 1)
    conf = _number(ck, raw, "confidence_level", float, 0, 1, lo_open=True, hi_open=True)
    max_err = _number(ck, raw, "max_error_rate", float, 0, 1)
    concurrency = _number(ck, raw, "concurrency", int, 1, 4096)
    max_rate = _parse_max_rate(ck, raw.get("max_rate"), str(deployment))
    detectors = _parse_detectors(ck, raw.get("detectors", []))
    gate = _parse_gate(ck, raw.get("gate", {}) or {})
    storage, capture = _parse_storage(ck, raw)
    incident = raw.get("incident")
    if incident is not None and not isinstance(incident, Mapping):
        ck.add(("incident",), "must be a mapping")
        incident = None
    suite = Suite(
        name=str(name).strip(), path=Path(file), probes=tuple(probes), contexts=tuple(contexts),
        temperatures=tuple(float(t) for t in temps),
        samples=samples if samples is not None else DEFAULTS["samples"],
        max_tokens=max_tokens if max_tokens is not None else DEFAULTS["max_tokens"],
        seed=seed if seed is not None else DEFAULTS["seed"],
        max_rate=freeze(max_rate),
        confidence_level=conf if conf is not None else DEFAULTS["confidence_level"],
        max_error_rate=max_err if max_err is not None else DEFAULTS["max_error_rate"],
        description=str(raw.get("description", "")), deployment=str(deployment),
        detectors=tuple(detectors), gate=gate, storage=str(storage), forensic_capture=capture,
        incident=freeze(incident) if incident is not None else None,
        sha256=_suite_sha256(content, probes), concurrency=concurrency,
        price=_parse_price(ck, raw.get("price")),
        max_response_chars=(max_chars if max_chars is not None
                            else DEFAULTS["max_response_chars"]),
    )
    if not probes and not any(p.field.startswith("probes") for p in ck.problems):
        ck.add(("probes",), "the selection matches no probe")
    return (suite if not ck.problems else None), ck.problems


def _parse_name(ck: _Checker, raw: Mapping[str, Any], file: str) -> str:
    """The suite's one-line `name` (else the file's stem, with a problem)."""
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        ck.add(("name",), "missing or empty; give the suite a name")
        name = Path(file).stem
    elif any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        ck.add(("name",), f"{name!r} holds a line break or control character; give a "
               "one-line name")
        name = Path(file).stem
    return str(name)


def _parse_contexts(ck: _Checker, raw: Mapping[str, Any], file: str) -> list[Context]:
    """The named `contexts` and the `context_matrix` expansion (default: one bare context)."""
    contexts: list[Context] = []
    if "contexts" in raw:
        if not isinstance(raw["contexts"], list) or not raw["contexts"]:
            ck.add(("contexts",), "must be a non-empty list of named contexts")
        else:
            for i, c in enumerate(raw["contexts"]):
                ctx = _parse_context(ck, c, i)
                if ctx is not None:
                    contexts.append(ctx)
    if "context_matrix" in raw:
        try:
            contexts.extend(expand_matrix(raw["context_matrix"], file=ck.file,
                                          line=ck.line(("context_matrix",))))
        except ValidationError as exc:
            ck.problems.extend(exc.problems)
    if not contexts:
        contexts = [Context(name="bare", description="no system prompt, no history")]
    names = [c.name for c in contexts]
    for n in sorted({n for n in names if names.count(n) > 1}):
        ck.add(("contexts",), f"context name {n!r} is used more than once")
    return contexts


def _parse_temperatures(ck: _Checker, raw: Mapping[str, Any]) -> list[float]:
    """`temperatures`: a number or a non-empty list of distinct numbers in [0, 2]."""
    temps = raw.get("temperatures", DEFAULTS["temperatures"])
    if isinstance(temps, (int, float)) and not isinstance(temps, bool):
        temps = [temps]
    if not isinstance(temps, (list, tuple)) or not temps or not all(
            isinstance(t, (int, float)) and not isinstance(t, bool) and 0 <= t <= 2
            for t in temps):
        ck.add(("temperatures",), f"{temps!r} must be a non-empty list of numbers in [0, 2]")
        temps = DEFAULTS["temperatures"]
    for t in sorted({float(t) for t in temps if [float(u) for u in temps].count(float(t)) > 1}):
        ck.add(("temperatures",), f"temperature {t!r} is listed more than once (every cell "
               "would be sampled twice); list each temperature once")
    return list(temps)


def _parse_detectors(ck: _Checker, dets: Any) -> list[DetectorSpec]:
    """The suite's extra `detectors`: names or {name, settings...}, each one known."""
    detectors: list[DetectorSpec] = []
    if not isinstance(dets, list):
        ck.add(("detectors",), "must be a list of detector names or {name: ..., ...}")
    else:
        for i, d in enumerate(dets):
            if isinstance(d, str):
                detectors.append(DetectorSpec(d))
            elif isinstance(d, Mapping) and isinstance(d.get("name"), str):
                detectors.append(DetectorSpec(d["name"], freeze(
                    {k: v for k, v in d.items() if k != "name"})))
            else:
                ck.add(("detectors", i), "needs a name")
                continue
            unknown = unknown_detector(detectors[-1].name)
            if unknown:
                ck.add(("detectors", i), unknown)
            elif problem := pattern_problem(detectors[-1]):
                ck.add(("detectors", i), problem)
    return detectors


def _parse_gate(ck: _Checker, gate_raw: Any) -> GatePolicy:
    """The `gate` mapping: method, cluster, multiplicity, estimand, max_icc."""
    gate = GatePolicy()
    if not isinstance(gate_raw, Mapping):
        ck.add(("gate",), "must be a mapping {method:, cluster:, multiplicity:}")
    else:
        for k in sorted(set(gate_raw) - {"method", "cluster", "multiplicity", "estimand",
                                         "max_icc"}):
            ck.add(("gate", k),
                   "unknown key; use method, cluster, multiplicity, estimand, max_icc")
        method = gate_raw.get("method", gate.method)
        if method not in _GATE_METHODS:
            ck.add(("gate", "method"), f"{method!r} is not one of {', '.join(_GATE_METHODS)}")
            method = gate.method
        mult = gate_raw.get("multiplicity", gate.multiplicity)
        if mult not in _MULTIPLICITY:
            ck.add(("gate", "multiplicity"), f"{mult!r} is not one of {', '.join(_MULTIPLICITY)}")
            mult = gate.multiplicity
        cluster = gate_raw.get("cluster", True)
        if not isinstance(cluster, bool):
            ck.add(("gate", "cluster"), "must be true or false")
            cluster = True
        estimand = gate_raw.get("estimand", gate.estimand)
        if estimand not in ("population", "fixed-set"):
            ck.add(("gate", "estimand"), f"{estimand!r} is not one of population, fixed-set "
                   "(fixed-set: exactly these prompts, e.g. exact incident prompts)")
            estimand = gate.estimand
        max_icc = gate_raw.get("max_icc", gate.max_icc)
        if isinstance(max_icc, bool) or not isinstance(max_icc, int | float) or \
                not 0.0 <= float(max_icc) <= 1.0:
            ck.add(("gate", "max_icc"), f"{max_icc!r} must be a number in [0, 1] (the largest "
                   "intraclass correlation of probe rates the bound covers; default 0.5)")
            max_icc = gate.max_icc
        gate = GatePolicy(method, cluster, mult, estimand, float(max_icc))
    return gate


def _parse_storage(ck: _Checker, raw: Mapping[str, Any]) -> tuple[str, str]:
    """(`storage` mode, `forensic_capture`) of the suite's records."""
    storage = raw.get("storage", "full")
    if storage not in STORAGE_MODES:
        ck.add(("storage",), f"{storage!r} is not one of {', '.join(STORAGE_MODES)}")
        storage = "full"
    capture = str(raw.get("forensic_capture", "all"))
    if capture not in ("all", "flagged-only") and not _valid_sample_capture(capture):
        ck.add(("forensic_capture",), f"{capture!r} must be all, flagged-only or "
               "sample:<fraction in (0, 1]>")
        capture = "all"
    return str(storage), capture


def _suite_sha256(content: bytes, probes: Sequence[Probe]) -> str:
    """sha256 over the suite file's bytes and every probe it selected (a changed probe
    file changes the suite)."""
    from harness.records import stable_json

    digest = hashlib.sha256(content)
    for p in probes:
        digest.update(stable_json(p.to_dict()).encode())
    return digest.hexdigest()


def check_suite_file(path: str | Path) -> tuple[Suite | None, list[Problem]]:
    """Parse a suite file, collecting every problem (including its probe files')."""
    path = Path(path)
    try:
        raw, lines, content = _read_yaml(path)
    except ValidationError as exc:
        return None, list(exc.problems)
    return parse_suite(raw, lines, str(path), path.parent, content)


def load_suite(path: str | Path) -> Suite:
    """Load a suite file; raise ValidationError listing every problem."""
    suite, problems = check_suite_file(path)
    if problems or suite is None:
        raise ValidationError(problems)
    return suite


def validate_files(paths: Sequence[str | Path]) -> list[Problem]:
    """Check suites (.yaml/.yml) and probe files (.jsonl) without running anything."""
    problems: list[Problem] = []
    for p in paths:
        path = Path(p)
        if not path.exists():
            problems.append(Problem(str(path), None, "file", "not found"))
        elif path.suffix in (".yaml", ".yml"):
            problems.extend(check_suite_file(path)[1])
        elif path.suffix == ".jsonl":
            problems.extend(check_probe_file(path)[1])
        else:
            problems.append(Problem(str(path), None, "file", "unknown kind; expected a suite "
                                    "(.yaml) or a probe file (.jsonl)"))
    return problems
