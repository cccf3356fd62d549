"""The package's version, in a module of its own so that any module can read it without the package."""

__version__ = "0.2.0"
DISTRIBUTION = "s2s-summarizer"  # the name on the package index (`s2s` is taken); import name and command: s2s
