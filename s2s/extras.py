"""Optional dependencies (``pip install 's2s-summarizer[EXTRA]'``), imported only by the feature that needs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from s2s.errors import MissingExtraError
from s2s.version import DISTRIBUTION


def require(module: str, extra: str, feature: str) -> ModuleType:
    """``module``, imported; a clear one-line error naming the extra to install when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"{feature} needs {module}: pip install '{DISTRIBUTION}[{extra}]'") from None
