"""Learning-curve record of a training run."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class History:
    """Per-epoch losses and timings; index ``i`` is epoch ``i + 1``.

    ``val_loss`` holds ``None`` entries when training ran without validation rows.
    ``best_epoch`` is 1-based and set when early stopping restored the best weights.
    ``extra`` maps the names of further per-epoch series, such as a penalty term, to
    their values.
    """

    train_loss: list[float] = dataclasses.field(default_factory=list)
    val_loss: list[float | None] = dataclasses.field(default_factory=list)
    learning_rate: list[float] = dataclasses.field(default_factory=list)
    epoch_seconds: list[float] = dataclasses.field(default_factory=list)
    extra: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    best_epoch: int | None = None
    stopped_early: bool = False

    @property
    def n_epochs(self) -> int:
        return len(self.train_loss)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> History:
        fields = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in fields})
