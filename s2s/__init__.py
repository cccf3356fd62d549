"""s2s: sequence-to-sequence summarization in PyTorch.

Importing the package registers every built-in part (tokenizers, readers, encoders,
attentions, decoders, optimizers, schedulers, searchers) with its registry.
"""
__version__ = "0.1.0"
