"""Descriptions of trained models for people: layer tables now, plots and reports later."""

from .summary import LayerInfo, format_layer_table, layer_table

__all__ = ["LayerInfo", "format_layer_table", "layer_table"]
