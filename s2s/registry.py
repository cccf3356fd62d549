"""Registries: every part a config names is built through one, and brings its own options.

    @ENCODERS.register("lstm", options=RNNEncoderOptions)
    class LSTMEncoder(RNNEncoder): ...

    encoder = ENCODERS.build(cfg.model.encoder, input_size=128)  # cfg: RNNEncoderOptions(type="lstm", ...)

A registered factory is called as ``factory(options, **kwargs)``: the options it declared, filled
in from the config section that named it, plus what the caller knows at build time (sizes,
vocabularies, parameters). Validation reads ``options_type(name)``, so unknown keys, wrong types,
defaults and help come from the part itself (fairseq's ``register_model(name, dataclass=...)``).

The built-in parts register when the modules that define them are imported; each registry
imports its built-in modules the first time it is asked for a part, so ``import s2s`` and the
commands that need no model (``s2s evaluate``) never import torch. ``s2s --plugin MODULE`` imports
a module of your own, whose decorators add its parts.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from s2s.errors import ConfigError
from s2s.options import PartOptions

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered part: its name, what builds it and the options it reads."""

    name: str
    factory: T
    options: type  # a dataclass with a field named ``Registry.key``

    @property
    def summary(self) -> str:
        """The first line of the factory's description or docstring."""
        doc = getattr(self.factory, "description", None) or getattr(self.factory, "__doc__", None) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""


class Registry(Generic[T]):
    """Maps names to factories of one kind of part (encoder, attention, optimizer, ...).

    ``key`` is the option that names the part in its config section (``type`` for most;
    ``search`` for searchers, ``format`` for readers); ``builtins`` are the modules whose import
    registers the built-in parts.
    """

    def __init__(self, kind: str, *, key: str = "type", builtins: tuple[str, ...] = ()) -> None:
        self.kind, self.key = kind, key
        self._builtins = builtins
        self._loaded = not builtins
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, *, options: type | None = None) -> Callable[[T], T]:
        """Decorator: ``@REGISTRY.register("name", options=NameOptions)`` above a class or function.
        Without ``options`` the part takes none but its name (``PartOptions``)."""
        options = options or PartOptions
        names = {f.name for f in dataclasses.fields(options)} if dataclasses.is_dataclass(options) else set()
        if self.key not in names:
            raise TypeError(f"options of {self.kind} {name!r} must be a dataclass with a field {self.key!r}")

        def add(factory: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, factory, options)
            return factory

        return add

    def entry(self, name: str) -> Entry[T]:
        """The entry registered as ``name``; an unknown name lists the valid choices."""
        self._load_builtins()
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r} (choices: {', '.join(self.names())})") from None

    def get(self, name: str) -> T:
        """The factory registered as ``name``."""
        return self.entry(name).factory

    def options_type(self, name: str) -> type:
        """The options dataclass ``name`` declared."""
        return self.entry(name).options

    def build(self, options: Any, **kwargs: Any) -> Any:
        """Build the part named by ``options.<key>``, passing it ``options`` and ``kwargs``."""
        return self.get(getattr(options, self.key))(options, **kwargs)

    def names(self) -> list[str]:
        self._load_builtins()
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[name] for name in self.names()]

    def __contains__(self, name: object) -> bool:
        self._load_builtins()
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"

    def _load_builtins(self) -> None:
        if not self._loaded:
            self._loaded = True  # before importing: the modules' decorators call register()
            for module in self._builtins:
                importlib.import_module(module)


# Every kind of part, and the modules that register its built-ins.
READERS = Registry("reader", key="format", builtins=("s2s.readers", "s2s.automaster"))
TOKENIZERS = Registry("tokenizer", builtins=("s2s.tokenizers", "s2s.subwords"))
MODELS = Registry("model", builtins=("s2s.rnn", "s2s.transformer", "s2s.extractive", "s2s.hybrid"))
ENCODERS = Registry("encoder", builtins=("s2s.encoders",))
ATTENTIONS = Registry("attention", builtins=("s2s.attention",))
DECODERS = Registry("decoder", builtins=("s2s.decoders",))
OPTIMIZERS = Registry("optimizer", builtins=("s2s.optim",))
SCHEDULERS = Registry("scheduler", builtins=("s2s.optim",))
SEARCHERS = Registry("searcher", key="search", builtins=("s2s.search",))
METRICS = Registry("metric", builtins=("s2s.metrics",))
SAMPLING = Registry("sampling", builtins=("s2s.scheduled_sampling",))  # scheduled sampling's schedules

KINDS: dict[str, Registry[Any]] = {
    r.kind: r
    for r in (
        READERS,
        TOKENIZERS,
        MODELS,
        ENCODERS,
        ATTENTIONS,
        DECODERS,
        OPTIMIZERS,
        SCHEDULERS,
        SAMPLING,
        SEARCHERS,
        METRICS,
    )
}
