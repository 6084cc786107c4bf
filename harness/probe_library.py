"""The probe library shipped with harness as package data (`harness list probes`, the
incident controls)."""

from __future__ import annotations

from pathlib import Path

LIBRARY_RESOURCE = ("data", "probes")
"""Where the shipped probe library lives inside the package. In the repository
`harness/data/probes` is a symbolic link to `probes/library/` (the data stays in the data
folder); a wheel or `pip install .` copies the files into the package."""


def library_dir() -> Path:
    """The probe library shipped with harness, found through `importlib.resources` (so an
    installed package finds it without a source checkout and whatever the working
    directory); raises `InputError` when the installation lacks it."""
    from importlib.resources import files

    from harness.errors import InputError

    root = files("harness").joinpath(*LIBRARY_RESOURCE)
    if not isinstance(root, Path) or not root.is_dir():
        raise InputError(f"the probe library is missing from this installation ({root}); "
                         "reinstall harness (pip install --force-reinstall harness) or pass "
                         "--suite SUITE")
    return root


def library_files() -> list[Path]:
    """The shipped probe files (`*.jsonl`), sorted by name."""
    return sorted(library_dir().glob("*.jsonl"))
