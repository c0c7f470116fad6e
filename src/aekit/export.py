"""ONNX export of a whole fitted model: scaling, encoder, decoder and the error score.

The exported graph takes raw samples in the original units: shape (batch, n_features)
for tables, (batch, channels, height, width) for images. Its named outputs are
``latent``, ``reconstruction`` (original units), ``reconstruction_error`` (the same
per-sample error as the estimator's method) and, for models with a threshold,
``is_anomaly``. Because preprocessing and scoring are inside the graph, a deployed
model cannot drift from the trained one.

Before the file is kept, the graph runs in ONNX Runtime on reference rows and every
output is compared with the PyTorch path.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .exceptions import DataError, ExportError
from .losses import elementwise_error

logger = logging.getLogger(__name__)

# Opset 21 runs on ONNX Runtime 1.20 and newer; later opsets add no operator these graphs use.
ONNX_OPSET = 21
# An output passes when |onnx - torch| <= ATOL + RTOL * |torch| for every element.
RTOL = 1e-4
ATOL = 1e-5


@dataclasses.dataclass
class ExportResult:
    """Outcome of an export: where the file went and how closely ONNX Runtime matched PyTorch."""

    path: str
    opset: int
    n_rows_checked: int
    max_abs_diff: dict[str, float]
    label_mismatches: int | None
    passed: bool
    rtol: float = RTOL
    atol: float = ATOL

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """Return a one-line summary of the parity check."""
        diffs = ", ".join(f"{name} {value:.3g}" for name, value in self.max_abs_diff.items())
        verdict = "passed" if self.passed else "FAILED"
        labels = "" if self.label_mismatches is None else f", {self.label_mismatches} differing anomaly labels"
        return (
            f"parity check {verdict} on {self.n_rows_checked} rows (rtol {self.rtol:g}, atol {self.atol:g}): "
            f"max |onnx - torch| {diffs}{labels}"
        )


class ExportGraph(nn.Module):
    """The module that is exported: raw samples in, named outputs out.

    Scaling constants and the threshold become graph constants; the models are copies
    of the estimator's, on the CPU, in evaluation mode. A detector with several
    autoencoders exports all of them: the reconstruction and the error are their means,
    and the latent code is the first one's, as in the detector itself.
    """

    def __init__(self, estimator: Any) -> None:
        super().__init__()
        owners = list(getattr(estimator, "estimators_", None) or [model_owner(estimator)])
        first = owners[0]
        self.models = nn.ModuleList(copy.deepcopy(owner.model_).cpu().eval() for owner in owners)
        self.input_shape = tuple(first.input_shape_)
        # Variational models score with the mean squared error of the decoded posterior mean.
        self.loss = getattr(first, "loss", "mse")
        # One row of scaling constants per autoencoder, (n_members, n_features).
        self.register_buffer("offset", torch.from_numpy(np.stack([owner.scaler_.offset_ for owner in owners])))
        self.register_buffer("scale", torch.from_numpy(np.stack([owner.scaler_.scale_ for owner in owners])))
        # A detector may divide each feature's error by a per-feature scale before averaging.
        scales = getattr(estimator, "feature_error_scales_", None)
        self.register_buffer(
            "error_scales",
            torch.ones_like(self.scale) if scales is None else torch.tensor(np.asarray(scales), dtype=torch.float32),
        )
        threshold = getattr(estimator, "threshold_", None)
        self.has_threshold = threshold is not None
        self.register_buffer("threshold", torch.tensor(float(threshold if threshold is not None else 0.0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n = x.shape[0]
        flat = x.reshape(n, -1)  # (batch, n_features)
        codes, recons, errors = [], [], []
        for index, model in enumerate(self.models):
            scaled = (flat - self.offset[index]) / self.scale[index]
            model_input = scaled if model.flat_input else scaled.reshape(n, *self.input_shape)
            z = model.encode(model_input)  # (batch, latent_dim)
            recon_scaled = model.decode(z).reshape(n, -1)
            errors.append((elementwise_error(recon_scaled, scaled, self.loss) / self.error_scales[index]).mean(dim=1))
            recons.append(recon_scaled * self.scale[index] + self.offset[index])
            codes.append(z)

        error = errors[0] if len(errors) == 1 else torch.stack(errors).mean(dim=0)  # (batch,)
        recon = recons[0] if len(recons) == 1 else torch.stack(recons).mean(dim=0)
        outputs = (codes[0], recon.reshape(n, *self.input_shape), error)
        if self.has_threshold:
            outputs += (error > self.threshold,)
        return outputs

    def output_names(self) -> list[str]:
        names = ["latent", "reconstruction", "reconstruction_error"]
        return names + (["is_anomaly"] if self.has_threshold else [])


def export_onnx(
    estimator: Any,
    path: str | os.PathLike[str],
    X: Any = None,
    *,
    opset: int = ONNX_OPSET,
    strict: bool = True,
) -> ExportResult:
    """Export a fitted estimator to one ONNX file and check it against PyTorch.

    Parameters
    ----------
    estimator : fitted aekit estimator
    path : str or Path
        The ``.onnx`` file to write.
    X : array-like, optional
        Rows for the parity check; by default the reference rows kept from the
        training data at fit time.
    opset : int, default=21
        ONNX opset version.
    strict : bool, default=True
        When the parity check fails, raise ``ExportError`` and write nothing. With
        ``False`` the file is written and the result reports the failure.

    Returns
    -------
    ExportResult
        Also appended to ``estimator.exports_``, which model files and the model card record.
    """
    _check_exportable(estimator)
    onnx, onnxruntime = _import_onnx()
    rows = _parity_rows(estimator, X)
    graph = ExportGraph(estimator)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        _torch_export(graph, rows, temporary, opset)
        onnx.checker.check_model(str(temporary))
        result = _parity_check(graph, temporary, rows, onnxruntime, opset, str(path))
        if not result.passed and strict:
            raise ExportError(
                f"the ONNX graph does not match the PyTorch model: {result.describe()}; nothing was written. "
                "Pass strict=False (--allow-mismatch) to write it anyway."
            )
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)

    exports = list(getattr(estimator, "exports_", None) or [])
    exports.append(result.to_dict())
    estimator.exports_ = exports
    logger.info("exported %s to %s: %s", type(estimator).__name__, path, result.describe())
    return result


def model_owner(estimator: Any) -> Any:
    """Return the estimator that holds the network: the inner one of a detector."""
    return getattr(estimator, "estimator_", estimator)


def _check_exportable(estimator: Any) -> None:
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model_owner(estimator), "model_")
    owner = model_owner(estimator)
    blockers = list(owner._export_blockers()) if hasattr(owner, "_export_blockers") else []
    if blockers:
        raise ExportError(f"this model cannot be exported to ONNX: {'; '.join(blockers)}.")


def _import_onnx() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError as err:
        raise ExportError(
            f"ONNX export needs the optional packages onnx, onnxscript and onnxruntime ({err.name} is "
            "missing); install them with pip install 'aekit[onnx]'."
        ) from err
    return onnx, onnxruntime


def _parity_rows(estimator: Any, X: Any) -> np.ndarray:
    """Rows for the parity check, in the original units and the model's sample shape."""
    estimator = model_owner(estimator)
    if X is None:
        X = getattr(estimator, "reference_rows_", None)
        if X is None or len(X) == 0:
            raise ExportError(
                "the model has no reference rows for the parity check because an older aekit saved "
                "it; pass rows of data to check against, e.g. --data FILE."
            )
    scaled = estimator._check_inference_data(X, when="exporting")
    rows = estimator.scaler_.inverse_transform(scaled)
    if len(rows) < 2:
        raise DataError("the parity check needs at least 2 rows, so the batch dimension stays dynamic.")
    return rows.reshape(len(rows), *estimator.input_shape_)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's notices (e.g. about torchvision), which are not the user's concern."""
    exporter_logger = logging.getLogger("torch.onnx")
    level = exporter_logger.level
    exporter_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        exporter_logger.setLevel(level)


def _torch_export(graph: ExportGraph, rows: np.ndarray, path: Path, opset: int) -> None:
    example = torch.from_numpy(np.ascontiguousarray(rows[:2], dtype=np.float32))
    batch = torch.export.Dim("batch", min=1)
    with _quiet_exporter():
        try:
            torch.onnx.export(
                graph,
                (example,),
                str(path),
                input_names=["x"],
                output_names=graph.output_names(),
                dynamic_shapes={"x": {0: batch}},
                opset_version=opset,
                dynamo=True,
                external_data=False,  # one self-contained file, whatever the model's size
                verbose=False,
            )
        except Exception as err:  # the exporter raises many internal types
            raise ExportError(f"torch.onnx.export failed for this model: {type(err).__name__}: {err}") from err


def _parity_check(
    graph: ExportGraph, onnx_path: Path, rows: np.ndarray, onnxruntime: Any, opset: int, final_path: str
) -> ExportResult:
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_outputs = session.run(None, {"x": np.ascontiguousarray(rows, dtype=np.float32)})
    with torch.inference_mode():
        torch_outputs = [t.numpy() for t in graph(torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32)))]

    names = graph.output_names()
    max_diff: dict[str, float] = {}
    passed = True
    for name, got, expected in zip(names, onnx_outputs, torch_outputs):
        if name == "is_anomaly":
            continue
        max_diff[name] = float(np.max(np.abs(got - expected)))
        passed &= bool(np.all(np.abs(got - expected) <= ATOL + RTOL * np.abs(expected)))

    mismatches = None
    if graph.has_threshold:
        # Rows whose error sits within tolerance of the threshold may fall either side.
        errors = torch_outputs[2]
        near = np.abs(errors - float(graph.threshold)) <= ATOL + RTOL * np.abs(errors)
        mismatches = int(np.sum((onnx_outputs[3] != torch_outputs[3]) & ~near))
        passed &= mismatches == 0
    return ExportResult(final_path, opset, len(rows), max_diff, mismatches, passed)
