"""Training checkpoints: the state that continues a run exactly, stored as safetensors + JSON.

A checkpoint is a folder ``epoch-000012`` in the checkpoint directory. Its
``state.safetensors`` holds every tensor (weights, optimizer moments, random number
generator states, early stopping's best weights) and ``state.json`` everything else
(epoch, history, optimizer settings, callback states), with each tensor replaced by a
reference to its name. Nothing is pickled, so reading a checkpoint cannot run code.

The folder is written under a temporary name and renamed into place, so a folder with
a final name is always complete, whenever the process dies.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import safetensors
import torch
from safetensors.torch import load_file, save_file

from .._hashing import file_sha256
from ..exceptions import ModelFileError
from .callbacks import Callback

if TYPE_CHECKING:
    from .trainer import Trainer

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "aekit-checkpoint"
# Raise when the layout of state.json or the tensors changes incompatibly.
CHECKPOINT_VERSION = 1
TENSORS_FILE = "state.safetensors"
STATE_FILE = "state.json"
_FOLDER = re.compile(r"epoch-(\d+)")

# Markers of values that JSON cannot hold as they are.
_TENSOR, _TUPLE, _ITEMS = "__tensor__", "__tuple__", "__items__"


class Checkpointing(Callback):
    """Write a checkpoint to ``directory`` every ``every`` epochs and when training ends.

    Put it after every other callback, so the checkpoint contains their state at the end
    of the epoch. Only the newest checkpoint is kept. ``run`` is JSON data stored with
    each checkpoint that describes the run (parameters, seed, data), so that a resumed
    run can check it continues the same one.
    """

    def __init__(self, directory: str | os.PathLike[str], every: int = 1, run: dict[str, Any] | None = None) -> None:
        self.directory = Path(directory)
        self.every = every
        self.run = run or {}

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float | None]) -> None:
        if trainer.distributed is not None and not trainer.distributed.is_main:
            return  # every rank has the same state, and rank 0 writes it
        if epoch % self.every == 0 or epoch == trainer.max_epochs or trainer.stop_training:
            path = write_checkpoint(self.directory, epoch, trainer.checkpoint_state(epoch), run=self.run)
            logger.debug("wrote checkpoint %s", path)


def write_checkpoint(directory: str | os.PathLike[str], epoch: int, state: dict[str, Any], *, run: dict[str, Any]) -> Path:
    """Write ``state`` as the checkpoint of ``epoch`` and remove older checkpoints."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    document = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "epoch": epoch,
        "run": run,
        "state": split_tensors(state, tensors, ""),
    }

    staging = directory / f".epoch-{epoch:06d}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    final = directory / f"epoch-{epoch:06d}"
    try:
        staging.mkdir()
        save_file(tensors, str(staging / TENSORS_FILE))
        document["tensors_sha256"] = file_sha256(staging / TENSORS_FILE)
        (staging / STATE_FILE).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        for name in (TENSORS_FILE, STATE_FILE):
            with open(staging / name, "rb") as handle:
                os.fsync(handle.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.rename(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    # Older checkpoints, and the staging folders of writes that a killed process left.
    for older in [*checkpoint_folders(directory), *directory.glob(".epoch-*.tmp")]:
        if older != final:
            shutil.rmtree(older, ignore_errors=True)
    return final


def clear_checkpoints(directory: str | os.PathLike[str]) -> None:
    """Remove every checkpoint in ``directory``, so a fresh run never resumes an older one."""
    for folder in checkpoint_folders(directory):
        shutil.rmtree(folder)


def checkpoint_folders(directory: str | os.PathLike[str]) -> list[Path]:
    """List the checkpoint folders in ``directory``, oldest epoch first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(match.group(1)), path) for path in directory.iterdir() if (match := _FOLDER.fullmatch(path.name))]
    return [path for _, path in sorted(found)]


def latest_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """Return the newest checkpoint folder in ``directory``, or None when there is none."""
    folders = checkpoint_folders(directory)
    return folders[-1] if folders else None


def read_checkpoint(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint folder; return its document with the tensors in place (on the CPU).

    Raises
    ------
    ModelFileError
        If a file is missing, damaged, or written by a newer checkpoint format.
    """
    folder = Path(folder)
    document = read_checkpoint_document(folder)
    tensors_path = folder / TENSORS_FILE
    if not tensors_path.is_file():
        raise ModelFileError(f"checkpoint '{folder}' has no {TENSORS_FILE}; resume from another checkpoint or start again.")
    if file_sha256(tensors_path) != document.get("tensors_sha256"):
        raise ModelFileError(
            f"'{tensors_path}' does not match the checksum in {STATE_FILE}; the checkpoint is damaged. "
            "Delete it to resume from scratch, or set resume=False."
        )
    try:
        tensors = load_file(str(tensors_path), device="cpu")
    except (safetensors.SafetensorError, OSError, ValueError) as err:
        raise ModelFileError(f"'{tensors_path}' is not a valid safetensors file: {err}.") from err
    try:
        document["state"] = join_tensors(document["state"], tensors)
    except KeyError as err:
        raise ModelFileError(f"checkpoint '{folder}' lacks the entry {err}; it is damaged.") from err
    return document


def read_checkpoint_document(folder: Path) -> dict[str, Any]:
    """Read and check ``state.json`` of a checkpoint folder, without its tensors."""
    path = folder / STATE_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ModelFileError(f"checkpoint '{folder}' has no {STATE_FILE}; it is not an aekit checkpoint.") from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(f"'{path}' is not valid JSON: {err}; the checkpoint is damaged.") from err
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
        raise ModelFileError(f"'{path}' is not an aekit checkpoint (no \"format\": \"{CHECKPOINT_FORMAT}\").")
    version = document.get("format_version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise ModelFileError(
            f"'{path}' has checkpoint format version {version!r}; this aekit reads versions up to "
            f"{CHECKPOINT_VERSION}. Upgrade aekit to resume from it."
        )
    if not isinstance(document.get("state"), dict) or not isinstance(document.get("run"), dict):
        raise ModelFileError(f"'{path}' lacks the training state; the checkpoint is damaged.")
    return document


def split_tensors(value: Any, tensors: dict[str, torch.Tensor], name: str) -> Any:
    """Return ``value`` as JSON data, moving every tensor into ``tensors`` under its path.

    Tuples and dicts with keys other than strings (an optimizer's per-parameter state)
    are marked, so that :func:`join_tensors` gives back equal values.
    """
    if isinstance(value, torch.Tensor):
        # A copy on the CPU: safetensors refuses tensors that share memory.
        tensors[name] = value.detach().to("cpu", copy=True).contiguous()
        return {_TENSOR: name}
    if isinstance(value, dict):
        if all(isinstance(key, str) for key in value) and not {_TENSOR, _TUPLE, _ITEMS} & set(value):
            return {key: split_tensors(item, tensors, _child(name, key)) for key, item in value.items()}
        return {_ITEMS: [[key, split_tensors(item, tensors, _child(name, key))] for key, item in value.items()]}
    if isinstance(value, tuple):
        return {_TUPLE: [split_tensors(item, tensors, _child(name, i)) for i, item in enumerate(value)]}
    if isinstance(value, list):
        return [split_tensors(item, tensors, _child(name, i)) for i, item in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} at {name!r} in a checkpoint.")


def join_tensors(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Invert :func:`split_tensors`."""
    if isinstance(value, dict):
        if _TENSOR in value:
            return tensors[value[_TENSOR]]
        if _TUPLE in value:
            return tuple(join_tensors(item, tensors) for item in value[_TUPLE])
        if _ITEMS in value:
            return {key: join_tensors(item, tensors) for key, item in value[_ITEMS]}
        return {key: join_tensors(item, tensors) for key, item in value.items()}
    if isinstance(value, list):
        return [join_tensors(item, tensors) for item in value]
    return value


def _child(name: str, key: object) -> str:
    return f"{name}/{key}" if name else str(key)
