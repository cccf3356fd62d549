"""s2s: sequence-to-sequence summarization in PyTorch.

Importing the package registers every built-in part with its registry: readers (data),
tokenizers, encoders, attentions, decoders, optimizers and schedulers (optim), searchers
(search) and metrics.
"""
__version__ = "0.1.0"

from s2s import attention, data, decoders, encoders, metrics, optim, search, tokenizers  # noqa: F401,E402
