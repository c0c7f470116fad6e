"""The network as a table of layers, neurons, weights and biases."""

from __future__ import annotations

import dataclasses

from torch import nn

from ..models import Autoencoder
from ..models.layers import TiedLinear


@dataclasses.dataclass
class LayerInfo:
    """One leaf layer of a model: ``weights`` and ``biases`` count trainable values.

    ``neurons`` is the output width, or the output channels of a convolution.
    """

    name: str
    kind: str
    shape: str
    neurons: int
    weights: int
    biases: int


def layer_table(model: Autoencoder) -> list[LayerInfo]:
    """List the model's leaf layers in forward order, encoder first, then decoder."""
    rows: list[LayerInfo] = []
    neurons = 0
    for name, module in model.named_modules():
        if list(module.children()):
            continue
        kind = type(module).__name__
        shape, weights, biases = "", 0, 0
        if isinstance(module, nn.Linear):
            neurons = module.out_features
            shape = f"{module.in_features} -> {module.out_features}"
            weights = module.weight.numel()
            biases = module.bias.numel() if module.bias is not None else 0
        elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            neurons = module.out_channels
            kernel = "x".join(str(k) for k in module.kernel_size)
            shape = f"{module.in_channels} -> {module.out_channels}, {kernel}, stride {module.stride[0]}"
            weights = module.weight.numel()
            biases = module.bias.numel() if module.bias is not None else 0
        elif isinstance(module, TiedLinear):
            # The weight belongs to the encoder layer it mirrors and is counted there.
            neurons = module.out_features
            shape = f"{module.in_features} -> {module.out_features}, tied"
            biases = module.bias.numel()
        elif isinstance(module, nn.Embedding):
            # A categorical column's learned vectors, one per category (plus unknown and
            # missing slots), which feed the encoder's first layer.
            neurons = module.embedding_dim
            shape = f"{module.num_embeddings} categories -> {module.embedding_dim}"
            weights = module.weight.numel()
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            neurons = module.num_features
            shape = str(module.num_features)
            # The learned per-unit scale and shift; running statistics are buffers, not weights.
            weights = module.weight.numel() if module.weight is not None else 0
            biases = module.bias.numel() if module.bias is not None else 0
        rows.append(LayerInfo(name, kind, shape, neurons, weights, biases))

    # Embeddings of categorical columns come before the encoder; other layers outside the
    # encoder and decoder (a VAE's mu and logvar heads) sit between them.
    def stage(row: LayerInfo) -> int:
        if row.name.startswith("embeddings"):
            return -1
        return 0 if row.name.startswith("encoder") else 2 if row.name.startswith("decoder") else 1

    return sorted(rows, key=stage)


def format_layer_table(model: Autoencoder, input_dim: int) -> str:
    """Render :func:`layer_table` as text, with totals and the compression ratio."""
    rows = layer_table(model)
    latent_dim = model.latent_dim
    header = ("layer", "type", "shape", "neurons", "weights", "biases")
    body = [("input", "", "", f"{input_dim:,}", "", "")]
    for row in rows:
        body.append((row.name, row.kind, row.shape, f"{row.neurons:,}", _count(row.weights), _count(row.biases)))

    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]
    lines = [_format_line(header, widths)]
    lines += [_format_line(line, widths) for line in body]

    n_weights = sum(row.weights for row in rows)
    n_biases = sum(row.biases for row in rows)
    lines.append("")
    lines.append(f"latent code: {latent_dim} units")
    lines.append(f"total parameters: {n_weights + n_biases:,} (weights {n_weights:,}, biases {n_biases:,})")
    lines.append(f"compression ratio: {input_dim} / {latent_dim} = {input_dim / latent_dim:.1f}")
    return "\n".join(lines)


def _count(value: int) -> str:
    return f"{value:,}" if value else ""


def _format_line(cells: tuple[str, ...], widths: list[int]) -> str:
    # Text columns align left, counts align right.
    parts = [cell.ljust(width) if i < 3 else cell.rjust(width) for i, (cell, width) in enumerate(zip(cells, widths))]
    return "  ".join(parts).rstrip()
