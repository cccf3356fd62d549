"""s2s: sequence-to-sequence summarization in PyTorch.

Importing the package imports nothing else: each registry (``s2s.registry``) imports the modules
of its built-in parts the first time it is asked for one, so commands that need no model (``s2s
evaluate``) never import torch.
"""

__version__ = "0.2.0"
