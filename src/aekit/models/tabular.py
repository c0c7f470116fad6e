"""Dense autoencoder for tables with categorical columns and missing values.

The input is a table encoded by :class:`aekit.data.schema.TableSchema`: one float column
per table column, numeric columns standardised, categorical columns holding the index
of their category slot, and NaN where a cell is missing. Inside the model, each
categorical column passes through a learned embedding sized from its cardinality, and
a missing numeric cell becomes 0 with a missing-indicator input. The decoder outputs
the numeric columns and one block of logits per categorical column (a softmax head).
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Autoencoder
from .layers import (
    ACTIVATIONS,
    LATENT_ACTIVATIONS,
    check_bool,
    check_choice,
    check_dropout,
    check_positive_int,
    dense_decoder,
    dense_encoder,
)

# Embedding width of a categorical column: about 1.6 * cardinality ** 0.56, a common
# rule of thumb for entity embeddings (not tuned here), between 2 and this cap.
MAX_EMBEDDING_DIM = 16


def embedding_dim(n_slots: int) -> int:
    """Width of the embedding of a categorical column with ``n_slots`` category slots."""
    return int(min(MAX_EMBEDDING_DIM, max(2, round(1.6 * n_slots**0.56))))


@dataclasses.dataclass(frozen=True)
class TabularConfig:
    """Architecture of a :class:`TabularAutoencoder`.

    ``cardinalities`` has one entry per table column: 0 for a numeric column, the
    number of category slots for a categorical one. ``column_weights`` multiply each
    column's error (squared error or cross-entropy) in the loss and the score.
    ``missing_indicators`` adds one 0/1 input per numeric column (1 = missing) and a
    "missing" embedding row per categorical column. ``unseen_cross_entropy`` is the
    least cross-entropy of a value never seen in training (its column's last slot),
    before weighting. The other fields are as in
    :class:`~aekit.models.DenseConfig`.
    """

    cardinalities: tuple[int, ...]
    column_weights: tuple[float, ...]
    latent_dim: int
    hidden_dims: tuple[int, ...] = (128, 64)
    activation: str = "relu"
    dropout: float = 0.0
    batch_norm: bool = True
    latent_activation: str = "identity"
    code_batch_norm: bool = True
    missing_indicators: bool = False
    unseen_cross_entropy: float = 0.0

    def __post_init__(self) -> None:
        if not self.cardinalities or len(self.column_weights) != len(self.cardinalities):
            raise ValueError(
                f"cardinalities and column_weights need one entry per column, got {len(self.cardinalities)} "
                f"and {len(self.column_weights)}."
            )
        check_positive_int("latent_dim", self.latent_dim)
        for position, width in enumerate(self.hidden_dims):
            check_positive_int(f"hidden_dims[{position}]", width)
        check_choice("activation", self.activation, sorted(ACTIVATIONS))
        check_choice("latent_activation", self.latent_activation, sorted(LATENT_ACTIVATIONS))
        check_dropout(self.dropout)
        check_bool("batch_norm", self.batch_norm)
        check_bool("code_batch_norm", self.code_batch_norm)
        check_bool("missing_indicators", self.missing_indicators)
        object.__setattr__(self, "cardinalities", tuple(int(k) for k in self.cardinalities))
        object.__setattr__(self, "column_weights", tuple(float(w) for w in self.column_weights))
        object.__setattr__(self, "latent_dim", int(self.latent_dim))
        object.__setattr__(self, "hidden_dims", tuple(int(w) for w in self.hidden_dims))
        object.__setattr__(self, "dropout", float(self.dropout))
        object.__setattr__(self, "unseen_cross_entropy", float(self.unseen_cross_entropy))

    @property
    def input_dim(self) -> int:
        """Width of the encoder's input: numeric values, indicators and embeddings."""
        n_numeric = sum(1 for k in self.cardinalities if k == 0)
        indicators = n_numeric if self.missing_indicators else 0
        return n_numeric + indicators + sum(embedding_dim(k) for k in self.cardinalities if k)

    @property
    def output_dim(self) -> int:
        """Width of the decoder's output: numeric values, then each column's logits."""
        return sum(1 if k == 0 else k for k in self.cardinalities)


class TabularAutoencoder(Autoencoder):
    """Autoencoder on encoded tables of shape (batch, n_columns); see the module docstring.

    ``forward(x).x_recon`` contains the numeric reconstructions (standardised) followed by
    each categorical column's logits; :meth:`cell_errors` turns them into per-cell errors.
    """

    name = "tabular"
    config_class = TabularConfig

    def __init__(self, config: TabularConfig) -> None:
        super().__init__(config)
        c = config
        numeric = [j for j, k in enumerate(c.cardinalities) if k == 0]
        categorical = [j for j, k in enumerate(c.cardinalities) if k]
        # Index tensors follow the model between devices but are not weights.
        self.register_buffer("numeric_index", torch.tensor(numeric, dtype=torch.long), persistent=False)
        self.register_buffer("categorical_index", torch.tensor(categorical, dtype=torch.long), persistent=False)
        weights = torch.tensor(c.column_weights, dtype=torch.float32)
        self.register_buffer("column_weight", weights, persistent=False)
        self.categorical_sizes = [c.cardinalities[j] for j in categorical]

        # Each embedding has one row per slot plus a last row for a missing cell.
        self.embeddings = nn.ModuleList(nn.Embedding(k + 1, embedding_dim(k)) for k in self.categorical_sizes)

        self.encoder = dense_encoder(
            c.input_dim, c.hidden_dims, c.latent_dim, c.activation, c.dropout, c.batch_norm, c.latent_activation
        )
        self.decoder = dense_decoder(
            c.latent_dim, c.hidden_dims, c.output_dim, c.activation, c.dropout, c.batch_norm, c.code_batch_norm
        )

    def encoder_input(self, x: torch.Tensor) -> torch.Tensor:
        """Turn an encoded table (batch, n_columns) into the encoder's input (batch, input_dim)."""
        numeric = x[:, self.numeric_index]
        missing = torch.isnan(numeric)
        parts = [torch.where(missing, torch.zeros_like(numeric), numeric)]
        if self.config.missing_indicators:
            parts.append(missing.to(x.dtype))

        for position, (embedding, size) in enumerate(zip(self.embeddings, self.categorical_sizes)):
            slots = x[:, self.categorical_index[position]]
            slots = torch.where(torch.isnan(slots), torch.full_like(slots, size), slots)
            parts.append(embedding(slots.long()))
        return torch.cat(parts, dim=1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.encoder_input(x))  # (batch, latent_dim)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (batch, output_dim)

    def split_output(self, x_recon: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Split the decoder's output into numeric values (batch, n_numeric) and a list
        of logits (batch, n_slots), one per categorical column."""
        n_numeric = len(self.numeric_index)
        logits = torch.split(x_recon[:, n_numeric:], self.categorical_sizes, dim=1) if self.categorical_sizes else ()
        return x_recon[:, :n_numeric], list(logits)

    def cell_errors(self, x: torch.Tensor, x_recon: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Weighted error of each cell and the mask of present cells, each (batch, n_columns).

        Numeric cells have the squared error in standardised units and categorical
        cells the cross-entropy of their slot; missing cells have error 0.
        """
        present = ~torch.isnan(x)
        # Filling before the arithmetic keeps NaN out of the gradients of masked cells.
        target = torch.where(present, x, torch.zeros_like(x))
        errors = torch.zeros_like(x)
        numeric_recon, logits = self.split_output(x_recon.float())

        numeric_target = target[:, self.numeric_index]
        errors[:, self.numeric_index] = torch.square(numeric_recon - numeric_target)
        for position, column_logits in enumerate(logits):
            column = self.categorical_index[position]
            slots = target[:, column].long()
            cross_entropy = F.cross_entropy(column_logits, slots, reduction="none")
            unseen = slots == column_logits.shape[1] - 1
            floor = torch.full_like(cross_entropy, self.config.unseen_cross_entropy)
            errors[:, column] = torch.where(unseen, torch.maximum(cross_entropy, floor), cross_entropy)
        errors = errors * self.column_weight * present
        return errors, present

    def row_errors(self, x: torch.Tensor, x_recon: torch.Tensor) -> torch.Tensor:
        """Mean weighted error over each row's present cells (0 for a row with none)."""
        errors, present = self.cell_errors(x, x_recon)
        return errors.sum(dim=1) / present.sum(dim=1).clamp(min=1)


def entropy_weight(entropy: float, floor: float) -> float:
    """Weight of a categorical column's cross-entropy: 1 / its training entropy (at least ``floor``).

    Predicting the training frequencies then costs 1 per cell, as predicting the mean
    costs 1 for a standardised numeric column, so neither kind drowns the other.
    """
    return 1.0 / max(float(entropy), floor) if math.isfinite(entropy) else 1.0
