"""s2s: sequence-to-sequence summarization in PyTorch.

Importing the package imports nothing else: each registry (``s2s.registry``) imports the modules
of its built-in parts the first time it is asked for one, so commands that need no model (``s2s
evaluate``) never import torch.
"""

from s2s.version import __version__

__all__ = ["__version__"]
