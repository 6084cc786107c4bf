"""The imperative shell of imports: read a source file, write probe JSONL, re-validate it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import InputError, RegistryError
from harness.importers._common import FORMATS, ImportResult, _slug
from harness.importers._formats import PARSERS, parse


def read_text(path: str | Path) -> str:
    """Read a UTF-8 file (a leading BOM is dropped); encoding errors name file:line."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{p}: no such file; check the path") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{p}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start}); re-save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8`"
        ) from None


def write_probes(path: str | Path, probes: Sequence[Mapping[str, Any]]) -> Path:
    """Write probe objects as JSONL (one object a line), creating parent folders."""
    import jsonlines

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with jsonlines.open(p, mode="w", compact=True, sort_keys=False) as writer:
        writer.write_all(probes)
    return p


def default_out(fmt: str, source: str | Path) -> Path:
    """Where `harness probes import` writes by default: probes/imported/<stem>.jsonl."""
    stem = _slug(Path(source).stem) or fmt
    return Path("probes") / "imported" / f"{stem}.jsonl"


def import_file(fmt: str, path: str | Path, out: str | Path | None = None, *,
                id_prefix: str | None = None, default_category: str | None = None,
                severity: str | None = None, benign: bool = False) -> tuple[ImportResult, Path]:
    """Read, parse, write and re-validate one file; returns the result and output path.

    The written file is loaded back with `harness.probes.load_probes`, so a file this
    function writes is always one the harness can run.
    """
    from harness.probes import load_probes

    if fmt not in PARSERS:
        raise RegistryError("import format", fmt, FORMATS)
    text = read_text(path)
    result = parse(fmt, text, str(path), id_prefix=id_prefix,
                   default_category=default_category, severity=severity, benign=benign)
    target = Path(out) if out is not None else default_out(fmt, path)
    write_probes(target, result.probes)
    loaded = load_probes(target)
    if len(loaded) != len(result.probes):  # pragma: no cover - loader raises first
        raise InputError(f"{target}: wrote {len(result.probes)} probes but read back "
                         f"{len(loaded)}")
    return result, target
