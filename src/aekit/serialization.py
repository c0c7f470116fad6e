"""Model files: a folder with ``model.safetensors`` (weights) and ``config.json`` (everything
else), plus a ``README.md`` model card generated from the config.

Nothing here unpickles: weights are read with safetensors and the rest is JSON, so
loading a model file cannot run code. ``config.json`` records the SHA-256 of the
weights file, which catches a damaged file or a weights file from another model.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import torch
from safetensors.torch import load_file, save_file

from ._hashing import file_sha256
from ._version import __version__
from .exceptions import ModelFileError
from .model_card import MODEL_CARD_FILE, render_model_card
from .models import MODELS
from .preprocessing import Scaler
from .training import History

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT_NAME = "aekit-model"
# Arrays other than weights (such as the training timeline) sit in the weights file under this prefix.
EXTRA_PREFIX = "extra/"
# A wrapper with several networks (a detector's ensemble) stores the tensors of each one
# after the first under "members/<i>/", and their configs in its own entry.
MEMBER_PREFIX = "members/"
# The files a model folder consists of; save replaces exactly these.
MODEL_FILES = (WEIGHTS_FILE, CONFIG_FILE, MODEL_CARD_FILE)
# Raise when the layout of config.json or the weights changes incompatibly.
FORMAT_VERSION = 1


def save_estimator(estimator: Any, path: str | os.PathLike[str]) -> Path:
    """Write a fitted estimator to the folder ``path``, creating it if needed.

    The model files are written to a temporary folder beside ``path`` and then
    swapped in by renaming, so a crash or an error mid-save leaves the previous
    model in ``path`` whole. Other files in the folder (metrics, reports,
    checkpoints) are kept.
    """
    folder = Path(os.path.abspath(path))
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Renaming a folder that contains the working directory would strand this process
    # in the old copy, so there the files are staged inside the folder instead.
    in_place = folder.is_dir() and _holds_working_directory(folder)
    staging = _temporary_path(folder if in_place else folder.parent, folder.name)
    try:
        staging.mkdir()
        _write_model_files(staging, estimator, folder_name=folder.name)
        if in_place:
            _replace_files(staging, folder)
        else:
            _swap_folder(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("saved %s to %s", type(estimator).__name__, folder)
    return Path(path)


def _write_model_files(folder: Path, estimator: Any, *, folder_name: str) -> None:
    """Write the weights, config.json and the model card into the empty ``folder``."""
    # Weights are saved from the CPU, so a model trained on a GPU loads anywhere.
    state = _tensors(_model_owner(estimator))
    for index, member in enumerate(_extra_members(estimator), start=1):
        state.update({f"{MEMBER_PREFIX}{index}/{name}": tensor for name, tensor in _tensors(member).items()})
    save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    config = estimator_config(estimator, weights_sha256=file_sha256(folder / WEIGHTS_FILE))
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (folder / MODEL_CARD_FILE).write_text(render_model_card(config, folder_name=folder_name), encoding="utf-8")
    for name in MODEL_FILES:
        _flush_to_disk(folder / name)


def _tensors(estimator: Any) -> dict[str, torch.Tensor]:
    """Return an estimator's weights and extra arrays, keyed as in the weights file."""
    state = {name: tensor.detach().to("cpu").contiguous() for name, tensor in estimator.model_.state_dict().items()}
    for name, array in _extra_arrays(estimator).items():
        state[EXTRA_PREFIX + name] = torch.from_numpy(np.ascontiguousarray(array))
    return state


def _swap_folder(staging: Path, folder: Path) -> None:
    """Put the complete model folder ``staging`` in place of ``folder``."""
    if not folder.exists():
        os.rename(staging, folder)
        return
    if not folder.is_dir():
        raise ModelFileError(f"'{folder}' exists and is not a folder; save the model to a folder path.")

    previous = _temporary_path(folder.parent, folder.name + ".previous")
    os.rename(folder, previous)
    # NOTE: between these two renames the folder is briefly absent; a crash there
    # leaves the previous model whole in the hidden ".previous" folder beside it.
    try:
        os.rename(staging, folder)
    except OSError:
        os.rename(previous, folder)
        raise

    # Files beside the model (metrics, reports, checkpoints) move to the new folder.
    for entry in previous.iterdir():
        if entry.name not in MODEL_FILES:
            os.rename(entry, folder / entry.name)
    shutil.rmtree(previous)


def _replace_files(staging: Path, folder: Path) -> None:
    """Move each model file from ``staging`` over its namesake in ``folder``, config last."""
    # NOTE: a crash between these replacements leaves new weights beside the old config,
    # which loading rejects by the checksum instead of returning a mixed model.
    for name in (WEIGHTS_FILE, MODEL_CARD_FILE, CONFIG_FILE):
        os.replace(staging / name, folder / name)


def _holds_working_directory(folder: Path) -> bool:
    cwd = Path.cwd().resolve()
    return cwd == folder.resolve() or folder.resolve() in cwd.parents


def _flush_to_disk(path: Path) -> None:
    """Flush ``path`` to disk, so a power loss after the rename cannot leave it empty."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def estimator_config(estimator: Any, *, weights_sha256: str | None = None) -> dict[str, Any]:
    """Return the JSON document that describes a fitted estimator.

    A wrapper estimator, such as ``AnomalyDetector``, is described by its fitted
    inner estimator's document plus a ``"wrapper"`` entry with its own class name,
    parameters and fitted state.
    """
    if _is_wrapper(estimator):
        config = estimator_config(estimator.estimator_, weights_sha256=weights_sha256)
        params = {k: v for k, v in estimator.get_params(deep=False).items() if k != "estimator"}
        config["wrapper"] = {
            "estimator": type(estimator).__name__,
            "params": _json_params(params),
            "state": estimator._wrapper_state(),
            "members": [estimator_config(member) for member in _extra_members(estimator)],
        }
        return config

    feature_names = getattr(estimator, "feature_names_in_", None)
    schema = getattr(estimator, "schema_", None)
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "aekit_version": __version__,
        "torch_version": torch.__version__,
        "estimator": type(estimator).__name__,
        "params": _json_params(estimator.get_params(deep=False)),
        "model": {"name": estimator.model_.name, "config": estimator.model_.config_dict()},
        "preprocessing": estimator.scaler_.to_dict(),
        "data": {
            "n_features_in": int(estimator.n_features_in_),
            "input_shape": list(estimator.input_shape_),
            "feature_names_in": None if feature_names is None else [str(n) for n in feature_names],
            "n_samples": _optional_int(getattr(estimator, "n_samples_fit_", None)),
            "data_min": _optional_floats(getattr(estimator, "data_min_", None)),
            "data_max": _optional_floats(getattr(estimator, "data_max_", None)),
            "schema": None if schema is None else schema.to_dict(),
        },
        "training": {"seed": int(estimator.seed_), "history": estimator.history_.to_dict()},
        "metrics": estimator.metrics_,
        "exports": list(getattr(estimator, "exports_", None) or []),
        "weights_sha256": weights_sha256,
    }


def load(path: str | os.PathLike[str]) -> Any:
    """Load a fitted estimator from a folder written by ``save``.

    The result gives outputs identical to the estimator that was saved. Weights load
    on the CPU; move them with ``estimator.model_.to(device)`` if needed.

    Raises
    ------
    ModelFileError
        If the folder or a file is missing or damaged, or the folder was written in a
        newer format version.
    """
    folder = Path(path)
    config = _read_config(folder)
    tensors = _read_weights(folder, config)
    first_tensors = {name: tensor for name, tensor in tensors.items() if not name.startswith(MEMBER_PREFIX)}
    estimator = _load_estimator(folder, config, first_tensors)
    if "wrapper" in config:
        return _load_wrapper(folder, config["wrapper"], estimator, tensors)
    return estimator


def _load_estimator(folder: Path, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Any:
    """Build the estimator that ``config`` describes and restore its fitted state."""
    from .estimators import ESTIMATORS

    estimator_class = ESTIMATORS.get(config.get("estimator"))
    if estimator_class is None:
        raise ModelFileError(
            f"'{folder / CONFIG_FILE}' names the estimator {config.get('estimator')!r}, which "
            f"this aekit does not know; known: {sorted(ESTIMATORS)}."
        )
    try:
        # JSON has no tuples; sequence parameters such as hidden_dims were tuples when saved.
        params = {key: tuple(v) if isinstance(v, list) else v for key, v in config["params"].items()}
        estimator = estimator_class(**params)
        _restore_fitted_state(estimator, config, tensors)
    except KeyError as err:
        raise ModelFileError(
            f"'{folder / CONFIG_FILE}' lacks the entry {err}; the file is damaged or was edited. "
            "Save the model again."
        ) from err
    except (TypeError, ValueError, RuntimeError) as err:
        if isinstance(err, ModelFileError):
            raise
        raise ModelFileError(f"model folder '{folder}' has an invalid config or weights: {err}") from err
    return estimator


def _load_wrapper(folder: Path, wrapper: dict[str, Any], inner: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Rebuild a wrapper estimator (see ``estimator_config``) around the loaded ``inner``
    and the networks stored after it."""
    from .estimators import ESTIMATORS

    members = []
    for index, member_config in enumerate(wrapper.get("members") or [], start=1):
        prefix = f"{MEMBER_PREFIX}{index}/"
        member_tensors = {name[len(prefix):]: tensor for name, tensor in tensors.items() if name.startswith(prefix)}
        members.append(_load_estimator(folder, member_config, member_tensors))
    try:
        wrapper_class = ESTIMATORS.get(wrapper["estimator"])
        if wrapper_class is None or not hasattr(wrapper_class, "_from_wrapper_state"):
            raise ModelFileError(
                f"'{folder / CONFIG_FILE}' names the wrapper estimator {wrapper['estimator']!r}, which "
                f"this aekit does not know; known: {sorted(ESTIMATORS)}."
            )
        return wrapper_class._from_wrapper_state(wrapper["params"], wrapper["state"], inner, members)
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, ModelFileError):
            raise
        raise ModelFileError(f"model folder '{folder}' has an invalid wrapper config: {err}") from err


def _read_config(folder: Path) -> dict[str, Any]:
    config_path = folder / CONFIG_FILE
    if not folder.is_dir():
        interrupted = sorted(folder.parent.glob(f".{folder.name}.previous.*.tmp")) if folder.name else []
        if interrupted:
            raise ModelFileError(
                f"model folder '{folder}' not found, but a save into it was interrupted; the previous "
                f"model is whole in '{interrupted[-1]}'. Rename that folder to '{folder.name}'."
            )
        raise ModelFileError(f"model folder '{folder}' not found; pass the folder written by 'aekit train' or save().")
    if not config_path.is_file():
        raise ModelFileError(f"model folder '{folder}' has no {CONFIG_FILE}; it is not an aekit model.")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(f"'{config_path}' is not valid JSON: {err}.") from err
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise ModelFileError(f"'{config_path}' is not an aekit model config (no \"format\": \"{FORMAT_NAME}\").")

    version = config.get("format_version")
    if not isinstance(version, int):
        raise ModelFileError(f"'{config_path}' has an invalid format_version {version!r}.")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"'{folder}' uses model format version {version}, written by aekit "
            f"{config.get('aekit_version')}; this aekit ({__version__}) reads versions up to "
            f"{FORMAT_VERSION}. Upgrade aekit to load it."
        )
    return config


def _read_weights(folder: Path, config: dict[str, Any]) -> dict[str, torch.Tensor]:
    weights_path = folder / WEIGHTS_FILE
    if not weights_path.is_file():
        raise ModelFileError(f"model folder '{folder}' has no {WEIGHTS_FILE}.")

    expected = config.get("weights_sha256")
    if expected is not None and file_sha256(weights_path) != expected:
        raise ModelFileError(
            f"'{weights_path}' does not match the checksum in {CONFIG_FILE}; the file is damaged "
            "or comes from another model. Save the model again."
        )
    try:
        return load_file(str(weights_path), device="cpu")
    except (safetensors.SafetensorError, OSError, ValueError) as err:
        raise ModelFileError(f"'{weights_path}' is not a valid safetensors file: {err}.") from err


def _restore_fitted_state(estimator: Any, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    model_info = config["model"]
    model_class = MODELS.get(model_info["name"])
    if model_class is None:
        raise ModelFileError(f"unknown model {model_info['name']!r}; known: {sorted(MODELS)}.")
    model = model_class.from_config_dict(model_info["config"])
    extra = {name[len(EXTRA_PREFIX):]: t for name, t in tensors.items() if name.startswith(EXTRA_PREFIX)}
    model.load_state_dict({name: t for name, t in tensors.items() if not name.startswith(EXTRA_PREFIX)}, strict=True)

    data = config["data"]
    n_features = int(data["n_features_in"])
    input_shape = tuple(int(v) for v in data["input_shape"])
    if int(np.prod(input_shape)) != n_features:
        raise ModelFileError(f"input_shape {input_shape} does not hold {n_features} features.")

    estimator.model_ = model.eval()
    estimator.scaler_ = Scaler.from_dict(config["preprocessing"], n_features)
    estimator.history_ = History.from_dict(config["training"]["history"])
    estimator.n_features_in_ = n_features
    estimator.input_shape_ = input_shape
    if data.get("feature_names_in") is not None:
        estimator.feature_names_in_ = np.asarray(data["feature_names_in"], dtype=object)
    estimator.latent_dim_ = model.latent_dim
    estimator.seed_ = int(config["training"]["seed"])
    estimator.device_ = torch.device("cpu")
    estimator.metrics_ = dict(config.get("metrics") or {})
    estimator.timeline_ = _timeline_from_arrays(extra)
    estimator.exports_ = list(config.get("exports") or [])
    if data.get("n_samples") is not None:
        estimator.n_samples_fit_ = int(data["n_samples"])
    if data.get("data_min") is not None:
        estimator.data_min_ = np.asarray(data["data_min"], dtype=np.float32)
        estimator.data_max_ = np.asarray(data["data_max"], dtype=np.float32)
    if data.get("schema") is not None:
        from .data.schema import TableSchema

        estimator.schema_ = TableSchema.from_dict(data["schema"])
    if "reference/rows" in extra:
        estimator.reference_rows_ = extra["reference/rows"].numpy()
    estimator._restore_extra(config)


def _extra_arrays(estimator: Any) -> dict[str, np.ndarray]:
    arrays = {}
    timeline = getattr(estimator, "timeline_", None)
    if timeline:
        arrays.update({f"timeline/{key}": np.asarray(value) for key, value in timeline.items()})
    reference = getattr(estimator, "reference_rows_", None)
    if reference is not None:
        arrays["reference/rows"] = np.asarray(reference, dtype=np.float32)
    return arrays


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _optional_floats(values: Any) -> list[float] | None:
    return None if values is None else [float(v) for v in np.asarray(values).ravel()]


def _timeline_from_arrays(extra: dict[str, torch.Tensor]) -> dict[str, np.ndarray] | None:
    keys = ("epochs", "inputs", "reconstructions")
    if not all(f"timeline/{key}" in extra for key in keys):
        return None
    return {key: extra[f"timeline/{key}"].numpy() for key in keys}


def _is_wrapper(estimator: Any) -> bool:
    """True for an estimator that holds a fitted aekit estimator in ``estimator_`` and
    saves its own state through ``_wrapper_state``."""
    return hasattr(estimator, "_wrapper_state")


def _model_owner(estimator: Any) -> Any:
    """The estimator whose ``model_`` holds the weights: the inner one for a wrapper."""
    return estimator.estimator_ if _is_wrapper(estimator) else estimator


def _extra_members(estimator: Any) -> list[Any]:
    """Return the networks of a wrapper after its first one (``estimators_[1:]``), if any."""
    return list(getattr(estimator, "estimators_", None) or [])[1:] if _is_wrapper(estimator) else []


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    """Make constructor parameters JSON-ready; a RandomState object is stored as None."""
    result = {}
    for key, value in params.items():
        if key == "callbacks":
            # Callbacks are code, not data: a loaded model starts without them.
            value = None
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, np.generic):
            value = value.item()
        elif isinstance(value, (np.random.RandomState, np.random.Generator, torch.device)):
            value = None if not isinstance(value, torch.device) else str(value)
        elif isinstance(value, os.PathLike):
            value = os.fspath(value)
        result[key] = value
    return result


def _temporary_path(folder: Path, name: str) -> Path:
    return folder / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
