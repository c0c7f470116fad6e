"""The ``aekit`` command: train, encode, reconstruct, denoise, score, detect, generate,
report, export and describe autoencoders.

User mistakes end with one line on stderr (``aekit: error: ...``) and exit status 1
(2 for invalid command-line usage); only bugs show a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from .._version import __version__
from ..exceptions import AekitError, ConfigError, DataError, ModelFileError
from .models import build_estimator, model_options

logger = logging.getLogger("aekit.cli")

# Exit statuses: 1 for bad data, files or settings; 2 for invalid command-line usage (click's).
EXIT_USER_ERROR = 1
# Inputs whose reconstructions `train` records during training for the report's timeline.
REPORT_TIMELINE_INPUTS = 8


# --- option parsing -----------------------------------------------------------------


def _parse_hidden_dims(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    if value is None or value.strip().lower() == "auto":
        return None
    if value.strip().lower() in ("", "none"):
        return ()
    try:
        widths = tuple(int(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a comma-separated list of integers; use for example --hidden-dims 64,32."
        ) from None
    if any(width < 1 for width in widths):
        raise click.BadParameter(f"{value!r} has a width below 1; every hidden width must be positive.")
    return widths


def _parse_image_size(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        height, width = (int(part) for part in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not HEIGHTxWIDTH; use for example --image-size 28x28.") from None
    if height < 1 or width < 1:
        raise click.BadParameter(f"{value!r} has a side below 1 pixel.")
    return height, width


def _data_options(function: Any) -> Any:
    """Options that control how DATA is read; shared by the commands that read data."""
    function = click.option(
        "--color-mode",
        type=click.Choice(["auto", "grey", "rgb"]),
        default="auto",
        show_default=True,
        help="Channels for a folder of images; auto picks RGB if any image has colour.",
    )(function)
    function = click.option(
        "--image-size",
        callback=_parse_image_size,
        metavar="HxW",
        help="Resize a folder's images to HEIGHTxWIDTH pixels (default: their most common size).",
    )(function)
    return function


def _parse_columns(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    """Parse a comma-separated list of column names."""
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise click.BadParameter(f"{value!r} names no column; use for example COL1,COL2.")
    return names


def _table_options(function: Any) -> Any:
    """Options that select and read a table's columns; shared by train, detect and impute.

    'aekit train' keeps them in the model folder's table.json; detect and impute use
    those when given none of the three.
    """
    options = [
        click.option("--na-values", callback=_parse_columns, metavar="V1,V2,...",
                     help="Extra strings that mark a missing CSV cell, e.g. '?' (leading spaces are ignored)."),
        click.option("--label", "label_column", metavar="COL",
                     help="Column kept out of the model but carried into the output (or the training report)."),
        click.option("--drop", "drop_columns", callback=_parse_columns, metavar="COL1,COL2,...",
                     help="Columns to drop before the model sees the table, such as ids."),
    ]
    for option in options:
        function = option(function)
    return function


@dataclasses.dataclass
class TableColumns:
    """Column selection of a command: the dropped columns and the label column."""

    drop_columns: list[str] | None = None
    label_column: str | None = None
    # True when the columns come from the training run's table.json, not from the user:
    # a new table may then lack them (unlabelled rows to score), which is no mistake.
    remembered: bool = False

    def split(self, X: Any) -> tuple[Any, pd.Series | None]:
        """Return ``X`` without the dropped and label columns, and the label column."""
        if not (self.drop_columns or self.label_column):
            return X, None
        if not isinstance(X, pd.DataFrame):
            if self.remembered:
                return X, None
            raise DataError("--drop and --label need a table (CSV or Parquet) with named columns.")
        if self.remembered:
            present = [c for c in self.drop_columns or [] if c in X.columns]
            label = self.label_column if self.label_column in X.columns else None
            return TableColumns(present, label).split(X)
        set_aside = [*(self.drop_columns or []), *([self.label_column] if self.label_column else [])]
        missing = [name for name in set_aside if name not in X.columns]
        if missing:
            raise DataError(
                f"column(s) {', '.join(repr(m) for m in missing)} not found in the table; its columns are "
                f"{', '.join(map(str, X.columns[:10]))}{' ...' if len(X.columns) > 10 else ''}."
            )
        labels = X[self.label_column].reset_index(drop=True) if self.label_column else None
        return X.drop(columns=set_aside), labels


# Table options of 'aekit train', kept in the model folder so that later commands on the
# same kind of table need not repeat them.
TABLE_OPTIONS_FILE = "table.json"


def _save_table_options(out: Path, columns: TableColumns, na_values: list[str] | None) -> None:
    if not (columns.drop_columns or columns.label_column or na_values):
        return
    options = {"drop": columns.drop_columns, "label": columns.label_column, "na_values": na_values}
    (out / TABLE_OPTIONS_FILE).write_text(json.dumps(options, indent=2) + "\n", encoding="utf-8")


def _table_columns(
    model: Path, drop_columns: list[str] | None, label_column: str | None, na_values: list[str] | None
) -> tuple[TableColumns, list[str] | None]:
    """Return the columns to set aside and the missing-value markers of a command on ``model``.

    Options given on the command line replace the saved ones. Without any, those of the
    training run apply.
    """
    if drop_columns or label_column or na_values:
        return TableColumns(drop_columns, label_column), na_values
    path = model / TABLE_OPTIONS_FILE
    if not path.is_file():
        return TableColumns(), None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        columns = TableColumns(saved.get("drop"), saved.get("label"), remembered=True)
        markers = saved.get("na_values")
    except (ValueError, AttributeError) as err:
        raise ModelFileError(f"'{path}' is not a table options file ({err}); delete it or train again.") from err
    logger.info("using the table options of the training run: %s", saved)
    return columns, markers


def _read_table(data: Path, image_size: Any, color_mode: str, na_values: list[str] | None) -> Any:
    from ..data import read_data

    return read_data(data, image_size=image_size, color_mode=color_mode, na_values=na_values)


# Options of 'aekit train' that configure the detector rather than the autoencoder.
DETECTOR_OPTIONS = ("contamination", "fpr", "threshold", "calibration_fraction", "feature_weighting", "n_estimators")


def _detector_options(function: Any) -> Any:
    """Options of 'aekit train --detector': the threshold rule and the score."""
    options = [
        # The default is DEFAULT_N_ESTIMATORS of aekit.estimators.anomaly, written out so
        # that the CLI starts without importing torch.
        click.option("--n-estimators", type=click.IntRange(min=1), default=4, show_default=True,
                     help="Autoencoders trained from different seeds; a row's score is the mean of theirs."),
        click.option("--feature-weighting", type=click.Choice(["auto", "median", "none"]), default="auto",
                     show_default=True,
                     help="How per-feature errors add up to a score: median divides each by its median "
                          "over the training rows (auto: median for tables, none for images)."),
        click.option("--calibration-fraction", type=click.FloatRange(0, 1, max_open=True), default=None,
                     help="Share of rows held out for p-values (default: 0.2 with --fpr, else none)."),
        click.option("--threshold", type=float, default=None,
                     help="Flag rows whose reconstruction error is above this value."),
        click.option("--fpr", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
                     help="Target share of normal rows flagged, from conformal p-values on held-out rows."),
        click.option("--contamination", type=click.FloatRange(0, 0.5), default=0.1, show_default=True,
                     help="Expected share of outliers in the training rows, flagged by the threshold when "
                     "--fpr and --threshold are not given; 0 declares the rows clean (trains without dropout)."),
        click.option("--detector", is_flag=True,
                     help="Train an anomaly detector (see 'aekit detect') instead of a plain autoencoder."),
    ]
    for option in options:
        function = option(function)
    return function


def _check_detector_options(ctx: click.Context, use_detector: bool) -> None:
    explicit = [name for name in DETECTOR_OPTIONS if _given(ctx, name)]
    if explicit and not use_detector:
        flags = ", ".join("--" + name.replace("_", "-") for name in explicit)
        verb = "applies" if len(explicit) == 1 else "apply"
        raise click.UsageError(f"{flags} {verb} only to an anomaly detector; add --detector.")
    if _given(ctx, "fpr") and _given(ctx, "threshold"):
        raise click.UsageError("--fpr and --threshold set competing thresholds; give only one.")


def _given(ctx: click.Context, name: str) -> bool:
    """True when the option was set on the command line rather than left at its default."""
    return ctx.get_parameter_source(name) not in (click.core.ParameterSource.DEFAULT, None)


def _stream_options(function: Any) -> Any:
    """Options that read DATA chunk by chunk; shared by every command that reads data."""
    function = click.option(
        "--chunk-size",
        type=click.IntRange(min=1),
        default=65_536,
        show_default=True,
        help="Rows read at a time with --stream.",
    )(function)
    function = click.option(
        "--stream",
        is_flag=True,
        help="Read DATA (Parquet, CSV or .npy) in chunks, for data larger than memory.",
    )(function)
    return function


# --- the command group --------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="aekit")
@click.option("-v", "--verbose", count=True, help="Log more: -v logs each epoch, -vv adds debug messages.")
@click.option("-q", "--quiet", is_flag=True, help="Log errors only and hide the progress bar.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Autoencoders for tables and images: train, encode, reconstruct and score."""
    from ..training.distributed import is_main_process

    # Under torchrun only rank 0 logs and shows progress; the other ranks report errors only.
    quiet = quiet or not is_main_process()
    level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="aekit: %(message)s", stream=sys.stderr, force=True)
    ctx.obj = {"verbose": 0 if quiet else 1 + min(verbose, 1)}


@cli.command()
@click.argument("data", required=False, type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), default=Path("runs/model"), show_default=True,
              help="Folder for the model files and metrics.json.")
@click.option("--latent-dim", type=click.IntRange(min=1), help="Latent code size (default: sqrt of the feature count).")
@click.option("--hidden-dims", callback=_parse_hidden_dims, metavar="W1,W2,...",
              help="Encoder hidden widths, e.g. 64,32; 'none' for no hidden layer (default: sized from the data).")
@click.option("--activation", type=click.Choice(["relu", "leaky_relu", "elu", "selu", "gelu", "silu", "tanh", "sigmoid"]),
              default="relu", show_default=True, help="Hidden-layer activation.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Dropout probability after each hidden layer.")
@click.option("--batch-norm/--no-batch-norm", default=True, show_default=True,
              help="Batch normalisation in the hidden layers.")
@click.option("--scaling", type=click.Choice(["auto", "standard", "minmax", "global-minmax", "none"]),
              default="auto", show_default=True,
              help="Preprocessing: auto standardises tables and maps images to [0, 1].")
@click.option("--loss", type=click.Choice(["mse", "bce"]), default="mse", show_default=True,
              help="Reconstruction loss; bce needs data scaled to [0, 1].")
@click.option("--epochs", "max_epochs", type=click.IntRange(min=1), default=200, show_default=True,
              help="Maximum number of epochs.")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True, help="Rows per training step.")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True,
              help="Adam learning rate.")
@click.option("--validation-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.2, show_default=True,
              help="Share of rows held out for validation and early stopping.")
@click.option("--early-stopping/--no-early-stopping", default=True, show_default=True,
              help="Stop when the validation loss stops improving and keep the best weights.")
@click.option("--patience", type=click.IntRange(min=1), default=10, show_default=True,
              help="Epochs without improvement before stopping.")
@click.option("--seed", "random_state", type=click.IntRange(0, 2**32 - 1), default=None,
              help="Random seed; the same seed gives identical results on CPU.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--report/--no-report", default=True, show_default=True,
              help="Write an HTML report with plots to OUT/report.")
@click.option("--tensorboard", "tensorboard_dir", type=click.Path(path_type=Path),
              help="Also write TensorBoard logs (losses, learning rate, reconstructions) to this folder.")
@model_options
@click.option("--categorical", "categorical_columns", callback=_parse_columns, metavar="COL1,COL2,...",
              help="Columns to treat as categorical besides text and bool columns (e.g. numeric codes).")
@click.option("--impute", type=click.Choice(["mean", "model"]), default=None,
              help="Missing values: 'model' masks them in training and lets 'aekit impute' fill them; "
                   "'mean' fills them with training means and modes. Default: missing values are an error.")
@_table_options
@_detector_options
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32", show_default=True,
              help="Training arithmetic: bf16 autocast on CPU or GPU, fp16 on CUDA; weights stay fp32.")
@click.option("--compile/--no-compile", "compile", default=False, show_default=True,
              help="Train through torch.compile (one-off compilation, then fused kernels).")
@click.option("--threads", "n_threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for training (default: PyTorch's, one per physical core).")
@click.option("--shuffle-buffer", type=click.IntRange(min=1), default=65_536, show_default=True,
              help="Rows held for shuffling with --stream.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=None, metavar="N",
              help="Write a training checkpoint every N epochs to the checkpoint folder (default: none).")
@click.option("--checkpoint-dir", type=click.Path(path_type=Path), default=None,
              help="Folder for training checkpoints [default: OUT/checkpoints].")
@click.option("--resume", is_flag=True,
              help="Continue from the newest checkpoint in the checkpoint folder, with the same DATA and "
                   "options (from the first epoch when there is none).")
@_data_options
@_stream_options
@click.pass_context
def train(
    ctx: click.Context,
    data: Path | None,
    out: Path,
    image_size: Any,
    color_mode: str,
    report: bool,
    tensorboard_dir: Path | None,
    stream: bool,
    chunk_size: int,
    shuffle_buffer: int,
    **params: Any,
) -> None:
    """Train an autoencoder on DATA and save it to --out.

    DATA is a CSV, Parquet, .npy, .npz or IDX file, or a folder of images or Parquet
    files. Without DATA, aekit trains on the embedded 8 x 8 digits. With --stream,
    DATA is read in chunks and may be larger than memory. With --detector, the model
    is an anomaly detector for 'aekit detect'; options not given then take the
    detector's defaults instead of those shown here.

    With --checkpoint-every N, training writes a checkpoint every N epochs (to
    OUT/checkpoints, or to --checkpoint-dir). If the run dies, the
    same command with --resume added continues from the newest checkpoint.

    Under 'torchrun --nproc-per-node N -m aekit train ...' the N processes train one
    model with DistributedDataParallel; --batch-size stays the global batch, and only
    rank 0 writes the model and metrics.
    """
    from ..reports import format_layer_table
    from ..training.distributed import is_main_process

    detector_params = {name: params.pop(name) for name in DETECTOR_OPTIONS}
    columns = TableColumns(params.pop("drop_columns"), params.pop("label_column"))
    na_values = params.pop("na_values")
    table_params = {name: params.pop(name) for name in ("categorical_columns", "impute")}
    table_params = {name: value for name, value in table_params.items() if value is not None}
    if table_params and params["model"] in ("vae", "beta-vae"):
        raise click.UsageError(
            f"--categorical and --impute apply to autoencoders (--model dense), not to --model {params['model']}."
        )
    use_detector = params.pop("detector")
    _check_detector_options(ctx, use_detector)
    if use_detector and stream:
        raise click.UsageError("--detector trains on data in memory; drop --stream or train a plain autoencoder.")

    checkpointing = _checkpointing(out, params.pop("checkpoint_dir"), params.pop("checkpoint_every"), params.pop("resume"))
    if stream and (table_params or columns.drop_columns or columns.label_column or na_values):
        raise click.UsageError(
            "--categorical, --impute, --drop, --label and --na-values need the table in memory; drop --stream."
        )
    training = _training_data(data, image_size, color_mode, stream, chunk_size, shuffle_buffer, na_values)
    if not stream:
        training.X, labels = columns.split(training.X)
        if labels is not None:
            training.labels = labels.to_numpy()
    callbacks = []
    if tensorboard_dir is not None:
        from ..training import TensorBoardLogger

        image_shape = training.sample_shape if len(training.sample_shape) > 1 else None
        callbacks.append(TensorBoardLogger(tensorboard_dir, image_shape=image_shape))
    # The report's timeline shows a few inputs reconstructed as training goes on.
    recording = {"timeline": REPORT_TIMELINE_INPUTS if report else 0, "callbacks": callbacks or None, **table_params}
    if use_detector:
        estimator = _build_detector(ctx, training.n_samples, params, {**detector_params, **checkpointing}, recording)
    else:
        estimator = build_estimator(ctx, params, verbose=ctx.obj["verbose"], **recording, **checkpointing)
    started = time.perf_counter()
    try:
        estimator.fit(training.X)
    finally:
        _leave_process_group()
    seconds = time.perf_counter() - started
    if not is_main_process():
        return

    estimator.save(out)
    autoencoder = getattr(estimator, "estimator_", estimator)
    n_samples = training.n_samples
    if n_samples is None:
        n_samples = autoencoder.metrics_["n_train"] + autoencoder.metrics_["n_val"]
    metrics = _train_metrics(autoencoder, training.source, n_samples, seconds)
    if use_detector:
        metrics["detector"] = _detector_metrics(estimator)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    _save_table_options(out, columns, na_values)

    logger.info("network:\n%s", format_layer_table(autoencoder.model_, autoencoder.n_features_in_))
    _echo_train_summary(autoencoder, metrics, out)
    if report:
        from ..reports import write_report

        # A streamed data set is not in memory, so its report shows the model without data.
        path = write_report(estimator, out / "report", None if stream else training.X, labels=training.labels,
                            data_description=training.description)
        click.echo(f"report written to {path}")


def _checkpointing(out: Path, directory: Path | None, every: int | None, resume: bool) -> dict[str, Any]:
    """Estimator parameters for --checkpoint-every, --checkpoint-dir and --resume."""
    if directory is None and every is None and not resume:
        return {}
    return {
        "checkpoint_dir": directory if directory is not None else out / "checkpoints",
        "checkpoint_every": every or 1,
        "resume": resume,
    }


def _build_detector(
    ctx: click.Context,
    n_samples: int,
    params: dict[str, Any],
    detector_params: dict[str, Any],
    recording: dict[str, Any],
) -> Any:
    """Build an AnomalyDetector whose autoencoder has the detector defaults, overridden by
    the model options given on the command line (any --model works inside)."""
    from .. import AnomalyDetector
    from ..estimators.anomaly import detector_defaults

    batch_size = params["batch_size"] if _given(ctx, "batch_size") else None
    clean = detector_params.get("contamination") == 0
    for name, value in detector_defaults(n_samples, batch_size, clean=clean).items():
        if not _given(ctx, name):
            params[name] = value
    seed = params["random_state"]
    estimator = build_estimator(ctx, params, verbose=ctx.obj["verbose"], **recording)
    calibration = detector_params.pop("calibration_fraction")
    return AnomalyDetector(
        estimator,
        calibration_fraction="auto" if calibration is None else calibration,
        random_state=seed,
        **detector_params,
    )


def _detector_metrics(detector: Any) -> dict[str, Any]:
    errors = detector.training_errors_
    return {
        "threshold": detector.threshold_ if np.isfinite(detector.threshold_) else None,
        "threshold_method": detector.threshold_method_,
        "n_flagged": int(np.sum(errors > detector.threshold_)),
        "n_calibration": 0 if detector.calibration_errors_ is None else len(detector.calibration_errors_),
    }


def _detection_table(detector: Any, X: Any, top_features: int) -> pd.DataFrame:
    """Score, label, p-value (when available) and top features of each row, one line per row."""
    from ..scoring import conformal_p_values

    scores = detector.reconstruction_error(X)
    frame = pd.DataFrame({"score": scores, "label": (scores > detector.threshold_).astype(int)})
    if detector.calibration_errors_ is not None:
        frame["p_value"] = conformal_p_values(scores, detector.calibration_errors_)
    if top_features:
        explained = detector.explain(X, top_k=top_features)
        k = int(explained["rank"].max())
        columns = ("feature", "error_share", "actual", "expected")
        if "probability" in explained:
            columns += ("probability",)
        values = {column: explained[column].to_numpy().reshape(len(frame), k) for column in columns}
        for rank in range(k):
            for column in columns:
                frame[f"{column}_{rank + 1}"] = values[column][:, rank]
    return frame


def _check_table_output(out: Path) -> None:
    from ..data.writers import check_output_path

    if check_output_path(out).suffix.lower() == ".npy":
        raise click.UsageError(f"output file '{out}' is .npy, which cannot hold feature names; use .csv or .parquet.")


@dataclasses.dataclass
class TrainingData:
    """What ``aekit train`` fits on: an array or a stream, and what is known about it."""

    X: Any
    source: str
    description: str
    sample_shape: tuple[int, ...]
    n_samples: int | None
    labels: Any = None


def _training_data(
    data: Path | None,
    image_size: Any,
    color_mode: str,
    stream: bool,
    chunk_size: int,
    shuffle_buffer: int,
    na_values: list[str] | None = None,
) -> TrainingData:
    """Read or open DATA: in memory, or as a stream with ``stream``."""
    from ..data import read_data
    from ..data import stream as open_stream
    from ..training.distributed import is_main_process

    if not stream:
        dataset = read_data(data, image_size=image_size, color_mode=color_mode, na_values=na_values)
        description = f"{dataset.source}: {dataset.describe()}"
        if is_main_process():
            click.echo(f"data: {description}")
        return TrainingData(dataset.X, dataset.source, description, tuple(dataset.X.shape[1:]),
                            dataset.n_samples, dataset.labels)

    if data is None:
        raise click.UsageError("--stream needs a DATA file (Parquet, CSV or .npy).")
    source = open_stream(data, chunk_size=chunk_size, shuffle_buffer=shuffle_buffer)
    rows = f"{source.n_rows} rows" if source.n_rows is not None else "rows counted while reading"
    description = f"{source.source}: streamed in chunks of {chunk_size}, {rows} x {source.n_features} columns"
    if is_main_process():
        click.echo(f"data: {description}")
    return TrainingData(source, source.source, description, tuple(source.sample_shape), source.n_rows)


def _leave_process_group() -> None:
    """Close the process group that distributed training opened, if any."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _train_metrics(estimator: Any, source: str, n_samples: int, seconds: float) -> dict[str, Any]:
    metrics = dict(estimator.metrics_)
    history = estimator.history_
    if metrics.get("val_mse") is not None and metrics.get("pca_val_mse"):
        metrics["val_mse_to_pca"] = metrics["val_mse"] / metrics["pca_val_mse"]
    metrics.update(
        {
            "epochs": history.n_epochs,
            "best_epoch": history.best_epoch,
            "stopped_early": history.stopped_early,
            "fit_seconds": round(seconds, 3),
            "model": estimator.model_.name,
            "latent_dim": estimator.latent_dim_,
            "seed": estimator.seed_,
            "data": source,
            "n_samples": n_samples,
        }
    )
    for name in ("hidden_dims", "channels"):
        if hasattr(estimator, f"{name}_"):
            metrics[name] = list(getattr(estimator, f"{name}_"))
    return metrics


def _network_line(estimator: Any) -> str:
    """Describe the encoder's widths, e.g. ``784 -> 512 -> 256 -> 32``."""
    if hasattr(estimator, "channels_"):
        shape = "x".join(str(v) for v in estimator.model_.config.input_shape)
        layers = [shape, *(f"conv {c}" for c in estimator.channels_), str(estimator.latent_dim_)]
    else:
        # A table's model input also contains embeddings and missing indicators.
        width = getattr(estimator.model_.config, "input_dim", estimator.n_features_in_)
        layers = [str(w) for w in (width, *estimator.hidden_dims_, estimator.latent_dim_)]
    decoder = "mirrored decoder"
    if getattr(estimator.model_.config, "tied_weights", False):
        decoder += " with tied weights"
    if hasattr(estimator, "likelihood_"):
        decoder = f"Gaussian code, {estimator.likelihood_} {decoder}"
    return f"{' -> '.join(layers)} ({decoder})"


def _echo_train_summary(estimator: Any, metrics: dict[str, Any], out: Path) -> None:
    n_parameters = sum(p.numel() for p in estimator.model_.parameters())
    click.echo(f"network: {_network_line(estimator)}, {n_parameters:,} parameters")

    best = f", best epoch {metrics['best_epoch']}" if metrics["best_epoch"] else ""
    click.echo(f"trained {metrics['epochs']} epochs in {metrics['fit_seconds']:.1f} s{best}")

    kind = "error (squared error and cross-entropy)" if getattr(estimator, "schema_", None) is not None else "MSE"
    line = f"reconstruction {kind} (scaled units): train {metrics['train_mse']:.5g}"
    if metrics["val_mse"] is not None and metrics["pca_val_mse"] is None:
        line += f", validation {metrics['val_mse']:.5g}"
    elif metrics["val_mse"] is not None:
        line += f", validation {metrics['val_mse']:.5g}, PCA-{metrics['pca_components']} validation {metrics['pca_val_mse']:.5g}"
        if "val_mse_to_pca" in metrics:
            line += f" ({metrics['val_mse_to_pca']:.2f} x PCA)"
    click.echo(line)
    if "active_units" in metrics:
        click.echo(_variational_line(metrics, estimator.latent_dim_))
    click.echo(f"model saved to {out} (metrics in {out / 'metrics.json'})")


def _variational_line(metrics: dict[str, Any], latent_dim: int) -> str:
    rows = "validation" if metrics.get("val_elbo") is not None else "training"
    elbo = metrics["val_elbo"] if rows == "validation" else metrics["train_elbo"]
    kl = sum(metrics["kl_per_unit"])
    return (
        f"{rows} ELBO {elbo:.5g} nats per sample (scaled units), KL {kl:.4g} nats, "
        f"{metrics['active_units']} of {latent_dim} latent units active"
    )


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="Output file: .csv, .parquet or .npy.")
@_data_options
@_stream_options
def encode(model: Path, data: Path, out: Path, image_size: Any, color_mode: str, stream: bool, chunk_size: int) -> None:
    """Write the latent code of each row of DATA, as columns z0, z1, ..."""

    def compute(estimator: Any, X: Any) -> pd.DataFrame:
        autoencoder = _autoencoder(estimator)
        return pd.DataFrame(autoencoder.transform(X), columns=list(autoencoder.get_feature_names_out()))

    _run_inference(model, data, out, image_size, color_mode, stream, chunk_size, compute, "latent codes")


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="Output file: .csv, .parquet or .npy.")
@_data_options
@_stream_options
def reconstruct(
    model: Path, data: Path, out: Path, image_size: Any, color_mode: str, stream: bool, chunk_size: int
) -> None:
    """Write each row of DATA encoded and decoded, in the original units."""

    def compute(estimator: Any, X: Any) -> pd.DataFrame:
        autoencoder = _autoencoder(estimator)
        recon = autoencoder.reconstruct(X)
        if isinstance(recon, pd.DataFrame):
            return recon  # a table with a column schema, categories as labels
        return pd.DataFrame(recon.reshape(len(X), -1), columns=_feature_names(autoencoder, X))

    _run_inference(model, data, out, image_size, color_mode, stream, chunk_size, compute, "reconstructions")


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="Output file: .csv, .parquet or .npy.")
@_data_options
@_stream_options
def denoise(
    model: Path, data: Path, out: Path, image_size: Any, color_mode: str, stream: bool, chunk_size: int
) -> None:
    """Write clean reconstructions of the noisy rows of DATA, in the original units.

    Use a model trained with input noise (--model denoising, or --noise on any model).
    Other models only reconstruct their input, so aekit warns about them.
    """

    def compute(estimator: Any, X: Any) -> pd.DataFrame:
        autoencoder = _autoencoder(estimator)
        clean = autoencoder.denoise(X)
        if isinstance(clean, pd.DataFrame):
            return clean
        return pd.DataFrame(clean.reshape(len(X), -1), columns=_feature_names(autoencoder, X))

    _run_inference(model, data, out, image_size, color_mode, stream, chunk_size, compute, "denoised rows")


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="Output file: .csv, .parquet or .npy.")
@_data_options
@_stream_options
def score(model: Path, data: Path, out: Path, image_size: Any, color_mode: str, stream: bool, chunk_size: int) -> None:
    """Write each row's reconstruction error (higher = less like the training data)."""

    def compute(estimator: Any, X: Any) -> pd.DataFrame:
        return pd.DataFrame({"reconstruction_error": estimator.reconstruction_error(X)})

    _run_inference(model, data, out, image_size, color_mode, stream, chunk_size, compute, "reconstruction errors")


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("data", required=False, type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Folder for report.html and the PNG figures.")
@_data_options
def report(model: Path, data: Path | None, out: Path, image_size: Any, color_mode: str) -> None:
    """Write an HTML report of MODEL: learning curves, network, weights and timeline, and
    with DATA also reconstructions, latent space and error distribution."""
    from .. import load
    from ..data import read_data
    from ..reports import write_report

    estimator = load(model)
    dataset = None
    if data is not None:
        dataset = read_data(data, image_size=image_size or _trained_image_size(_autoencoder(estimator)), color_mode=color_mode)
    path = write_report(
        estimator,
        out,
        None if dataset is None else dataset.X,
        labels=None if dataset is None else dataset.labels,
        data_description=None if dataset is None else f"{dataset.source}: {dataset.describe()}",
    )
    click.echo(f"report written to {path}")


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--format", "export_format", type=click.Choice(["onnx"]), default="onnx", show_default=True,
              help="Export format.")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="The file to write, e.g. model.onnx.")
@click.option("--data", type=click.Path(path_type=Path),
              help="Rows for the parity check (default: the reference rows kept from the training data).")
@click.option("--opset", type=click.IntRange(min=7), default=None, help="ONNX opset version (default: 21).")
@click.option("--allow-mismatch", is_flag=True,
              help="Write the file even when ONNX Runtime disagrees with PyTorch; the command still exits with 1.")
@_data_options
def export(
    model: Path,
    export_format: str,
    out: Path,
    data: Path | None,
    opset: int | None,
    allow_mismatch: bool,
    image_size: Any,
    color_mode: str,
) -> None:
    """Export MODEL, with its scaling and error score, to one ONNX graph checked against PyTorch."""
    from .. import load
    from ..data import read_data

    estimator = load(model)
    rows = None
    if data is not None:
        rows = read_data(data, image_size=image_size or _trained_image_size(_autoencoder(estimator)), color_mode=color_mode).X
    result = estimator.export_onnx(out, rows, opset=opset, strict=not allow_mismatch)

    # Saving again records the export in config.json and the model card.
    estimator.save(model)
    click.echo(f"wrote {out} (opset {result.opset}); {result.describe()}")
    if not result.passed:
        raise ExportMismatch(f"{out} was written although its {result.describe()}")


class ExportMismatch(AekitError):
    """The exported graph was written on request although the parity check failed."""


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Output file: .csv or .parquet.")
@click.option("--top-features", type=click.IntRange(min=0), default=3, show_default=True,
              help="Features listed per row, largest share of its error first; 0 lists none.")
@_table_options
@_data_options
def detect(
    model: Path,
    data: Path,
    out: Path,
    top_features: int,
    image_size: Any,
    color_mode: str,
    drop_columns: list[str] | None,
    label_column: str | None,
    na_values: list[str] | None,
) -> None:
    """Score each row of DATA with a detector from 'aekit train --detector' and flag outliers.

    Writes per row: score (reconstruction error, higher = more anomalous), label (1
    outlier, 0 inlier), p_value when the detector holds calibration rows, and for
    each of the top features its name, error share, actual and expected value (and,
    for a categorical column, the actual category's probability under the model).
    The --label column comes first in the output, renamed input_COL if COL is
    "score" or "label". Without --drop, --label and --na-values, those of the
    training run apply (to the columns this table has).
    """
    from ..estimators import AnomalyDetector

    _check_table_output(out)
    from .. import load

    detector = load(model)
    if not isinstance(detector, AnomalyDetector):
        raise click.UsageError(
            f"model '{model}' is a plain {type(detector).__name__}, not an anomaly detector; "
            "train one with 'aekit train --detector'."
        )
    columns, na_values = _table_columns(model, drop_columns, label_column, na_values)
    dataset = _read_table(data, image_size or _trained_image_size(_autoencoder(detector)), color_mode, na_values)
    X, labels = columns.split(dataset.X)
    frame = _detection_table(detector, X, top_features)
    if labels is not None:
        # A label column called "score" or "label" must not clash with the output's own.
        name = labels.name if labels.name not in frame.columns else f"input_{labels.name}"
        frame.insert(0, name, labels.to_numpy())
    _write(frame, out, "scores and labels")
    click.echo(
        f"flagged {int(frame['label'].sum())} of {len(frame)} rows as outliers "
        f"(reconstruction error above {detector.threshold_:.6g}, set by {detector.threshold_method_})"
    )


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Output file: .csv or .parquet.")
@_table_options
def impute(
    model: Path,
    data: Path,
    out: Path,
    drop_columns: list[str] | None,
    label_column: str | None,
    na_values: list[str] | None,
) -> None:
    """Fill the missing cells of the table DATA with a MODEL trained with --impute.

    Present cells are written unchanged. With --impute model, a numeric gap gets the
    model's reconstruction and a categorical gap its most likely category, both
    predicted from the row's other cells. With --impute mean, a gap gets the training
    mean or most frequent category. The --label column comes first in the output.
    Without --drop, --label and --na-values, those of the training run apply (to the
    columns this table has).
    """
    from .. import load

    _check_table_output(out)
    estimator = _autoencoder(load(model))
    if getattr(estimator, "schema_", None) is None or getattr(estimator, "impute", None) is None:
        raise ConfigError(
            f"model '{model}' was trained without --impute, so it cannot fill missing values; "
            "train one with 'aekit train DATA --impute model'."
        )
    columns, na_values = _table_columns(model, drop_columns, label_column, na_values)
    dataset = _read_table(data, None, "auto", na_values)
    X, labels = columns.split(dataset.X)
    n_missing = int(pd.DataFrame(X).isna().to_numpy().sum())
    filled = pd.DataFrame(estimator.impute_missing(X))
    if labels is not None:
        filled.insert(0, labels.name, labels.to_numpy())
    _write(filled, out, f"the table with {n_missing} missing cells filled")


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-n", "--n-samples", type=click.IntRange(min=1), default=16, show_default=True,
              help="Number of samples to draw.")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="A folder (gets samples.png for image models, samples.csv for tables) or a file: "
                   ".png (image models), .csv, .parquet or .npy.")
@click.option("--seed", "random_state", type=click.IntRange(0, 2**32 - 1), default=None,
              help="Random seed; the same seed draws the same samples.")
def generate(model: Path, n_samples: int, out: Path, random_state: int | None) -> None:
    """Draw new samples from a variational MODEL (--model vae or beta-vae).

    Codes are drawn from the prior N(0, I) and decoded to the mean of p(x | z), in the
    training data's units.
    """
    from .. import VariationalAutoEncoder, load
    from ..data.writers import generated_sample_path, write_image_grid

    estimator = load(model)
    if not isinstance(estimator, VariationalAutoEncoder):
        raise click.UsageError(
            f"'{model}' is not a variational model (it is a {estimator.model_.name} {type(estimator).__name__}), "
            "so its latent space has no prior to sample from; train one with --model vae or --model beta-vae."
        )
    is_image = len(estimator.input_shape_) > 1
    path = generated_sample_path(out, is_image)
    samples = estimator.sample(n_samples, random_state=random_state)

    if path.suffix.lower() == ".png":
        # Pixels go through the model's scaling, which maps the training range to [0, 1].
        scaled = estimator.scaler_.transform(samples.reshape(n_samples, -1)).reshape(samples.shape)
        write_image_grid(scaled, path, value_range=(0.0, 1.0) if estimator.likelihood_ == "bernoulli" else None)
        click.echo(f"wrote a grid of {n_samples} samples to {path}")
    else:
        frame = pd.DataFrame(samples.reshape(n_samples, -1), columns=_feature_names(estimator, None))
        _write(frame, path, "samples")


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
def info(model: Path) -> None:
    """Describe a trained model: layers, neurons, weights, biases and compression ratio."""
    from .. import load
    from ..reports import format_layer_table

    loaded = load(model)
    estimator = _autoencoder(loaded)
    click.echo(f"model: {model} ({type(loaded).__name__}, {estimator.model_.name} autoencoder)")
    click.echo(f"input: {estimator.n_features_in_} features, sample shape {estimator.input_shape_}")
    schema = getattr(estimator, "schema_", None)
    if schema is not None:
        click.echo(
            f"preprocessing: {len(schema.numeric_positions)} numeric columns standardised, "
            f"{len(schema.categorical_positions)} categorical columns embedded inside the model"
        )
    else:
        click.echo(f"preprocessing: {estimator.scaler_.kind} scaling")
    click.echo("")
    click.echo(format_layer_table(estimator.model_, estimator.n_features_in_))

    metrics = estimator.metrics_
    if metrics.get("val_mse") is not None and metrics.get("pca_val_mse") is not None:
        click.echo(
            f"validation MSE {metrics['val_mse']:.5g} vs PCA-{metrics['pca_components']} "
            f"{metrics['pca_val_mse']:.5g} (scaled units)"
        )
    if loaded is not estimator:
        click.echo(f"anomaly threshold: reconstruction error {loaded.threshold_:.6g}, set by {loaded.threshold_method_}")
    if "active_units" in metrics:
        click.echo(_variational_line(metrics, estimator.latent_dim_))


# --- helpers ------------------------------------------------------------------------


def _run_inference(
    model: Path,
    data: Path,
    out: Path,
    image_size: Any,
    color_mode: str,
    stream: bool,
    chunk_size: int,
    compute: Any,
    what: str,
) -> None:
    """Load MODEL, apply ``compute(estimator, X)`` to DATA and write the table it returns.

    With ``stream``, DATA is read and the output written chunk by chunk.
    """
    from .. import load
    from ..data import read_data, write_stream_results
    from ..data import stream as open_stream
    from ..data.writers import check_output_path

    check_output_path(out)
    estimator = load(model)
    if not stream:
        dataset = read_data(data, image_size=image_size or _trained_image_size(_autoencoder(estimator)), color_mode=color_mode)
        _write(compute(estimator, dataset.X), out, what)
        return

    names = getattr(estimator, "feature_names_in_", None)
    source = open_stream(data, chunk_size=chunk_size, columns=None if names is None else list(names))
    n_rows = write_stream_results(source, lambda rows: compute(estimator, rows), out)
    click.echo(f"wrote {what} for {n_rows} rows to {out}")


def _autoencoder(estimator: Any) -> Any:
    """The autoencoder estimator itself, also when a detector file holds it."""
    return getattr(estimator, "estimator_", estimator)


def _trained_image_size(estimator: Any) -> tuple[int, int] | None:
    """Resize a folder's images to the size the model was trained on."""
    shape = estimator.input_shape_
    return (int(shape[-2]), int(shape[-1])) if len(shape) == 3 else None


def _feature_names(estimator: Any, X: Any) -> list[str]:
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        return [str(name) for name in names]
    if isinstance(X, pd.DataFrame):
        return [str(column) for column in X.columns]
    return [f"pixel_{i}" for i in range(estimator.n_features_in_)]


def _write(frame: pd.DataFrame, out: Path, what: str) -> None:
    from ..data import write_table

    write_table(frame, out)
    click.echo(f"wrote {what} for {len(frame)} rows to {out}")


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    from ..training.distributed import is_main_process

    # Every rank of a distributed run sees the same warnings; rank 0 reports them once.
    if is_main_process():
        click.echo(f"aekit: warning: {message}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user mistakes print one line and exit non-zero without a traceback."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        args = ["--help"]
    previous_showwarning = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        cli.main(args=args, prog_name="aekit", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.Abort:
        click.echo("aekit: aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        click.echo(f"aekit: error: {_one_line(err.format_message())}", err=True)
        sys.exit(err.exit_code)
    except AekitError as err:
        click.echo(f"aekit: error: {_one_line(str(err))}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except OSError as err:
        # Files that cannot be written or read (permissions, full disk) are the user's to fix.
        click.echo(f"aekit: error: {_one_line(str(err))}; check the path and its permissions.", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        click.echo("aekit: interrupted", err=True)
        sys.exit(130)
    finally:
        warnings.showwarning = previous_showwarning


def _one_line(text: str) -> str:
    return " ".join(text.split())
