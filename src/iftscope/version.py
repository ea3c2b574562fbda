"""The package version, in a leaf module that anything may import without an import cycle."""

__version__ = "0.1.0"
