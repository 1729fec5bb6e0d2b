"""Describe a network: layers as LayerSpecs and the groups of layers whose channels are coupled."""

from amc.graph.layer_table import CouplingGroup, Layer, LayerTable, build_layer_table

__all__ = ["CouplingGroup", "Layer", "LayerTable", "build_layer_table"]
