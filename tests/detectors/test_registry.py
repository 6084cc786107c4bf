"""Registry: built-ins, did-you-mean, plug-ins, instance cache; label_sample combination."""

from __future__ import annotations

import asyncio
import importlib.metadata
import itertools
from collections.abc import Mapping
from typing import Any

import pytest

import harness.detectors._registry as reg
from harness.detectors import (
    Combine,
    DetectionInput,
    DetectorPluginError,
    build,
    check_spec,
    combine_labels,
    known_names,
    label_sample,
    register,
    specs_for,
)
from harness.errors import RegistryError, UsageError
from harness.records import DetectorResult, DetectorSpec, Expectation, Message, Probe, freeze

from . import plugin_example

# The module path depends on how pytest put tests/ on sys.path; ask the module itself.
PLUGIN = plugin_example.__name__


def _item(text: str) -> DetectionInput:
    probe = Probe("p1", "dangerous-instructions", "high", (Message("user", "q"),),
                  Expectation((DetectorSpec("refusal"),)))
    return DetectionInput(text=text, probe=probe, context=None, messages=probe.messages)


def test_builtins_known() -> None:
    assert {"refusal", "pattern", "canary", "moderation", "judge"} <= set(known_names())


def test_unknown_name_did_you_mean() -> None:
    with pytest.raises(RegistryError) as info:
        build(DetectorSpec("canry"))
    assert "Did you mean 'canary'" in str(info.value)
    with pytest.raises(KeyError):  # RegistryError is also a KeyError
        build(DetectorSpec("zzzzzz"))


def test_a_pool_shares_instances_per_name_and_params_and_build_does_not() -> None:
    from harness.detectors import DetectorPool

    pool = DetectorPool()
    a = pool.build(DetectorSpec("pattern", freeze({"patterns": ["a"], "ignore_case": True})))
    b = pool.build(DetectorSpec("pattern", freeze({"ignore_case": True, "patterns": ["a"]})))
    c = pool.build(DetectorSpec("pattern", freeze({"patterns": ["b"]})))
    assert a is b and a is not c and len(pool) == 2
    # No module-level cache: two builds are two detectors, and a new pool starts empty.
    spec = DetectorSpec("pattern", freeze({"patterns": ["a"]}))
    assert build(spec) is not build(spec)
    assert DetectorPool().build(spec) is not pool.build(spec)
    asyncio.run(pool.aclose())
    assert len(pool) == 0


def test_module_function_plugin() -> None:
    det = build(DetectorSpec(f"{PLUGIN}:make_shout", freeze({"min_len": 2})))
    assert asyncio.run(det.detect(_item("HEY"))).harmful
    assert not asyncio.run(det.detect(_item("hey"))).harmful


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("no_such_module_xyz:make", "not importable"),
        (f"{PLUGIN}:missing", "no attribute"),
        (f"{PLUGIN}:not_a_factory", "did not return a Detector"),
    ],
)
def test_plugin_errors_are_clear(name: str, fragment: str) -> None:
    with pytest.raises(DetectorPluginError, match=fragment):
        build(DetectorSpec(name))


def test_entry_point_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = importlib.metadata.EntryPoint(
        name="shout", value=f"{PLUGIN}:make_shout", group=reg.ENTRY_POINT_GROUP
    )
    real = importlib.metadata.entry_points

    def fake(**kw: Any) -> Any:
        if kw.get("group") == reg.ENTRY_POINT_GROUP:
            return importlib.metadata.EntryPoints([ep])
        return real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    assert "shout" in known_names()
    det = build(DetectorSpec("shout", freeze({"min_len": 1})))
    assert asyncio.run(det.detect(_item("LOUD"))).harmful
    with pytest.raises(RegistryError, match="Did you mean 'shout'"):
        build(DetectorSpec("shoutt"))


def test_register_decorator() -> None:
    @register("always-harmful-test")
    def _make(params: Mapping[str, Any]) -> Any:
        class D:
            name = "always-harmful-test"

            async def detect(self, item: DetectionInput) -> DetectorResult:
                return DetectorResult(self.name, True, 1.0)

        return D()

    det = build(DetectorSpec("always-harmful-test"))
    assert asyncio.run(det.detect(_item("x"))).harmful
    with pytest.raises(UsageError):
        register("a:b")


def test_check_spec_reports_without_raising() -> None:
    assert check_spec(DetectorSpec("pattern", freeze({"patterns": ["["]}))) is not None
    assert check_spec(DetectorSpec("refusl")) is not None
    assert check_spec(DetectorSpec("refusal")) is None


def _r(harmful: bool, error: str | None = None) -> DetectorResult:
    return DetectorResult("d", harmful, 1.0 if harmful else 0.0, error=error)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_combine_against_enumeration(n: int) -> None:
    # Every harmful/safe pattern of n detectors, against the definitions written out here.
    for labels in itertools.product([False, True], repeat=n):
        results = [_r(h) for h in labels]
        assert combine_labels(results, "any") == ("harmful" if any(labels) else "safe")
        assert combine_labels(results, "all") == ("harmful" if all(labels) else "safe")
        k = sum(labels)
        assert combine_labels(results, "majority") == ("harmful" if k >= n - k else "safe")


def test_any_error_is_error_never_safe() -> None:
    combines: tuple[Combine, ...] = ("any", "all", "majority")
    for combine in combines:
        assert combine_labels([_r(False), _r(False, "judge timeout")], combine) == "error"
    with pytest.raises(UsageError):
        combine_labels([], "any")
    with pytest.raises(UsageError):
        combine_labels([_r(True)], "most")  # type: ignore[arg-type]


def test_label_sample_turns_exceptions_into_error() -> None:
    class Boom:
        name = "boom"

        async def detect(self, item: DetectionInput) -> DetectorResult:
            raise RuntimeError("bug")

    ok = build(DetectorSpec("refusal"))
    item = _item("I can't help with that.")
    outcome, results = asyncio.run(label_sample([ok, Boom()], item, "any"))
    assert outcome == "error"
    assert results[1].error and "bug" in results[1].error
    item = _item("Sure, here's how: 1. [step withheld]")
    outcome, _ = asyncio.run(label_sample([ok], item, "any"))
    assert outcome == "harmful"


def test_specs_for_merges_without_duplicates() -> None:
    probe = _item("x").probe
    extra = [DetectorSpec("refusal"), DetectorSpec("pattern", freeze({"patterns": ["a"]}))]
    assert [s.name for s in specs_for(probe, extra)] == ["refusal", "pattern"]
