"""The ``aekit`` command: train, encode, reconstruct, score and describe autoencoders.

User mistakes end with one line on stderr (``aekit: error: ...``) and exit status 1
(2 for invalid command-line usage); only bugs show a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import click
import pandas as pd

from .._version import __version__
from ..exceptions import AekitError

logger = logging.getLogger("aekit.cli")

# Exit statuses: 1 for bad data, files or settings; 2 for invalid command-line usage (click's).
EXIT_USER_ERROR = 1


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
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32", show_default=True,
              help="Training arithmetic: bf16 autocast on CPU or GPU, fp16 on CUDA; weights stay fp32.")
@click.option("--compile/--no-compile", "compile", default=False, show_default=True,
              help="Train through torch.compile (one-off compilation, then fused kernels).")
@click.option("--threads", "n_threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for training (default: PyTorch's, one per physical core).")
@click.option("--shuffle-buffer", type=click.IntRange(min=1), default=65_536, show_default=True,
              help="Rows held for shuffling with --stream.")
@_data_options
@_stream_options
@click.pass_context
def train(
    ctx: click.Context,
    data: Path | None,
    out: Path,
    image_size: Any,
    color_mode: str,
    stream: bool,
    chunk_size: int,
    shuffle_buffer: int,
    **params: Any,
) -> None:
    """Train an autoencoder on DATA and save it to --out.

    DATA is a CSV, Parquet, .npy, .npz or IDX file, or a folder of images or Parquet
    files. Without DATA, aekit trains on the embedded 8 x 8 digits. With --stream,
    DATA is read in chunks and may be larger than memory.

    Under 'torchrun --nproc-per-node N -m aekit train ...' the N processes train one
    model with DistributedDataParallel; --batch-size stays the global batch, and only
    rank 0 writes the model and metrics.
    """
    from .. import AutoEncoder
    from ..reports import format_layer_table
    from ..training.distributed import is_main_process

    training_data, source, n_samples = _training_data(data, image_size, color_mode, stream, chunk_size, shuffle_buffer)
    estimator = AutoEncoder(verbose=ctx.obj["verbose"], **params)
    started = time.perf_counter()
    try:
        estimator.fit(training_data)
    finally:
        _leave_process_group()
    seconds = time.perf_counter() - started
    if not is_main_process():
        return

    estimator.save(out)
    n_samples = n_samples if n_samples is not None else estimator.metrics_["n_train"] + estimator.metrics_["n_val"]
    metrics = _train_metrics(estimator, source, n_samples, seconds)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")

    logger.info("network:\n%s", format_layer_table(estimator.model_, estimator.n_features_in_))
    _echo_train_summary(estimator, metrics, out)


def _training_data(
    data: Path | None, image_size: Any, color_mode: str, stream: bool, chunk_size: int, shuffle_buffer: int
) -> tuple[Any, str, int | None]:
    """Return the data to fit (an array or a stream), its source and its row count if known."""
    from ..data import read_data
    from ..data import stream as open_stream
    from ..training.distributed import is_main_process

    if not stream:
        dataset = read_data(data, image_size=image_size, color_mode=color_mode)
        if is_main_process():
            click.echo(f"data: {dataset.source}: {dataset.describe()}")
        return dataset.X, dataset.source, dataset.n_samples

    if data is None:
        raise click.UsageError("--stream needs a DATA file (Parquet, CSV or .npy).")
    source = open_stream(data, chunk_size=chunk_size, shuffle_buffer=shuffle_buffer)
    if is_main_process():
        rows = f"{source.n_rows} rows" if source.n_rows is not None else "rows counted while reading"
        click.echo(f"data: {source.source}: streamed in chunks of {chunk_size}, {rows} x {source.n_features} columns")
    return source, source.source, source.n_rows


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
            "latent_dim": estimator.latent_dim_,
            "hidden_dims": list(estimator.hidden_dims_),
            "seed": estimator.seed_,
            "data": source,
            "n_samples": n_samples,
        }
    )
    return metrics


def _echo_train_summary(estimator: Any, metrics: dict[str, Any], out: Path) -> None:
    widths = [estimator.n_features_in_, *estimator.hidden_dims_, estimator.latent_dim_]
    n_parameters = sum(p.numel() for p in estimator.model_.parameters())
    click.echo(f"network: {' -> '.join(str(w) for w in widths)} (mirrored decoder), {n_parameters:,} parameters")

    best = f", best epoch {metrics['best_epoch']}" if metrics["best_epoch"] else ""
    click.echo(f"trained {metrics['epochs']} epochs in {metrics['fit_seconds']:.1f} s{best}")

    line = f"reconstruction MSE (scaled units): train {metrics['train_mse']:.5g}"
    if metrics["val_mse"] is not None:
        line += f", validation {metrics['val_mse']:.5g}, PCA-{metrics['pca_components']} validation {metrics['pca_val_mse']:.5g}"
        if "val_mse_to_pca" in metrics:
            line += f" ({metrics['val_mse_to_pca']:.2f} x PCA)"
    click.echo(line)
    click.echo(f"model saved to {out} (metrics in {out / 'metrics.json'})")


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
        return pd.DataFrame(estimator.transform(X), columns=list(estimator.get_feature_names_out()))

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
        recon = estimator.reconstruct(X).reshape(len(X), -1)
        return pd.DataFrame(recon, columns=_feature_names(estimator, X))

    _run_inference(model, data, out, image_size, color_mode, stream, chunk_size, compute, "reconstructions")


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
def info(model: Path) -> None:
    """Describe a trained model: layers, neurons, weights, biases and compression ratio."""
    from .. import load
    from ..reports import format_layer_table

    estimator = load(model)
    click.echo(f"model: {model} ({type(estimator).__name__}, {estimator.model_.name} autoencoder)")
    click.echo(f"input: {estimator.n_features_in_} features, sample shape {estimator.input_shape_}")
    click.echo(f"preprocessing: {estimator.scaler_.kind} scaling")
    click.echo("")
    click.echo(format_layer_table(estimator.model_, estimator.n_features_in_))

    metrics = estimator.metrics_
    if metrics.get("val_mse") is not None:
        click.echo(
            f"validation MSE {metrics['val_mse']:.5g} vs PCA-{metrics['pca_components']} "
            f"{metrics['pca_val_mse']:.5g} (scaled units)"
        )


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
        dataset = read_data(data, image_size=image_size or _trained_image_size(estimator), color_mode=color_mode)
        _write(compute(estimator, dataset.X), out, what)
        return

    names = getattr(estimator, "feature_names_in_", None)
    source = open_stream(data, chunk_size=chunk_size, columns=None if names is None else list(names))
    n_rows = write_stream_results(source, lambda rows: compute(estimator, rows), out)
    click.echo(f"wrote {what} for {n_rows} rows to {out}")


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
