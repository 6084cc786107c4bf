"""YAML with lines: parse a suite file into plain Python objects and each value's line.

The line map lets every validation problem be reported as `file:line: field: message`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.errors import Problem, ValidationError


def _construct(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> Any:
    """Build plain Python objects from a composed YAML node, recording each value's line."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for k_node, v_node in node.value:
            key = yaml.safe_load(yaml.serialize(k_node)) if not isinstance(
                k_node, yaml.ScalarNode) else _scalar(k_node)
            out[key] = _construct(v_node, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(v, (*path, i), lines) for i, v in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _read_yaml(path: Path) -> tuple[Any, dict[tuple[Any, ...], int], bytes]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        problem = Problem(str(path), None, "file", f"cannot read: {exc.strerror}")
        raise ValidationError([problem]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = Problem(str(path), None, "encoding",
                          f"not UTF-8 ({exc.reason}); save the file as UTF-8")
        raise ValidationError([problem]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        msg = getattr(exc, "problem", None) or str(exc)
        raise ValidationError([Problem(str(path), line, "yaml", f"{msg}; check indentation "
                                       "and quoting")]) from None
    lines: dict[tuple[Any, ...], int] = {}
    if node is None:
        return None, lines, data
    return _construct(node, (), lines), lines, data
