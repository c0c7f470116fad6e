"""Descriptions of trained models for people: the layer table and the HTML report."""

from typing import Any

from .summary import LayerInfo, format_layer_table, layer_table

__all__ = ["LayerInfo", "format_layer_table", "layer_table", "write_report"]


def __getattr__(name: str) -> Any:
    # The report imports matplotlib, so it loads on first use rather than with aekit.
    if name == "write_report":
        from .html import write_report

        return write_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
