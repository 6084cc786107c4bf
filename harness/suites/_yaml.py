"""YAML with lines and limits: parse a suite file into plain Python objects and each value's line.

The line map lets every validation problem be reported as `file:line: field: message`.

Suite files come from anyone (a pull request, an incident ticket), so the parser bounds what
a small file can cost. PyYAML's `compose` shares the node of an anchor between its aliases, so
composing is cheap; expanding the shared nodes into Python objects is what an "alias bomb"
(nine levels of nine aliases: 286 bytes, 387 million values) exploits. Building the objects
here counts every value produced, aliases included, and stops at `MAX_VALUES`; it refuses an
alias that refers to a node it is inside (a recursive alias), nesting deeper than `MAX_DEPTH`,
more than `MAX_ALIASES` alias uses, merge keys (`<<`), keys that are not plain scalars and
tags other than YAML's standard scalar ones. Each refusal is a `Problem` with its line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.errors import Problem, ValidationError

MAX_VALUES = 50_000
"""Values (scalars, lists, mappings) one file may expand to; the shipped suites have fewer
than 200 (probes live in JSONL files, not in the suite)."""
MAX_ALIASES = 1_000
"""Alias uses (`*name`) per file."""
MAX_DEPTH = 64
"""Nesting of lists and mappings."""

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_SCALAR_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in (
    "str", "int", "float", "bool", "null", "timestamp"))


class _YamlLimit(Exception):
    """A limit or unsupported construct, at a line."""

    def __init__(self, line: int, message: str):
        self.line = line
        self.message = message
        super().__init__(message)


class _Builder:
    """Builds plain objects from composed nodes within the limits above."""

    def __init__(self) -> None:
        self.values = 0
        self.open: set[int] = set()  # ids of the collection nodes being built (recursion)
        self.lines: dict[tuple[Any, ...], int] = {}
        self.scalars: dict[int, Any] = {}  # a scalar node is built once however often aliased

    def build(self, node: yaml.Node, path: tuple[Any, ...], depth: int = 0) -> Any:
        line = node.start_mark.line + 1
        self.lines[path] = line
        self.values += 1
        if self.values > MAX_VALUES:
            raise _YamlLimit(line, f"the file expands to more than {MAX_VALUES:,} values "
                             "(aliases of aliases?); write the values out or simplify it")
        if depth > MAX_DEPTH:
            raise _YamlLimit(line, f"nested deeper than {MAX_DEPTH} levels; flatten it")
        if isinstance(node, yaml.ScalarNode):
            got = self.scalars.get(id(node), self)
            if got is self:
                got = self.scalars[id(node)] = _scalar(node)
            return got
        if id(node) in self.open:
            raise _YamlLimit(line, "an alias refers to a value that contains it (a recursive "
                             "alias); remove the alias")
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                if node.tag != _MAP_TAG:
                    raise _YamlLimit(line, f"unsupported tag {node.tag!r} on a mapping; remove "
                                     "the tag")
                out: dict[Any, Any] = {}
                for k_node, v_node in node.value:
                    out_key = self._key(k_node)
                    out[out_key] = self.build(v_node, (*path, out_key), depth + 1)
                return out
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ_TAG:
                    raise _YamlLimit(line, f"unsupported tag {node.tag!r} on a list; remove "
                                     "the tag")
                return [self.build(v, (*path, i), depth + 1) for i, v in enumerate(node.value)]
        finally:
            self.open.discard(id(node))
        raise _YamlLimit(line, f"unsupported YAML node {type(node).__name__}")

    def _key(self, node: yaml.Node) -> Any:
        line = node.start_mark.line + 1
        if not isinstance(node, yaml.ScalarNode):
            raise _YamlLimit(line, "a key must be a plain value (text or number), not a list "
                             "or mapping")
        if node.tag == _MERGE_TAG:
            raise _YamlLimit(line, "merge keys (<<) are not supported; write the keys out")
        key = _scalar(node)
        try:
            hash(key)
        except TypeError:
            raise _YamlLimit(line, "a key must be a plain value") from None
        return key


def _scalar(node: yaml.Node) -> Any:
    if node.tag not in _SCALAR_TAGS:
        raise _YamlLimit(node.start_mark.line + 1,
                         f"unsupported tag {node.tag!r}; suites use plain YAML values only "
                         "(remove the `!` tag or quote the value)")
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, OverflowError) as exc:
        raise _YamlLimit(node.start_mark.line + 1, f"bad value: {exc}") from None
    finally:
        loader.dispose()


class _CountingLoader(yaml.SafeLoader):
    """A SafeLoader that stops composing after `MAX_ALIASES` alias uses."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.n_aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.n_aliases += 1
            if self.n_aliases > MAX_ALIASES:
                event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
                raise _YamlLimit(event.start_mark.line + 1,
                                 f"more than {MAX_ALIASES} aliases (*name); write the values "
                                 "out")
        return super().compose_node(parent, index)


def _construct(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> Any:
    """Build plain Python objects from a composed YAML node, recording each value's line.

    Raises `_YamlLimit` (see the module docstring); `load_yaml_text` turns it into a Problem.
    """
    builder = _Builder()
    builder.lines = lines
    return builder.build(node, path)


def load_yaml_text(text: str, file: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """Parse YAML text within the limits; (objects, line of each value's path).

    Raises ValidationError with one located Problem (field `yaml`) when the text is not
    YAML or goes past a limit.
    """
    loader = _CountingLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines: dict[tuple[Any, ...], int] = {}
        return _construct(node, (), lines), lines
    except _YamlLimit as exc:
        raise ValidationError([Problem(file, exc.line, "yaml", exc.message)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        msg = getattr(exc, "problem", None) or str(exc)
        raise ValidationError([Problem(file, line, "yaml", f"{msg}; check indentation "
                                       "and quoting")]) from None
    except RecursionError:
        raise ValidationError([Problem(file, None, "yaml", f"nested too deeply (more than "
                                       f"{MAX_DEPTH} levels); flatten it")]) from None
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
    obj, lines = load_yaml_text(text, str(path))
    return obj, lines, data
