"""Optional dependencies (``pip install 's2s[EXTRA]'``), imported only by the feature that needs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from s2s.errors import MissingExtraError


def require(module: str, extra: str, feature: str) -> ModuleType:
    """``module``, imported; a clear one-line error naming the extra to install when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"{feature} needs {module}: pip install 's2s[{extra}]'") from None
