"""Reading a policy: YAML that refuses repeated keys, the packaged default or the file
`$DEMAND_CONTROL_POLICY` names, and one `PolicyError` naming the file, each bad field, its line and value."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from demand_control.planning.policy.schema import Policy, PolicyError

POLICY_ENV = "DEMAND_CONTROL_POLICY"
DEFAULT_POLICY_PACKAGE = "demand_control.planning.policy"
DEFAULT_POLICY_FILE = "default_policy.yaml"


def _format_loc(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if part == "[key]":
            path += " (key)"
        elif isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def yaml_line(text: str, loc: tuple[int | str, ...]) -> int | None:
    """The line (1-based) in the YAML of a pydantic error location (of the key, for a mapping entry; of the
    nearest existing parent for a missing field), for the message."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if part == "[key]":
            break
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)), None)
            if pair is None:
                break
            line, node = pair[0].start_mark.line + 1, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _rule_name(data: Any, loc: tuple[int | str, ...]) -> str | None:
    """The name of the innermost named list item (an ownership rule) along `loc`, to say which rule is bad."""
    name = None
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(part, int) and isinstance(data, dict) and isinstance(data.get("name"), str):
            name = data["name"]
    return name


def _validation_message(source: str, error: ValidationError, text: str, data: Any) -> str:
    lines = []
    for err in error.errors(include_url=False):
        loc = err["loc"]
        if not loc:
            # A check across sections (Policy's own validator): its message names the field.
            lines.append(f"  {err['msg'].removeprefix('Value error, ')}")
            continue
        path = _format_loc(loc)
        name = _rule_name(data, loc)
        line = yaml_line(text, loc)
        where = path + (f" (rule {name!r})" if name else "") + (f" at line {line}" if line else "")
        if err["type"] == "extra_forbidden":
            lines.append(f"  {where}: unknown key (a typo? not a field here), value {_short_repr(err['input'])}")
        elif err["type"] == "missing":
            lines.append(f"  {where}: required, missing")
        elif isinstance(err["input"], (dict, list)) and err["type"] == "value_error":
            # A check across fields: its message names the values; repeating the whole section is noise.
            lines.append(f"  {where}: {err['msg'].removeprefix('Value error, ')}")
        else:
            lines.append(f"  {where}: {err['msg'].removeprefix('Value error, ')} (got {_short_repr(err['input'])})")
    count = len(lines)
    return f"invalid policy {source}: {count} error{'s' if count > 1 else ''}\n" + "\n".join(lines)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a repeated key: PyYAML keeps the last silently, and a policy where the second
    `replenish:` limit wins over the first is a typo that should not reach production."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"found duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def parse_policy(text: str, source: str = "<in memory>") -> Policy:
    """Validate policy YAML text; `source` names it in errors and in `Policy.source`."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        context_mark = getattr(exc, "context_mark", None)
        if context and context_mark is not None and context_mark.line != getattr(mark, "line", None):
            context += f" started at line {context_mark.line + 1}"
        raise PolicyError(f"invalid YAML in policy {source}{where}: {problem}" + (f" ({context})" if context else "")) from None
    if data is None:
        raise PolicyError(f"policy {source} is empty")
    if not isinstance(data, dict):
        raise PolicyError(f"policy {source} must be a mapping of sections at the top level, got {type(data).__name__}")
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_validation_message(source, exc, text, data)) from None
    policy._source = source
    return policy


def load_policy(path: str | os.PathLike[str] | None = None) -> Policy:
    """The policy from `path`; without one from the file `$DEMAND_CONTROL_POLICY` names, else the packaged
    default. Raises `PolicyError` for a missing, unreadable or invalid file."""
    if path is None and os.environ.get(POLICY_ENV):
        path, origin = os.environ[POLICY_ENV], f" (named by ${POLICY_ENV})"
    else:
        origin = ""
    if path is None:
        resource = files(DEFAULT_POLICY_PACKAGE).joinpath(DEFAULT_POLICY_FILE)
        return parse_policy(resource.read_text(encoding="utf-8"), str(resource))
    source = str(Path(path))
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"policy file {source}{origin} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"policy file {source}{origin} cannot be read: {exc}") from None
    return parse_policy(text, source)
