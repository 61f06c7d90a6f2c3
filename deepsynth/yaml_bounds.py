"""YAML read within bounds, so that a config file or a ``--set`` value cannot be a bomb.

A YAML alias makes two places share one node: nine levels of nine aliases are a few hundred bytes
that build 9**9 values (or, with merge keys, copy that many pairs). :func:`load_yaml` composes the
node graph first, counts what it would build (once per node, so counting a bomb is cheap) and
refuses more than :data:`MAX_NODES` values, a recursive alias, or (for ``--set``) any alias, before
constructing anything. Files are refused past :data:`MAX_CONFIG_BYTES`.

:func:`read_yaml` is the one reader of configuration files (run configs, stack recipes, the serve
config): bounded, and every error a :class:`ConfigError` that names the file and, for bad YAML, the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from deepsynth.errors import ConfigError

#: A configuration file is a few KB; anything past this is not one.
MAX_CONFIG_BYTES = 256 * 1024
#: Values (scalars, lists, mappings) a configuration may hold once its aliases are expanded.
MAX_NODES = 20_000


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_expansion(root: yaml.Node, where: str, aliases: bool) -> None:
    """Refuse a YAML node graph that would build more than :data:`MAX_NODES` values, or refers to itself.

    An alias makes two places share one node, so sizes are counted once per node (memoised): the
    count of a bomb's nine levels of nine takes nine steps, not nine to the ninth.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:  # depth-first, without recursion: nesting depth is the user's to choose
        node, finished = stack.pop()
        key = id(node)
        if finished:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > MAX_NODES:
                raise ConfigError(
                    f"{where}: expands to more than {MAX_NODES:,} values (YAML aliases?); "
                    "a configuration is a few hundred"
                )
            continue
        if key in sizes:
            if not aliases:
                raise ConfigError(f"{where}: aliases are not allowed in --set (write the value out)")
            continue
        if key in on_path:
            raise ConfigError(f"{where}: a YAML alias refers to itself (line {node.start_mark.line + 1})")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node))


def check_file_size(path: Path) -> None:
    """Refuse a file too large to be a configuration (raises :class:`ConfigError` naming it)."""
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {size:,} bytes; a configuration file is at most {MAX_CONFIG_BYTES:,}")


def load_yaml(text: str, where: str, aliases: bool = True) -> Any:
    """Parse one YAML document safely and within bounds (see the module's docstring).

    Raises:
        ConfigError: The expansion is too large or recursive, or (``aliases=False``) uses an alias.
        yaml.YAMLError: The text is not valid YAML.
    """
    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, where, aliases)
        return loader.construct_document(node)
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply") from None
    finally:
        loader.dispose()


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a configuration file: one YAML mapping (an empty file is ``{}``), within bounds.

    Raises:
        ConfigError: The file is missing, too large, not valid YAML (naming the line), too large once
            expanded, or not a mapping at the top level; the message starts with the file's path.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    check_file_size(path)
    try:
        data = load_yaml(path.read_text(encoding="utf-8"), str(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (UTF-8)") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data
