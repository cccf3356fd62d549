"""Options: typed, checked settings as dataclasses, and parts chosen by name.

A config is a tree of option dataclasses. A plain field is a setting; the comment after it is its
help text (``s2s config --list``, docs/config.md)::

    @dataclass
    class RNNEncoderOptions(PartOptions):
        hidden_size: PositiveInt = 256  # per direction

A *part* field holds the options of whichever part its section names: ``encoder: PartOptions =
part(ENCODERS, "lstm")`` reads ``type`` from its section (or uses ``lstm``), looks up the options
dataclass that part registered, and checks the rest of the section against it. So a key, a type
or a default belongs to the part that declared it, and a plugin's part brings options of its own.
A section may also be just the name: ``encoder: gru``.

Layers (a file, the files it is based on, each command-line override) are merged one at a time
by ``Layers.add``: every key is checked when its layer is added, so an error names the file or
the override that holds it, with the nearest valid key. When a layer changes a part's name, the
options of the lower layers that the new part also has are kept; the others are dropped.

Why not pydantic's discriminated unions or OmegaConf's structured configs: the set of parts is
open (plugins register more after the schema is written), errors must name the layer a key came
from, and this is about 300 lines with no dependency.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from s2s.errors import ConfigError

if typing.TYPE_CHECKING:
    from s2s.registry import Registry

_PART = "s2s.part"


@dataclass
class PartOptions:
    """The options every part has: its registered name. Parts with options of their own subclass it."""

    type: str = ""  # the registered name of the part


@dataclass(frozen=True)
class Range:
    """Bounds for a number: ``Annotated[float, Range(0, 1, max_open=True)]`` is [0, 1)."""

    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False

    def check(self, value: float) -> str | None:
        """None when ``value`` is inside, else what is wrong."""
        if self.min == 0 and not self.min_open and self.max is None and value < 0:
            return f"must not be negative, got {value}"
        low = self.min is not None and (value <= self.min if self.min_open else value < self.min)
        high = self.max is not None and (value >= self.max if self.max_open else value > self.max)
        return f"must be {self}, got {value}" if low or high else None

    def __str__(self) -> str:
        if self.min is not None and self.max is not None:
            return (
                f"in {'(' if self.min_open else '['}{_num(self.min)}, {_num(self.max)}{')' if self.max_open else ']'}"
            )
        if self.min is not None:
            return f"{'greater than' if self.min_open else 'at least'} {_num(self.min)}"
        return f"{'less than' if self.max_open else 'at most'} {_num(self.max)}"


PositiveInt = Annotated[int, Range(min=1)]
NonNegativeInt = Annotated[int, Range(min=0)]
PositiveFloat = Annotated[float, Range(min=0, min_open=True)]
NonNegativeFloat = Annotated[float, Range(min=0)]
Dropout = Annotated[float, Range(0, 1, max_open=True)]


class OptionError(Exception):
    """Raised by an options dataclass's ``validate(root)``: option ``key`` is wrong, ``message`` says why."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


@dataclass(frozen=True)
class PartSpec:
    registry: Registry[Any]
    default: str | None
    base: type  # the options when no name is given or resolved
    resolve: Callable[[Mapping[str, Any]], str | None] | None  # the name from the section's other values

    def options_type(self, name: str | None) -> type:
        return self.base if name is None else self.registry.options_type(name)


def part_of(f: dataclasses.Field) -> PartSpec | None:
    """The part a field holds (None for a plain field)."""
    return f.metadata.get(_PART)


def part(
    registry: Registry[Any],
    default: str | None,
    *,
    base: type = PartOptions,
    resolve: Callable[[Mapping[str, Any]], str | None] | None = None,
) -> Any:
    """A field holding the options of the part its section names (``default`` when it names none;
    ``resolve`` may tell the name from the section's other values first, and then the section's
    name stays as given, so that it is resolved again when those values change)."""
    spec = PartSpec(registry, default, base, resolve)
    named = {} if resolve else {registry.key: default}  # a resolved name stays unset (see above)
    return field(default_factory=lambda: spec.options_type(default)(**named), metadata={_PART: spec})


# ---------------------------------------------------------------------------------------------
# Merging layers
# ---------------------------------------------------------------------------------------------


class Layers:
    """Config layers merged into one tree of checked values, remembering where each value came from.

    ``legacy``: section path -> keys an older layout accepted there; given where the chosen part
    does not take them, they are dropped (and listed in ``ignored``) instead of refused.
    """

    def __init__(self, schema: type, legacy: Mapping[str, frozenset[str]] | None = None) -> None:
        self.schema = schema
        self.tree: dict[str, Any] = {}
        self.sources: dict[str, str] = {}  # dotted key -> the layer that set it
        self.ignored: list[str] = []
        self._legacy = legacy or {}
        self._source = ""

    def add(self, layer: Any, source: str) -> None:
        """Merge ``layer`` (a mapping) on top; a ``ConfigError`` names ``source`` and the key."""
        self._source = source
        self.tree = self._merge(self.schema, self.tree, layer, "", None)

    def build(self) -> Any:
        """The schema's dataclass, built from the merged tree; ``validate(root)`` hooks are run."""
        root = self._build(self.schema, self.tree, "")
        _run_validators(root, root, "", self.where)
        return root

    def where(self, dotted: str) -> str:
        """The layer that set ``dotted`` (or a section above it); "defaults" if none did."""
        while dotted:
            if dotted in self.sources:
                return self.sources[dotted]
            dotted = dotted.rpartition(".")[0]
        return "defaults"

    def _error(self, dotted: str, message: str) -> ConfigError:
        return ConfigError(f"{self._source}: {dotted or 'top level'}: {message}")

    def _merge(self, cls: type, tree: dict[str, Any], layer: Any, path: str, owner: str | None) -> dict[str, Any]:
        if layer is None:
            return tree
        if not isinstance(layer, dict):
            raise self._error(path, f"expected a mapping, got {describe_value(layer)}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        hints = typing.get_type_hints(cls, include_extras=True)
        merged = dict(tree)
        for key, value in layer.items():
            dotted = f"{path}.{key}" if path else str(key)
            if key not in fields:
                if key in self._legacy.get(path, ()):
                    self.ignored.append(dotted)
                    continue
                raise self._error(dotted, _unknown_key(str(key), list(fields), owner))
            spec = part_of(fields[key])
            if spec is not None:
                merged[key] = self._merge_part(spec, merged.get(key) or {}, value, dotted)
            elif _is_options(hints[key]):
                merged[key] = self._merge(hints[key], merged.get(key) or {}, value, dotted, None)
            else:
                merged[key] = coerce(value, hints[key], dotted, self._error)
            self.sources[dotted] = self._source
        return merged

    def _merge_part(self, spec: PartSpec, tree: dict[str, Any], layer: Any, path: str) -> dict[str, Any]:
        key = spec.registry.key
        if isinstance(layer, str):  # `encoder: gru` is `encoder: {type: gru}`
            layer = {key: layer}
        if layer is not None and not isinstance(layer, dict):
            raise self._error(path, f"expected a mapping, got {describe_value(layer)} (or a {spec.registry.kind} name)")
        before = self._part_name(spec, tree, path)
        name = self._part_name(spec, {**tree, **(layer or {})}, path)
        try:
            cls = spec.options_type(name)
        except ConfigError as err:
            raise self._error(f"{path}.{key}", str(err)) from None
        if name != before:  # another part: keep what it shares with the one below
            kept = {f.name for f in dataclasses.fields(cls)}
            tree = {k: v for k, v in tree.items() if k in kept}
        owner = f"{spec.registry.kind} {name!r}" if name is not None else None
        return self._merge(cls, tree, layer, path, owner)

    def _part_name(self, spec: PartSpec, section: Mapping[str, Any], path: str) -> str | None:
        name = section.get(spec.registry.key)
        if name is not None and not isinstance(name, str):
            kind = spec.registry.kind
            raise self._error(f"{path}.{spec.registry.key}", f"expected a {kind} name, got {describe_value(name)}")
        if name is None and spec.resolve is not None:
            name = spec.resolve(section)
        return name if name is not None else spec.default

    def _build(self, cls: type, tree: Mapping[str, Any], path: str) -> Any:
        hints = typing.get_type_hints(cls, include_extras=True)
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in tree:
                continue
            value, dotted = tree[f.name], f"{path}.{f.name}" if path else f.name
            spec = part_of(f)
            if spec is not None:
                kwargs[f.name] = self._build(spec.options_type(self._part_name(spec, value, dotted)), value, dotted)
            elif _is_options(hints[f.name]):
                kwargs[f.name] = self._build(hints[f.name], value, dotted)
            else:
                kwargs[f.name] = value
        obj = cls(**kwargs)
        for f in dataclasses.fields(cls):  # a part's name left to its default is filled in
            spec = part_of(f)
            if spec is not None and spec.resolve is None and f.name in tree:
                options = getattr(obj, f.name)
                setattr(options, spec.registry.key, self._part_name(spec, tree[f.name], f.name))
        return obj


def _run_validators(obj: Any, root: Any, path: str, where: Callable[[str], str]) -> None:
    """Call ``validate(root)`` on every options dataclass of the tree, parents first."""
    check = getattr(obj, "validate", None)
    if callable(check):
        try:
            check(root)
        except OptionError as err:
            dotted = f"{path}.{err.key}" if path else err.key
            raise ConfigError(f"{where(dotted)}: {dotted}: {err.message}") from None
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            _run_validators(value, root, f"{path}.{f.name}" if path else f.name, where)


def _unknown_key(key: str, names: list[str], owner: str | None) -> str:
    """The message for an unknown key: the nearest valid one where it is near, else them all."""
    hint = difflib.get_close_matches(key, names, n=1, cutoff=0.75)
    if owner is None:
        return f"unknown key (did you mean {hint[0]!r}?)" if hint else f"unknown key (valid keys: {', '.join(names)})"
    if hint:
        return f"unknown option of {owner} (did you mean {hint[0]!r}?)"
    return f"unknown option of {owner} (options: {', '.join(n for n in names if n != 'type') or 'none'})"


def _is_options(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


def coerce(value: Any, hint: Any, path: str, error: Callable[[str, str], Exception]) -> Any:
    """``value`` checked against type ``hint`` (and its ``Range``); numbers where YAML is
    ambiguous (``1e-3`` is a string to PyYAML) are converted. ``error(path, message)`` makes the
    error (``path``: where the value is, list items with their index)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        value = coerce(value, args[0], path, error)
        for bound in (a for a in args[1:] if isinstance(a, Range)):
            if (problem := bound.check(value)) is not None:
                raise error(path, problem)
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return coerce(value, option, path, error)
            except Exception as err:  # noqa: BLE001 - the first option's error is reported
                errors.append(err)
        raise errors[0]
    if origin is Literal:
        if value not in args:
            raise error(path, f"expected one of {', '.join(map(str, args))}, got {describe_value(value)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise error(path, f"expected a list, got {describe_value(value)}")
        return [coerce(item, args[0], f"{path}[{i}]", error) for i, item in enumerate(value)]
    expected = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint not in expected:
        raise TypeError(f"option type {hint!r} is not supported")
    if hint is float and (number := _as_float(value)) is not None:
        if not math.isfinite(number):
            raise error(path, f"expected a finite number, got {value}")
        return number
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise error(path, f"expected {expected[hint]}, got {describe_value(value)}")


def _as_float(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def describe_value(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return f"{value!r} ({type(value).__name__})"


def describe_type(hint: Any) -> str:
    """A short readable type: ``int >= 1``, ``pre | post``, ``str | None``, ``list[str]``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        bounds = [str(a) for a in args[1:] if isinstance(a, Range)]
        return " ".join([describe_type(args[0]), *bounds])
    if origin in (typing.Union, types.UnionType):
        return " | ".join("None" if a is type(None) else describe_type(a) for a in args)
    if origin is Literal:
        return " | ".join(map(str, args))
    if origin is list:
        return f"list[{describe_type(args[0])}]"
    return getattr(hint, "__name__", str(hint))


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# ---------------------------------------------------------------------------------------------
# Help and conversions
# ---------------------------------------------------------------------------------------------

_FIELD_LINE = re.compile(r"^\s+(\w+)\s*:[^#]*#\s*(.+?)\s*$")


def option_help(cls: type) -> dict[str, str]:
    """Each field's help: the comment on its line in the class body (base classes too)."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            lines = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):  # no source (e.g. defined in a REPL)
            continue
        for line in lines:
            if match := _FIELD_LINE.match(line):
                found[match.group(1)] = match.group(2)
    return found


@dataclass(frozen=True)
class OptionInfo:
    name: str
    type: str
    default: Any
    help: str
    options: type | None = None  # a nested options dataclass (or a part's default options)


def describe_options(cls: type) -> list[OptionInfo]:
    """The fields of an options dataclass with their types, defaults and help."""
    helps = option_help(cls)
    hints = typing.get_type_hints(cls, include_extras=True)
    infos = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        spec = part_of(f)
        if spec is not None:
            kind = f"{spec.registry.kind} ({spec.registry.key}: {' | '.join(spec.registry.names())})"
            infos.append(OptionInfo(f.name, kind, spec.default, helps.get(f.name, ""), type(default)))
        elif dataclasses.is_dataclass(default):
            infos.append(OptionInfo(f.name, "section", None, helps.get(f.name, ""), type(default)))
        else:
            infos.append(OptionInfo(f.name, describe_type(hints[f.name]), default, helps.get(f.name, "")))
    return infos


def retype(options: Any, registry: Registry[Any], name: str) -> Any:
    """``options`` as the options of part ``name`` of ``registry``: the values both have are kept."""
    cls = registry.options_type(name)
    wanted = {f.name for f in dataclasses.fields(cls)}
    values = {f.name: getattr(options, f.name) for f in dataclasses.fields(options) if f.name in wanted}
    return cls(**{**values, registry.key: name})
