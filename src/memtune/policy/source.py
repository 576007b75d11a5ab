"""YAML loading that remembers where every key and item came from, so errors can name file:line:column."""

from __future__ import annotations

import pathlib
from typing import Any

import yaml

from memtune.errors import PolicyError

Path_ = tuple[str | int, ...]
# libyaml's parser when PyYAML has it (same nodes and marks, several times faster)
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Mark = tuple[int, int]
# Bounds that stop documents built to exhaust the controller: aliases that expand exponentially ("billion
# laughs": at most MAX_ALIASED values reached again through aliases), an alias inside itself, thousands
# of nested lists. Values written out are bounded by the file's size.
MAX_ALIASED = 10_000
MAX_DEPTH = 64


class Marks:
    """Line and column (1-based) of each key or item, by its path in the loaded data."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.by_path: dict[Path_, Mark] = {}

    def at(self, path: Path_) -> Mark:
        """The mark of ``path`` or of its nearest recorded ancestor."""
        while path not in self.by_path and path:
            path = path[:-1]
        return self.by_path.get(path, (1, 1))

    def locate(self, loc: tuple[Any, ...]) -> tuple[Path_, Mark]:
        """Follow a pydantic error location through the data, skipping the parts (union tags) that are
        not keys of the data."""
        path: Path_ = ()
        for index, part in enumerate(loc):
            candidate = (*path, part)
            following = loc[index + 1] if index + 1 < len(loc) else None
            is_tag = (
                following is not None
                and (*path, following) in self.by_path
                and (*candidate, following) not in self.by_path
            )
            if candidate in self.by_path and not is_tag:
                path = candidate
        return path, self.at(path)

    def error(self, message: str, path: Path_) -> PolicyError:
        line, column = self.at(path)
        return PolicyError(message, self.file, line, column)


def load_yaml_file(path: pathlib.Path) -> tuple[Any, Marks]:
    """A YAML (or JSON) file's data and marks; PolicyError naming the file when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read: {getattr(exc, 'strerror', None) or exc}", str(path)) from None
    return load_yaml(text, str(path))


def load_yaml(text: str, file: str) -> tuple[Any, Marks]:
    marks = Marks(file)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, marks
        return _Builder(loader, marks).build(node, ()), marks
    except RecursionError:
        raise PolicyError(f"invalid YAML: nested deeper than {MAX_DEPTH} levels", file) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise PolicyError(f"invalid YAML: {problem}", file, line, column) from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"invalid YAML: {exc}", file) from None
    finally:
        loader.dispose()


class _Builder:
    """Python data from composed YAML nodes, within MAX_VALUES values and MAX_DEPTH levels, with marks."""

    def __init__(self, loader: yaml.SafeLoader, marks: Marks) -> None:
        self.loader = loader
        self.marks = marks
        self.aliased = 0  # values built again because an alias repeats them
        self.inside_alias = 0  # how many repeated collections the current value is inside
        self.seen: set[int] = set()  # collections built once already
        self.open: set[int] = set()  # the collections being built: an alias to one of them is a cycle

    def refuse(self, message: str, node: yaml.Node) -> PolicyError:
        return PolicyError(message, self.marks.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: yaml.Node, path: Path_) -> Any:
        if self.inside_alias:
            self.aliased += 1
            if self.aliased > MAX_ALIASED:
                raise self.refuse(
                    f"aliases repeat more than {MAX_ALIASED} values (aliases of aliases of ...?)", node
                )
        if len(path) > MAX_DEPTH:
            raise self.refuse(f"nested deeper than {MAX_DEPTH} levels", node)
        marks = self.marks
        marks.by_path.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            return self.loader.construct_object(node, deep=True)
        if id(node) in self.open:
            raise self.refuse("an alias refers to a collection that contains it", node)
        repeated = id(node) in self.seen
        self.seen.add(id(node))
        self.open.add(id(node))
        self.inside_alias += repeated
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
            return self.mapping(node, path)
        finally:
            self.open.discard(id(node))
            self.inside_alias -= repeated

    def mapping(self, node: yaml.MappingNode, path: Path_) -> dict[Any, Any]:
        self.loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.refuse("mapping keys must be strings, not collections", key_node)
            key = self.loader.construct_object(key_node, deep=True)
            key_mark = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if not isinstance(key, str | int) or isinstance(key, bool):
                raise PolicyError(f"mapping keys must be strings, not {key!r}", self.marks.file, *key_mark)
            if key in result:
                raise PolicyError(f"duplicate key {key!r}", self.marks.file, *key_mark)
            self.marks.by_path[(*path, key)] = key_mark
            result[key] = self.build(value_node, (*path, key))
        return result
