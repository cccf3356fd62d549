"""The config reference, read off the options types themselves (so it cannot drift from them):
``s2s config --list KIND`` and ``s2s config --markdown`` (docs/config.md)."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator
from typing import Any

from s2s.config import Config
from s2s.errors import ConfigError
from s2s.options import OptionInfo, PartOptions, PartSpec, describe_options, part_of
from s2s.registry import KINDS, Registry

SECTIONS = {
    "data": "The files and how to read them. Every reader takes these; readers add their own options.",
    "tokenizer": "How text becomes tokens.",
    "vocab": "The vocabularies, built from the training split.",
    "model": "The model family and its parts.",
    "train": "The training run: its length, batches, optimizer, schedule, evaluation and checkpoints.",
    "predict": "Decoding (`s2s predict`, `s2s serve`, and greedy decoding of the dev set during training).",
}


def list_parts(kind: str) -> str:
    """The registered parts of ``kind``, each with its options, their defaults and help."""
    if kind not in KINDS:
        raise ConfigError(f"unknown kind {kind!r} (choices: {', '.join(KINDS)})")
    registry = KINDS[kind]
    lines = [f"{kind} parts (named by {', '.join(_named_by(registry))}):"]
    shared = _shared_options(registry)
    if shared:
        lines.append(f"  (every {kind} also takes: {', '.join(sorted(shared - {registry.key}))})")
    for entry in registry.entries():
        lines.append(f"  {entry.name}: {entry.summary}")
        options = list(_options(entry.options, skip={registry.key, *shared}))
        lines += [f"      {key}: {o.type} = {_show(o.default)}  {o.help}".rstrip() for key, o in options]
        lines += [] if options else ["      (no options of its own)"]
    return "\n".join(lines)


def markdown() -> str:
    """Every section and every part's options, as Markdown."""
    out = [
        "# Config reference",
        "",
        "Generated from the options types by `s2s config --markdown > docs/config.md` (a test checks that it",
        "is current). A section that names a part (`model.type`, `model.encoder.type`, `data.format`, ...)",
        "takes the options that part declares, listed under its kind below; `s2s config CONFIG` prints a",
        "config with every default filled in, and `s2s config --list KIND` lists the parts of a kind.",
        "",
    ]
    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        out += [f"## `{f.name}`", "", SECTIONS.get(f.name, ""), ""]
        spec = part_of(f)
        if spec is not None:
            kinds = f"[{spec.registry.kind} parts](#{spec.registry.kind}-parts)"
            out += [f"`{f.name}.{spec.registry.key}` names one of the {kinds} (default: `{spec.default}`).", ""]
        options = _options(
            spec.base if spec else hints[f.name], prefix=f.name, skip={spec.registry.key} if spec else set()
        )
        out += _table(list(options))
    for kind, registry in KINDS.items():
        out += [f"## {kind} parts", "", f"Named by {', '.join(f'`{p}`' for p in _named_by(registry))}.", ""]
        shared = _shared_options(registry)
        if shared:
            out += [f"Every {kind} takes the options of its section (above); these are the ones each adds.", ""]
        for entry in registry.entries():
            out += [f"### {kind} `{entry.name}`", "", entry.summary, ""]
            out += _table(list(_options(entry.options, skip={registry.key, *shared}))) or ["No options of its own.", ""]
    return "\n".join(out) + "\n"


def _options(
    cls: type, prefix: str = "", skip: frozenset[str] | set[str] = frozenset()
) -> Iterator[tuple[str, OptionInfo]]:
    """(dotted key, info) of the options of ``cls`` but ``skip``, nested sections expanded."""
    for option in describe_options(cls):
        if option.name in skip:
            continue
        key = f"{prefix}.{option.name}" if prefix else option.name
        if option.type == "section":
            yield from _options(option.options, key)
        else:
            yield key, option


def _table(options: list[tuple[str, OptionInfo]]) -> list[str]:
    if not options:
        return []
    rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for key, o in options:
        default = f"`{_show(o.default)}`"
        rows.append(f"| `{key}` | {_cell(o.type)} | {default} | {_cell(o.help)} |")
    return [*rows, ""]


def _cell(text: str) -> str:
    return text.replace("|", "&#124;")


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, str) else str(value)


def _shared_options(registry: Registry[Any]) -> set[str]:
    """The options every part of ``registry`` takes from its section's base (readers: data's)."""
    bases = {spec.base for _, spec in _part_fields(Config, "") if spec.registry is registry}
    return {f.name for base in bases for f in dataclasses.fields(base)} if bases != {PartOptions} else set()


def _named_by(registry: Registry[Any]) -> list[str]:
    """The config keys that name a part of ``registry`` (e.g. ``model.encoder.type``)."""
    paths = {path for path, spec in _part_fields(Config, "") if spec.registry is registry}
    return [f"{path}.{registry.key}" for path in sorted(paths)] or [registry.key]


def _part_fields(cls: type, path: str, seen: frozenset[type] = frozenset()) -> Iterator[tuple[str, PartSpec]]:
    """(dotted path, part spec) of every part field under ``cls``, through every registered option type."""
    if cls in seen:
        return
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        dotted = f"{path}.{f.name}" if path else f.name
        spec = part_of(f)
        if spec is not None:
            yield dotted, spec
            for options in {entry.options for entry in spec.registry.entries()} | {spec.base}:
                yield from _part_fields(options, dotted, seen | {cls})
        elif isinstance(hints[f.name], type) and dataclasses.is_dataclass(hints[f.name]):
            yield from _part_fields(hints[f.name], dotted, seen | {cls})
