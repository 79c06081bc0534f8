"""Typed configs: YAML files plus dotted command-line overrides, validated before any work starts.

Each command has one pydantic model (unknown keys and wrong types are errors). A config is built
from, in order: the model's defaults, a YAML file (``--config x.yaml``), the command's typed options (kept
as they are: ``--out 2025-03-01`` is a path, not a date), then ``key=value`` or ``section.key=value``
overrides whose values are read as YAML with YAML 1.2's numbers (``lr=3e-6``, ``people=[3,4]``,
``curriculum=true``; ``seed=010``, ``1:30`` and ``2025-03-01`` stay the text typed: `parse_overrides`).
Errors come out as one line: ``config error: ...``.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from logicrl.errors import ConfigError, DataError
from logicrl.io import atomic_write_text, read_text_file

T = TypeVar("T", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for all configs: unknown keys are errors, assignments are validated, and a float must be finite
    (``inf`` as a learning rate trains to NaN weights without an error)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a mapping with the same key twice is an error (PyYAML keeps the last
    one silently, so a config that sets ``steps`` twice would run with whichever comes last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *base``: its keys may be overridden here
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) or key is None:
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"key {key!r} appears twice",
                                                            key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^(?:[-+]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
                    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_RETYPED = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool",
            "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value"}


class OverrideLoader(UniqueKeyLoader):
    """How an override's value is read: `UniqueKeyLoader` with YAML 1.2's plainer numbers and booleans
    (`parse_overrides`)."""


OverrideLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _RETYPED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
for _tag, _regexp, _first in (("int", _INT, "-+0123456789"), ("float", _FLOAT, "-+0123456789."),
                              ("bool", _BOOL, "tTfF")):
    OverrideLoader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", _regexp, list(_first))


class OverrideDumper(yaml.SafeDumper):
    """PyYAML's safe dumper, quoting every string that `OverrideLoader` or YAML 1.1 would read as another
    type (`exact_override`)."""


for _tag, _regexp, _first in (("int", _INT, "-+0123456789"), ("float", _FLOAT, "-+0123456789.")):
    OverrideDumper.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", _regexp, list(_first))


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a": {"b": 1}, "c": "x"}`` with YAML-typed values.

    A value is read as YAML (``[3, 4]``, ``{lr: 1.0e-6}``, ``null``, ``'quoted text'``) whose numbers and
    booleans are YAML 1.2's: an integer is decimal digits with no leading zero (``0``, ``-3``), a float has
    a point or an exponent (``3e-6``, ``.5``, ``.inf``), a boolean is ``true`` or ``false``. What YAML 1.1
    would retype stays the text typed: ``010`` (octal 8 to YAML 1.1), ``0b10``, ``0x10``, ``1:30`` (base
    60), ``1_000``, ``2025-03-01`` (a date), ``yes``/``no``/``on``/``off``; a field of another type then
    reads that text as it reads any (an int field takes ``010`` as 10 and refuses ``1:30``). A value that
    is not YAML at all (``x: [y``) is text too, unless it starts with ``[`` or ``{``: a list or mapping
    YAML cannot read (``overrides=[a=1,data.people=[2,3]]``, whose inner ``[`` ends the outer list's item)
    is a ConfigError saying to quote the item.

    One list is what one source gives, so a key given twice in it (``steps=2 steps=3``), or a section and a
    key inside it (``optim.lr=1e-6 optim={}``: which wins?), is a ConfigError, as a key twice in a config
    file is; sources layered one over the other are combined first (`combine_overrides`)."""
    tree: dict[str, Any] = {}
    given: dict[str, str] = {}  # key -> its item
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must look like key=value (e.g. lr=3e-6)")
        key = key.strip()
        for other_key, other in given.items():
            if other_key == key:
                raise ConfigError(f"{key} given twice ({other}, {item}): give it once")
            if other_key.startswith(f"{key}.") or key.startswith(f"{other_key}."):
                section = min(key, other_key, key=len)
                raise ConfigError(f"{section} given with a key inside it ({other}, {item}): which one wins is "
                                  "ambiguous; give the section or its keys")
        given[key] = item
        _put(tree, key, _override_value(item, raw), f"override {item!r}")
    return tree


def combine_overrides(*layers: list[str]) -> list[str]:
    """One list of overrides from several, each later one winning (a command's options as overrides, then the
    user's; an experiment's defaults', a run's own, then the experiment-wide ones): each list is checked on
    its own (`parse_overrides`), and an item that a later list sets again is dropped, so that the result
    means the same to `parse_overrides`, with no key given twice. A later key inside an earlier section's
    value (``optim={lr: 1, betas: [...]}``, then ``optim.lr=2``) is merged into it."""
    combined: list[str] = []
    for layer in layers:
        parse_overrides(layer)
        for item in layer:
            key = item.partition("=")[0].strip()
            kept = []
            for earlier in combined:
                earlier_key = earlier.partition("=")[0].strip()
                if earlier_key == key or earlier_key.startswith(f"{key}."):
                    continue
                if key.startswith(f"{earlier_key}."):  # a key of that section: the section's value, updated
                    value: Any = deep_merge(parse_overrides([earlier]), parse_overrides([item]))
                    for part in earlier_key.split("."):
                        value = value[part]
                    earlier, item = exact_override(earlier_key, value), ""
                kept.append(earlier)
            combined = [*kept, item] if item else kept
    return combined


def _override_value(item: str, raw: str) -> Any:
    """The value of override ``item`` (``raw``: after the ``=``), as `parse_overrides` reads it."""
    if not raw.strip():
        return ""
    try:
        value = yaml.load(raw, Loader=OverrideLoader)  # a SafeLoader
    except yaml.YAMLError as exc:
        if not raw.lstrip().startswith(("[", "{")):
            return raw
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if isinstance(exc, yaml.constructor.ConstructorError):  # read, but not as plain data (a key twice)
            raise ConfigError(f"override {item!r}: {reason}") from None
        raise ConfigError(f"override {item!r}: not a valid YAML list or mapping ({reason}): quote each item that "
                          "holds brackets ([a=1, \"data.people=[2,3]\"]) or text that starts with [ or {, and the "
                          "whole override in the shell") from None
    comment = _dropped_comment(raw, value)
    if comment is not None:
        key = item.partition("=")[0].strip()
        raise ConfigError(f"override {item!r}: YAML reads {comment!r} as a comment and drops it; quote the value "
                          f"({key}='...') to keep it") from None
    return value


_COMMENT = re.compile(r"(?:^|\s)#")  # where a YAML comment may start


def _dropped_comment(raw: str, value: Any) -> str | None:
    """The comment YAML dropped to read ``raw`` as ``value`` (``Solve it. #1 rule`` -> ``Solve it.``, comment
    ``#1 rule``), or None: the text before the first place a comment may start reads as the same value (inside
    quotes, that text does not parse)."""
    start = _COMMENT.search(raw)
    if start is None:
        return None
    try:
        head = yaml.load(raw[:start.start()], Loader=OverrideLoader)
    except yaml.YAMLError:
        return None
    return raw[start.start():].strip() if type(head) is type(value) and head == value else None


def _nest(values: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1, "c": x}`` -> ``{"a": {"b": 1}, "c": x}``, the values kept as they are (typed)."""
    tree: dict[str, Any] = {}
    for key, value in values.items():
        _put(tree, key, value, f"{key}={value!r}")
    return tree


def _put(tree: dict[str, Any], key: str, value: Any, what: str) -> None:
    """``tree[a][b] = value`` for the dotted ``key`` ``a.b``; ConfigError naming ``what`` if ``a`` holds a
    value."""
    node = tree
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{what} conflicts with an earlier override of {part!r}")
    node[parts[-1]] = value


def exact_override(key: str, value: Any) -> str:
    """A ``key=value`` override whose value `parse_overrides` reads back as exactly ``value`` (a string or a
    path YAML would retype, like ``2025-03-01``, ``yes`` or ``0123``, is quoted)."""
    text = yaml.dump(str(value) if isinstance(value, Path) else value, Dumper=OverrideDumper,
                     default_flow_style=True, width=float("inf"))
    text = text.removesuffix("\n").removesuffix("\n...")  # a scalar document ends with "..."
    return f"{key}={text}"


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping of a YAML config file (`UniqueKeyLoader`); ConfigError, one line with the line number, for
    a missing file, a folder, invalid YAML, a key given twice, or anything but a mapping."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {path} is a folder, not a YAML file")
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.load(read_text_file(path), Loader=UniqueKeyLoader) or {}  # a SafeLoader: plain data only
    except DataError as exc:
        raise ConfigError(f"config file {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{path} is not valid YAML: {exc.problem or exc.context}{where}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of config keys, not {type(data).__name__}")
    return data


def checkpoint_run_config(model: str | Path) -> dict[str, Any] | None:
    """The saved config (``config.yaml``) of the logicrl run that checkpoint ``model`` (``RUN/checkpoints/step_N``)
    belongs to; None for any other model, or a config that cannot be read."""
    checkpoint = Path(model)
    config = checkpoint.parent.parent / "config.yaml"
    if checkpoint.parent.name != "checkpoints" or not config.is_file():
        return None
    try:
        return read_yaml(config)
    except ConfigError:
        return None


def load_config(model: type[T], path: str | Path | None = None, overrides: list[str] | None = None,
                **explicit: Any) -> T:
    """Defaults < YAML file < ``explicit`` keyword values < dotted overrides.

    ``explicit`` holds typed values (None: not given), used as they are; a key may be dotted
    (``**{"model.name": name}``)."""
    given = deep_merge(_nest({k: v for k, v in explicit.items() if v is not None}), parse_overrides(overrides or []))
    data = deep_merge(read_yaml(path) if path else {}, given)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, model, path, given)) from None


def format_validation_error(exc: ValidationError, model: type[BaseModel], path: str | Path | None,
                            given: Mapping[str, Any] | None = None) -> str:
    """First pydantic error as one line: where, what, and the valid keys for unknown ones; "in PATH" unless the
    key's value came from the command line (``given``: the options and overrides, nested); a check across keys
    names both sources when both gave values."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "config"
    source = f" in {path}" if path and not _gives(given or {}, err["loc"]) else ""
    if path and given and not err["loc"]:  # a check across keys: the file's values and the command line's
        source = f" ({path} with the command line's values)"
    if err["type"] == "extra_forbidden":
        valid = ", ".join(fields_at(model, err["loc"][:-1]))
        return f"unknown config key {where!r}{source} (valid keys: {valid})"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    message = err["msg"].removeprefix("Value error, ")
    read_as = {dict: "a mapping (text with ': ')", list: "a list (text that starts with '- ')"}.get(type(err["input"]))
    if err["type"] == "string_type" and read_as:  # ``prompt.system_prompt=Answer: think first``
        message += f": YAML read the value as {read_as}; quote it ({where}='...')"
    return f"{where}{source}: {message}{more}"


def _gives(tree: Mapping[str, Any], loc: tuple) -> bool:
    """Whether the nested ``tree`` sets the value at ``loc`` (or a section holding it)."""
    node: Any = tree
    for part in loc:
        if not isinstance(node, Mapping):
            return True
        if str(part) not in node:
            return False
        node = node[str(part)]
    return bool(loc)


def fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the (nested) config section at ``loc``; an optional section (``LoraConfig | None``)
    lists its model's, and so does a named one of a section of models (``runs.grpo`` of ``runs: dict[str,
    RunSpec]``)."""
    parts = list(loc)
    while parts:
        field = model.model_fields.get(str(parts.pop(0)))
        annotation = getattr(field, "annotation", None)
        union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
        options = [a for a in (typing.get_args(annotation) if union else (annotation,)) if a is not type(None)]
        if len(options) == 1 and typing.get_origin(options[0]) is dict:  # the next part is a name
            if not parts:
                return []
            parts.pop(0)
            options = [typing.get_args(options[0])[-1]]
        sections = [a for a in options if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(sections) != 1:
            return []
        model = sections[0]
    return list(model.model_fields)


def save_config(config: BaseModel, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically)."""
    atomic_write_text(Path(path), yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
