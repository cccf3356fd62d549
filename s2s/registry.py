"""One small registry class: every part a config names is built through one of these.

    ENCODERS = Registry("encoder")

    @ENCODERS.register("lstm")
    class LSTMEncoder(RNNEncoder): ...

    encoder = ENCODERS.build(cfg.model.encoder, input_size=128)  # cfg has `type: lstm`

A registered factory is called as ``factory(cfg, **kwargs)``: the config section it was named
in, plus whatever the caller knows at build time (sizes, vocabularies, parameters).
"""
from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

from s2s.errors import ConfigError

T = TypeVar("T", bound=Callable[..., Any])


class Registry(Generic[T]):
    """Maps names to factories of one kind of part (encoder, attention, optimizer, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@REGISTRY.register("name")`` above a class or function."""

        def add(factory: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = factory
            return factory

        return add

    def get(self, name: str) -> T:
        """The factory registered as ``name``; an unknown name lists the valid choices."""
        try:
            return self._entries[name]
        except KeyError:
            choices = ", ".join(self.names())
            raise ConfigError(f"unknown {self.kind} {name!r} (choices: {choices})") from None

    def build(self, cfg: Any, **kwargs: Any) -> Any:
        """Build the part named by ``cfg.type``, passing it ``cfg`` and ``kwargs``."""
        return self.get(cfg.type)(cfg, **kwargs)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"
