"""Fitting an estimator on a :class:`~aekit.data.streaming.TableStream` in bounded memory.

One survey pass over the stream fits the scaler (exact mean and variance by Chan's
parallel update, minimum and maximum), counts the rows of each split and keeps
uniform samples of them. Every epoch then reads the stream again through a shuffle
buffer. Validation, the metrics and the PCA baseline use the samples, so their cost
does not grow with the data.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .._device import to_device
from .._seed import resolve_seed, torch_seeded
from ..data.streaming import ReservoirSample, ShuffleBuffer, TableStream, rows_to_batches, validation_mask
from ..exceptions import AekitWarning, DataError
from ..preprocessing import RunningStats, Scaler
from ..training.distributed import DistributedContext

if TYPE_CHECKING:
    from ._base import BaseAutoEncoder

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class StreamSurvey:
    """Statistics, counts and samples from one pass over this rank's share of a stream."""

    stats: RunningStats
    n_train: int
    n_val: int
    train_sample: ReservoirSample
    val_sample: ReservoirSample


def survey_stream(
    stream: TableStream, seed: int, validation_fraction: float, *, rank: int = 0, world_size: int = 1
) -> StreamSurvey:
    """Read this rank's share of ``stream`` once: training-row statistics, counts and samples."""
    rng = np.random.default_rng([seed, rank, 1])
    sample_rows = max(1, stream.sample_rows // world_size)
    survey = StreamSurvey(
        stats=RunningStats(stream.n_features),
        n_train=0,
        n_val=0,
        train_sample=ReservoirSample(sample_rows, stream.n_features, rng),
        val_sample=ReservoirSample(sample_rows, stream.n_features, rng),
    )
    for start, rows in stream.chunks(rank=rank, world_size=world_size):
        is_val = validation_mask(np.arange(start, start + len(rows)), seed, validation_fraction)
        train_rows = rows[~is_val]
        survey.stats.update(train_rows)
        survey.train_sample.add(train_rows)
        survey.val_sample.add(rows[is_val])
        survey.n_train += len(train_rows)
        survey.n_val += len(rows) - len(train_rows)
    return survey


class StreamBatches:
    """Training batches read from a stream: each epoch reads this rank's share of the
    stream, drops validation rows, scales, shuffles through a bounded buffer and cuts
    batches of this rank's share of the global batch.

    On several ranks, each epoch runs exactly ``steps_per_epoch`` steps on every rank,
    because DistributedDataParallel needs every rank in every step. Rows of a rank's
    shard beyond that are left out of the epoch.
    """

    def __init__(
        self,
        stream: TableStream,
        scaler: Scaler,
        *,
        seed: int,
        validation_fraction: float,
        batch_size: int,
        device: torch.device,
        sample_shape: tuple[int, ...] | None = None,
        context: DistributedContext | None = None,
        steps_per_epoch: int | None = None,
    ) -> None:
        self.stream = stream
        self.scaler = scaler
        self.seed = seed
        self.validation_fraction = validation_fraction
        self.device = device
        self.sample_shape = sample_shape
        self.context = context
        self.steps_per_epoch = steps_per_epoch
        if context is None:
            self.rank_batch, self.loss_weight = batch_size, 1.0
        else:
            start, stop = context.rank_rows(batch_size)
            self.rank_batch = stop - start
            self.loss_weight = self.rank_batch * context.world_size / batch_size

    def epoch_batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, float]]:
        rank, world_size = (0, 1) if self.context is None else (self.context.rank, self.context.world_size)
        rng = np.random.default_rng([self.seed, rank, epoch, 2])
        buffer = ShuffleBuffer(self.stream.shuffle_buffer, self.stream.n_features, rng)

        def shuffled_rows() -> Iterator[np.ndarray]:
            for start, rows in self.stream.chunks(rank=rank, world_size=world_size, rng=rng):
                keep = ~validation_mask(np.arange(start, start + len(rows)), self.seed, self.validation_fraction)
                yield buffer.push(self.scaler.transform(rows[keep]))
            yield buffer.flush()

        batches = rows_to_batches(shuffled_rows(), self.rank_batch, keep_last=self.context is None)
        for step, rows in enumerate(batches):
            if self.steps_per_epoch is not None and step >= self.steps_per_epoch:
                break
            x = torch.from_numpy(rows)
            if self.sample_shape is not None:
                x = x.reshape(len(x), *self.sample_shape)
            yield to_device(x, self.device), self.loss_weight


def fit_stream(estimator: BaseAutoEncoder, stream: TableStream) -> BaseAutoEncoder:
    """Fit ``estimator`` on ``stream``; the streaming counterpart of ``fit`` on an array."""
    from ._base import REFERENCE_ROWS

    from ._checkpoints import plan_checkpoints

    training = estimator._training_config()
    # A stream is too large to hash, so a resumed run checks its source and width.
    checkpoints = plan_checkpoints(estimator, lambda: {"source": str(stream.source), "n_features": stream.n_features})
    seed = checkpoints.seed if checkpoints is not None else resolve_seed(estimator.random_state)
    device, context = estimator._resolve_execution(training)
    rank, world_size = (0, 1) if context is None else (context.rank, context.world_size)
    input_shape = stream.sample_shape
    scaler_kind = estimator._resolve_scaling(len(input_shape))
    output_activation = estimator._resolve_output_activation(scaler_kind)

    survey = survey_stream(stream, seed, training.validation_fraction, rank=rank, world_size=world_size)
    stats, n_train, n_val = _combine_surveys(survey, context)
    if n_train < 2:
        raise DataError(
            f"{stream.source} has {n_train} training rows after the validation split; training needs "
            "at least 2. Add rows or lower validation_fraction."
        )
    if training.validation_fraction > 0 and n_val == 0:
        warnings.warn(
            f"validation skipped: validation_fraction={training.validation_fraction} chose no rows of "
            f"{stream.source}; training on every row.",
            AekitWarning,
            stacklevel=3,
        )
    scaler = stats.to_scaler(scaler_kind)

    with torch_seeded(seed):
        model = estimator._build_model(stream.n_features, input_shape, output_activation).to(device)
    sample_shape = None if model.flat_input else input_shape
    steps = None
    if context is not None:
        first, stop = context.rank_rows(training.batch_size)
        rank_batch = stop - first
        steps = context.all_reduce_min(survey.n_train // rank_batch, device)
        if steps == 0:
            raise DataError(
                f"a process has fewer training rows than its share ({rank_batch}) of batch_size="
                f"{training.batch_size}; {stream.source} has too few read units (Parquet row groups) "
                f"for {world_size} processes. Write it with more, smaller row groups."
            )
    source = StreamBatches(
        stream, scaler, seed=seed, validation_fraction=training.validation_fraction,
        batch_size=training.batch_size, device=device, sample_shape=sample_shape,
        context=context, steps_per_epoch=steps,
    )

    # Salt-and-pepper noise needs each feature's range, which the survey measured.
    feature_range = scaler.transform(np.stack([stats.minimum, stats.maximum]).astype(np.float32))
    source.feature_range = estimator._to_model_tensor(feature_range, model, input_shape, device)

    val_scaled = scaler.transform(survey.val_sample.rows)
    x_val = estimator._to_model_tensor(val_scaled, model, input_shape, device) if n_val else None
    timeline = estimator._timeline_callback(x_val) if x_val is not None else None
    history = estimator._train(model, training, source, x_val, seed, context, timeline, checkpoints)

    estimator._set_fitted(model, scaler, history, stream.n_features, input_shape, stream.feature_names, seed, device)
    estimator.metrics_ = _sample_metrics(estimator, scaler, survey, n_train, n_val)
    estimator.timeline_ = estimator._timeline_record(timeline)
    estimator.n_samples_fit_ = n_train + n_val
    estimator.data_min_ = stats.minimum.astype(np.float32)
    estimator.data_max_ = stats.maximum.astype(np.float32)
    estimator.reference_rows_ = survey.train_sample.rows[:REFERENCE_ROWS].reshape(-1, *input_shape)
    estimator.exports_ = []
    logger.info("trained on %d streamed rows of %s (%d for validation)", n_train + n_val, stream.source, n_val)
    return estimator


def _combine_surveys(survey: StreamSurvey, context: DistributedContext | None) -> tuple[RunningStats, int, int]:
    """Merge every rank's statistics and counts, so all ranks fit the same scaler."""
    if context is None:
        return survey.stats, survey.n_train, survey.n_val
    parts = context.all_gather_objects((survey.stats, survey.n_train, survey.n_val))
    stats = RunningStats(len(survey.stats.mean))
    for part_stats, _, _ in parts:  # rank order, so every rank merges identically
        stats.merge(part_stats)
    return stats, sum(p[1] for p in parts), sum(p[2] for p in parts)


def _sample_metrics(
    estimator: BaseAutoEncoder, scaler: Scaler, survey: StreamSurvey, n_train: int, n_val: int
) -> dict[str, Any]:
    """Model and PCA reconstruction errors on the kept samples; counts are of the whole stream."""
    train_sample = scaler.transform(survey.train_sample.rows)
    val_sample = scaler.transform(survey.val_sample.rows)
    scaled = np.concatenate([train_sample, val_sample])
    train_rows = np.arange(len(train_sample))
    val_rows = np.arange(len(train_sample), len(scaled))
    metrics = estimator._compute_metrics(scaled, train_rows, val_rows)
    metrics.update(
        {"n_train": n_train, "n_val": n_val, "metrics_train_rows": len(train_rows), "metrics_val_rows": len(val_rows)}
    )
    return metrics
