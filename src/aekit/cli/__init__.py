"""Command-line interface; the entry point is :func:`aekit.cli.main.main`."""

from .main import cli, main

__all__ = ["cli", "main"]
