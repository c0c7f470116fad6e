"""Checkpointing and resuming an estimator's training run.

With ``checkpoint_dir`` set, training writes a checkpoint there every
``checkpoint_every`` epochs. With ``resume=True``, ``fit`` continues from the newest
one. It first prepares the data and model as the first run did, because the split,
the scaling and the initial weights follow from the seed stored in the checkpoint.
Then it restores the training state, so on CPU the final weights equal those of an
uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import numbers
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._seed import resolve_seed
from ..exceptions import ConfigError, DataError
from ..training.distributed import is_main_process
from ..training.checkpoints import Checkpointing, clear_checkpoints, latest_checkpoint, read_checkpoint

if TYPE_CHECKING:
    from ._base import BaseAutoEncoder

logger = logging.getLogger(__name__)

# Parameters that change how a run executes or how long it lasts, not what it computes
# epoch by epoch: a resumed run may set them differently.
RUN_PARAMS = frozenset(
    {"max_epochs", "verbose", "n_threads", "device", "compile", "distributed", "callbacks",
     "checkpoint_dir", "checkpoint_every", "resume"}
)


@dataclasses.dataclass
class CheckpointPlan:
    """Checkpoint settings of one run: folder, interval, seed, run description and the state to resume (or None)."""

    directory: Path
    every: int
    seed: int
    run: dict[str, Any]
    resume_state: dict[str, Any] | None

    def callback(self) -> Checkpointing:
        return Checkpointing(self.directory, self.every, run=self.run)


def data_fingerprint(flat: np.ndarray) -> dict[str, Any]:
    """Rows, columns and SHA-256 of the training array, to check a resumed run gets the same data."""
    digest = hashlib.sha256()
    array = np.ascontiguousarray(flat, dtype=np.float32)
    # In slices, so a memory-mapped array is read once and never copied whole.
    for start in range(0, len(array), 65_536):
        digest.update(memoryview(array[start : start + 65_536]).cast("B"))
    return {"n_samples": int(array.shape[0]), "n_features": int(array.shape[1]), "sha256": digest.hexdigest()}


def plan_checkpoints(estimator: BaseAutoEncoder, describe_data: Callable[[], dict[str, Any]]) -> CheckpointPlan | None:
    """Check the checkpoint parameters and, when resuming, read and check the newest checkpoint.

    ``describe_data`` returns a description of the training data (see
    :func:`data_fingerprint`). Returns None when ``checkpoint_dir`` is None.
    """
    directory, every, resume = _checked_options(estimator)
    if directory is None:
        return None
    data = describe_data()

    params = _comparable_params(estimator)
    resume_state = None
    if resume:
        folder = latest_checkpoint(directory)
        if folder is None:
            logger.warning("no checkpoint in '%s' to resume from; training from the first epoch", directory)
        else:
            resume_state = read_checkpoint(folder)
            _check_same_run(folder, resume_state["run"], type(estimator).__name__, params, data)
            logger.info("resuming from %s (epoch %d)", folder, resume_state["epoch"])
    if resume_state is None and is_main_process():
        clear_checkpoints(directory)

    extra = dict(getattr(estimator, "_checkpoint_run_extra", None) or {})
    seed = int(resume_state["run"]["seed"]) if resume_state else resolve_seed(estimator.random_state)
    run = {"estimator": type(estimator).__name__, "params": params, "data": data, "seed": seed, **extra}
    return CheckpointPlan(directory, every, seed, run, None if resume_state is None else resume_state["state"])


def read_run(directory: str | Path | None) -> dict[str, Any] | None:
    """Return the run description of the newest checkpoint in ``directory``, or None."""
    folder = None if directory is None else latest_checkpoint(directory)
    return None if folder is None else read_checkpoint(folder)["run"]


def _checked_options(estimator: BaseAutoEncoder) -> tuple[Path | None, int, bool]:
    directory = estimator._option("checkpoint_dir")
    every = estimator._option("checkpoint_every")
    resume = estimator._option("resume")
    if isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 1:
        raise ConfigError(f"checkpoint_every must be an integer >= 1 (epochs between checkpoints), got {every!r}.")
    if not isinstance(resume, bool):
        raise ConfigError(f"resume must be True or False, got {resume!r}.")
    if resume and directory is None:
        raise ConfigError("resume=True needs checkpoint_dir, the folder the checkpoints were written to.")
    return (None if directory is None else Path(directory)), int(every), resume


def _comparable_params(estimator: BaseAutoEncoder) -> dict[str, Any]:
    from ..serialization import _json_params

    params = estimator.get_params(deep=False)
    return _json_params({name: value for name, value in params.items() if name not in RUN_PARAMS})


def _check_same_run(
    folder: Path, run: dict[str, Any], estimator: str, params: dict[str, Any], data: dict[str, Any]
) -> None:
    """Refuse to resume a checkpoint written by another estimator, other parameters or other data."""
    saved = run.get("params") or {}
    if params.get("random_state") is None:
        # An unseeded run resumes with the seed it drew, stored in the checkpoint.
        saved = {**saved, "random_state": None}
    changed = sorted(name for name in set(saved) | set(params) if saved.get(name) != params.get(name))
    if run.get("estimator") != estimator:
        raise ConfigError(
            f"the checkpoint '{folder}' was written by {run.get('estimator')!r}, not {estimator!r}; "
            "resume with the same estimator, or resume=False to start again."
        )
    if changed:
        details = ", ".join(f"{name}={saved.get(name)!r} then, {params.get(name)!r} now" for name in changed)
        raise ConfigError(
            f"the checkpoint '{folder}' was written with other parameters ({details}); use the same "
            "parameters to resume, or resume=False to start again."
        )
    if run.get("data") != data:
        raise DataError(
            f"the checkpoint '{folder}' was written while training on other data "
            f"({_describe(run.get('data'))} then, {_describe(data)} now); pass the same data to resume, "
            "or resume=False to start again."
        )


def _describe(data: dict[str, Any] | None) -> str:
    if not data:
        return "unknown data"
    if "sha256" in data:
        return f"{data['n_samples']} rows x {data['n_features']} columns, SHA-256 {data['sha256'][:12]}"
    return ", ".join(f"{key} {value}" for key, value in data.items())
