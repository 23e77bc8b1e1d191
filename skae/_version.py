"""The package version, in one place (read by pyproject and the file codec)."""

__version__ = "0.1.0"
