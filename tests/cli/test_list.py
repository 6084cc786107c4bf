"""`harness list probes|detectors|mutators|contexts|categories`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from tests.conftest import ROOT, SMALL_PROBES, write_small_suite


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict]:
    assert main(["list", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_probes_of_the_library_by_id_without_prompt_text(
        capsys: pytest.CaptureFixture[str]) -> None:
    rows = _json(capsys, "probes")
    lines = [json.loads(x) for f in sorted((ROOT / "probes" / "library").glob("*.jsonl"))
             for x in f.read_text().splitlines() if x.strip()]
    assert sorted(r["id"] for r in rows) == sorted(d["id"] for d in lines)
    text = json.dumps(rows)
    assert not any(d.get("prompt", "")[:40] in text for d in lines if d.get("prompt"))
    self_harm = _json(capsys, "probes", "--category", "self-harm")
    assert self_harm and {r["category"] for r in self_harm} == {"self-harm"}
    assert len(self_harm) == sum(d["category"] == "self-harm" for d in lines)


def test_probes_and_contexts_of_a_suite(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    suite = str(write_small_suite(tmp_path))
    assert [r["id"] for r in _json(capsys, "probes", "--suite", suite)] == \
        [p["id"] for p in SMALL_PROBES]
    contexts = _json(capsys, "contexts", "--suite", suite)
    assert [c["name"] for c in contexts] == ["bare", "guarded"]
    assert contexts[1]["system_prompt"] is True and contexts[0]["system_prompt"] is False
    assert "bare" in [c["name"] for c in _json(capsys, "contexts")]


def test_detectors_mutators_categories(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.mutators import names
    from harness.taxonomy import CATEGORIES

    detectors = {r["name"]: r for r in _json(capsys, "detectors")}
    assert {"refusal", "pattern", "canary", "judge", "moderation"} <= set(detectors)
    assert detectors["refusal"]["source"] == "built-in"
    assert [r["name"] for r in _json(capsys, "mutators")] == names()
    cats = {r["id"]: r for r in _json(capsys, "categories")}
    assert list(cats) == list(CATEGORIES)
    assert cats["over-refusal"]["failure"] == "refusal"
    assert main(["list", "mutators"]) == 0
    assert "base64" in capsys.readouterr().out


def test_bad_input_is_a_json_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "probes", "--category", "nope", "--json"]) == 2
    assert "not a taxonomy category" in json.loads(capsys.readouterr().out)["error"]["message"]
    assert main(["list", "widgets", "--json"]) == 2
    assert "invalid choice" in json.loads(capsys.readouterr().out)["error"]["message"]


def test_the_listing_works_from_an_installed_package(tmp_path: Path) -> None:
    """What `pip install .` ships is enough: a copy of the package as a wheel lays it out
    (package files only, the library's symbolic link followed as setuptools does), imported
    from another folder, lists the shipped probes from its own package data."""
    import shutil
    import subprocess
    import sys

    site = tmp_path / "site"
    shutil.copytree(ROOT / "harness", site / "harness",
                    ignore=shutil.ignore_patterns("__pycache__"))
    assert not (site / "harness" / "data" / "probes").is_symlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import json, sys, harness; from harness.cli.list import list_items; "
            "from harness.probes import library_dir; "
            "print(json.dumps({'file': harness.__file__, 'library': str(library_dir()), "
            "'probes': [r['id'] for r in list_items('probes')]}))")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, "
                           f"{str(site)!r}); {code}"], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert Path(got["file"]).is_relative_to(site), got["file"]
    assert Path(got["library"]) == site / "harness" / "data" / "probes"
    lines = [json.loads(x) for f in sorted((ROOT / "probes" / "library").glob("*.jsonl"))
             for x in f.read_text().splitlines() if x.strip()]
    assert sorted(got["probes"]) == sorted(d["id"] for d in lines)


def test_package_data_resolves_through_importlib_resources_and_is_packaged() -> None:
    """The library is package data (importlib.resources), the same files as probes/library,
    and pyproject's package-data patterns take it (and every other data file) into a wheel."""
    import glob
    import tomllib
    from importlib.resources import files

    from harness.probes import library_files

    lib = files("harness").joinpath("data", "probes")
    names = sorted(p.name for p in library_files())
    assert names == sorted(p.name for p in (ROOT / "probes" / "library").glob("*.jsonl"))
    assert names and all(lib.joinpath(n).read_bytes() ==
                         (ROOT / "probes" / "library" / n).read_bytes() for n in names)
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["harness"]
    # setuptools expands the patterns with glob(recursive=True), which follows the link.
    packaged = {Path(f).relative_to(ROOT / "harness").as_posix()
                for pat in patterns
                for f in glob.glob(str(ROOT / "harness" / pat), recursive=True)
                if Path(f).is_file()}
    data = {p.relative_to(ROOT / "harness").as_posix()
            for p in (ROOT / "harness" / "data").rglob("*") if p.is_file()}
    data |= {f"data/probes/{n}" for n in names}  # rglob does not follow the link
    assert {f"data/probes/{n}" for n in names} <= packaged
    assert data <= packaged, sorted(data - packaged)


def test_incident_controls_come_from_the_package_data() -> None:
    from harness.incidents._files import controls_candidates, find_controls
    from harness.probes import library_dir

    assert controls_candidates()[0] == (library_dir() / "over-refusal.jsonl").resolve()
    assert find_controls() == (ROOT / "probes" / "library" / "over-refusal.jsonl").resolve()
