"""Plots of a fitted autoencoder, each returned as a matplotlib ``Figure``.

The functions build figures with ``matplotlib.figure.Figure`` directly rather than
through ``pyplot``, so they need no display, leave pyplot's global state alone and
are safe in scripts and servers. In a notebook, a returned figure shows itself.

Examples
--------
>>> from sklearn.datasets import load_digits
>>> from aekit import AutoEncoder, plot
>>> images = load_digits().images[:, None]  # (1797, 1, 8, 8)
>>> ae = AutoEncoder(latent_dim=8, max_epochs=3, random_state=0).fit(images)
>>> figure = plot.loss_curves(ae)
>>> len(figure.axes[0].lines) >= 2
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .reports.summary import layer_table

__all__ = [
    "error_histogram",
    "feature_errors",
    "latent_space",
    "loss_curves",
    "network",
    "reconstructions",
    "timeline",
    "weight_histograms",
]

# Neurons drawn per layer in `network`; wider layers are drawn as this many with a gap.
_MAX_DRAWN_NEURONS = 16
# Horizontal distance between layers in `network`, in neuron-diameter units of the axes.
_SPACING = 3.0


def loss_curves(estimator: Any) -> Figure:
    """Training and validation loss per epoch, with the best epoch marked.

    Every other per-epoch series in ``estimator.history_.extra`` (for example the KL
    divergence of a variational model) gets its own panel.
    """
    check_is_fitted(estimator, "history_")
    history = estimator.history_
    extra = {name: values for name, values in getattr(history, "extra", {}).items() if values}
    figure = Figure(figsize=(7, 3.6 + 2.4 * len(extra)), layout="constrained")
    axes = figure.subplots(1 + len(extra), 1, squeeze=False)[:, 0]

    epochs = np.arange(1, history.n_epochs + 1)
    axes[0].plot(epochs, history.train_loss, label="training loss")
    if any(v is not None for v in history.val_loss):
        val = [np.nan if v is None else v for v in history.val_loss]
        axes[0].plot(epochs, val, label="validation loss")
    if history.best_epoch is not None:
        axes[0].axvline(history.best_epoch, color="grey", linestyle="--", label=f"best epoch ({history.best_epoch})")
    axes[0].set(xlabel="epoch", ylabel="loss (scaled units)", title="Learning curves")
    axes[0].set_yscale("log" if min(history.train_loss) > 0 else "linear")
    axes[0].legend()

    for axis, (name, values) in zip(axes[1:], extra.items()):
        axis.plot(epochs[: len(values)], values, color="tab:purple")
        axis.set(xlabel="epoch", ylabel=name.replace("_", " "), title=name.replace("_", " ").capitalize())
    return figure


def reconstructions(estimator: Any, X: Any, n: int = 8) -> Figure:
    """Image grid: the first ``n`` images of ``X`` (top row) above their reconstructions."""
    images = _as_images(estimator, X)[:n]
    recon = _as_images(estimator, estimator.reconstruct(images))
    figure = Figure(figsize=(1.2 * len(images), 2.8), layout="constrained")
    axes = figure.subplots(2, len(images), squeeze=False)
    for column, (original, rebuilt) in enumerate(zip(images, recon)):
        _show_image(axes[0, column], original, estimator)
        _show_image(axes[1, column], rebuilt, estimator)
    axes[0, 0].set_ylabel("original")
    axes[1, 0].set_ylabel("reconstruction")
    figure.suptitle("Originals and reconstructions")
    return figure


def feature_errors(estimator: Any, X: Any, top: int = 30) -> Figure:
    """Bar chart of the mean squared reconstruction error per feature, in scaled units.

    Shows the ``top`` features with the largest error, largest first.
    """
    errors = per_feature_errors(estimator, X)
    names = feature_names(estimator)
    order = np.argsort(errors)[::-1][:top]
    figure = Figure(figsize=(7, 1.5 + 0.25 * len(order)), layout="constrained")
    axis = figure.subplots()
    axis.barh(np.arange(len(order)), errors[order], color="tab:blue")
    axis.set_yticks(np.arange(len(order)), [names[i] for i in order])
    axis.invert_yaxis()
    axis.set(xlabel="mean squared error (scaled units)", title="Reconstruction error per feature")
    return figure


def latent_space(estimator: Any, X: Any, labels: Sequence[Any] | None = None) -> Figure:
    """Scatter plot of the latent codes in 2-D, coloured by ``labels`` when given.

    A 2-unit code is drawn as it is; a wider one is projected on its first two
    principal components, and the axis labels say which.
    """
    codes = estimator.transform(X)
    if codes.shape[1] == 1:
        points, axis_names, title = np.column_stack([codes[:, 0], np.zeros(len(codes))]), ("z0", ""), "Latent code (1 unit)"
    elif codes.shape[1] == 2:
        points, axis_names, title = codes, ("z0", "z1"), "Latent code (2 units, no projection)"
    else:
        points = PCA(n_components=2, random_state=0).fit_transform(codes)
        axis_names = ("principal component 1", "principal component 2")
        title = f"Latent codes ({codes.shape[1]} units) projected by PCA to 2-D"

    figure = Figure(figsize=(6, 5), layout="constrained")
    axis = figure.subplots()
    if labels is None:
        axis.scatter(points[:, 0], points[:, 1], s=6, alpha=0.6)
    else:
        labels = np.asarray(labels)
        for value in np.unique(labels):
            chosen = labels == value
            axis.scatter(points[chosen, 0], points[chosen, 1], s=6, alpha=0.7, label=str(value))
        axis.legend(title="label", markerscale=2, fontsize="small", loc="best")
    axis.set(xlabel=axis_names[0], ylabel=axis_names[1], title=title)
    return figure


def error_histogram(estimator: Any, X: Any, bins: int = 50) -> Figure:
    """Histogram of per-sample reconstruction errors, with the detector's threshold when
    the estimator has one (``threshold_``)."""
    errors = estimator.reconstruction_error(X)
    figure = Figure(figsize=(7, 3.6), layout="constrained")
    axis = figure.subplots()
    axis.hist(errors, bins=bins, color="tab:blue", alpha=0.8)
    threshold = getattr(estimator, "threshold_", None)
    if threshold is not None and np.isfinite(threshold):
        axis.axvline(threshold, color="tab:red", linestyle="--", label=f"threshold {threshold:.4g}")
        axis.legend()
    axis.set(xlabel="reconstruction error (scaled units)", ylabel="samples", title="Reconstruction error")
    return figure


def network(estimator: Any) -> Figure:
    """The network as columns of neurons, one per layer, joined by their weights, with
    units and weights per layer and the compression ratio."""
    check_is_fitted(estimator, "model_")
    layers = _neuron_layers(estimator)
    tallest = min(_MAX_DRAWN_NEURONS, max(units for _, units, _, _ in layers))
    figure = Figure(figsize=(max(6.0, 1.5 * len(layers)), 5.5), layout="constrained")
    axis = figure.subplots()
    axis.set_axis_off()

    positions = [_neuron_offsets(units) for _, units, _, _ in layers]
    for column in range(1, len(layers)):
        for left in positions[column - 1]:
            for right in positions[column]:
                axis.plot([_SPACING * (column - 1), _SPACING * column], [left, right], color="grey",
                          linewidth=0.3, alpha=0.25, zorder=1)

    for column, ((name, units, weights, word), offsets) in enumerate(zip(layers, positions)):
        x = _SPACING * column
        colour = "tab:orange" if name == "latent code" else "tab:blue"
        for offset in offsets:
            axis.add_patch(Circle((x, offset), 0.3, color=colour, zorder=2))
        if units > len(offsets):
            axis.text(x, 0, "...", ha="center", va="center", fontsize=9, zorder=3,
                      bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
        axis.text(x, tallest / 2 + 0.8, f"{name}\n{units:,} {word}", ha="center", va="bottom", fontsize=8)
        if weights:
            axis.text(x - _SPACING / 2, -tallest / 2 - 0.9, f"{weights:,}\nweights", ha="center", va="top", fontsize=7)

    ratio = estimator.n_features_in_ / estimator.latent_dim_
    axis.set_xlim(-1, _SPACING * (len(layers) - 1) + 1)
    axis.set_ylim(-tallest / 2 - 2.6, tallest / 2 + 2.4)
    axis.set_aspect("equal")
    axis.set_title(f"Network: {estimator.n_features_in_} inputs -> {estimator.latent_dim_}-unit code, "
                   f"compression ratio {ratio:.1f}")
    return figure


def _neuron_offsets(units: int) -> np.ndarray:
    """Vertical positions of the neurons drawn for a layer, centred on 0."""
    drawn = min(units, _MAX_DRAWN_NEURONS)
    offsets = np.arange(drawn) - (drawn - 1) / 2
    if units > drawn:
        offsets = offsets[np.abs(offsets) > 0.6]  # leave a gap for the "..." of hidden neurons
    return offsets


def weight_histograms(estimator: Any, bins: int = 40) -> Figure:
    """One histogram per weight matrix (linear and convolution layers), in forward order."""
    check_is_fitted(estimator, "model_")
    weighted = [(name, module.weight.detach().cpu().numpy().ravel())
                for name, module in estimator.model_.named_modules()
                if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    columns = min(4, len(weighted))
    rows = int(np.ceil(len(weighted) / columns))
    figure = Figure(figsize=(3.2 * columns, 2.5 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for axis, (name, values) in zip(axes, weighted):
        axis.hist(values, bins=bins, color="tab:green")
        axis.set_title(f"{name} ({values.size:,})", fontsize=9)
    for axis in axes[len(weighted):]:
        axis.set_axis_off()
    figure.suptitle("Weight distributions per layer")
    return figure


def timeline(estimator: Any) -> Figure:
    """The same inputs reconstructed at several epochs during training.

    Needs an estimator fitted with ``timeline`` > 0, which records the reconstructions.
    Images are drawn as images; table rows as line plots of their features.
    """
    record = getattr(estimator, "timeline_", None)
    if not record:
        raise ValueError(
            "the estimator has no training timeline; fit it with timeline=8 (or aekit train, "
            "which records one by default) to record reconstructions during training."
        )
    inputs, recon, epochs = record["inputs"], record["reconstructions"], record["epochs"]
    is_image = inputs.ndim == 4
    figure = Figure(figsize=(1.15 * (len(epochs) + 1), 1.15 * len(inputs) + 0.8), layout="constrained")
    axes = figure.subplots(len(inputs), len(epochs) + 1, squeeze=False)

    for row in range(len(inputs)):
        panels = [(inputs[row], "input")] + [(recon[k, row], f"epoch {e}") for k, e in enumerate(epochs)]
        for column, (values, title) in enumerate(panels):
            axis = axes[row, column]
            if is_image:
                _show_image(axis, values, estimator)
            else:
                axis.plot(inputs[row], color="lightgrey")
                axis.plot(values, color="tab:blue")
                axis.set_xticks([])
                axis.set_yticks([])
            if row == 0:
                axis.set_title(title, fontsize=8)
    figure.suptitle("Reconstructions during training")
    return figure


# --- data helpers shared with the HTML report ------------------------------------------


def per_feature_errors(estimator: Any, X: Any) -> np.ndarray:
    """Mean squared reconstruction error of each feature over ``X``, in scaled units.

    For a table with a column schema: each column's mean cell error over its present
    cells (squared error or entropy-weighted cross-entropy, as in the training loss).
    """
    if getattr(estimator, "schema_", None) is not None:
        from .estimators._tabular import cell_details

        errors = cell_details(estimator, X)[2]
        present = ~np.isnan(errors)
        return np.where(present, errors, 0.0).sum(axis=0) / np.maximum(present.sum(axis=0), 1)
    scaled = estimator._check_inference_data(X, when="scoring")
    recon = estimator._batched(scaled, lambda x: estimator.model_(x).x_recon)
    return np.mean((recon.reshape(len(scaled), -1) - scaled) ** 2, axis=0)


def feature_names(estimator: Any) -> list[str]:
    """Column names the estimator was fitted with, or ``x0, x1, ...``."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        return [str(name) for name in names]
    return [f"x{i}" for i in range(estimator.n_features_in_)]


def is_image_model(estimator: Any) -> bool:
    """True when samples are images: (channels, height, width) or (height, width)."""
    return len(estimator.input_shape_) in (2, 3)


def _as_images(estimator: Any, X: Any) -> np.ndarray:
    if not is_image_model(estimator):
        raise ValueError(
            f"reconstruction grids need image data, but the model's samples have shape "
            f"{estimator.input_shape_}; use plot.feature_errors for tables."
        )
    array = np.asarray(X, dtype=np.float32)
    return array.reshape(len(array), *estimator.input_shape_)


def _show_image(axis: Any, image: np.ndarray, estimator: Any) -> None:
    """Draw one (C, H, W) or (H, W) image on the fitted data's pixel range."""
    low = float(estimator.scaler_.offset_.min())
    high = low + float(estimator.scaler_.scale_.max())
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim == 3:
        image = np.clip((image.transpose(1, 2, 0) - low) / (high - low), 0, 1)
        axis.imshow(image)
    else:
        axis.imshow(image, cmap="gray", vmin=low, vmax=high)
    axis.set_xticks([])
    axis.set_yticks([])


def _neuron_layers(estimator: Any) -> list[tuple[str, int, int, str]]:
    """(name, units, weights into it, unit word) for the input and each weighted layer.

    Convolutions count channels rather than units. A VAE's ``logvar_head`` is left out
    because it runs beside ``mu_head``, whose output is the code.
    """
    layers = [("input", estimator.n_features_in_, 0, "units")]
    for row in layer_table(estimator.model_):
        if row.kind in ("Conv2d", "ConvTranspose2d"):
            layers.append((row.name, row.neurons, row.weights, "channels"))
        elif row.kind in ("Linear", "TiedLinear") and row.name != "logvar_head":
            layers.append((row.name, row.neurons, row.weights, "units"))

    # The code is the last encoder-side layer with latent_dim units.
    decoder_start = next(i for i, layer in enumerate(layers) if layer[0].startswith("decoder"))
    code = decoder_start - 1
    layers[code] = ("latent code", *layers[code][1:])
    layers[-1] = ("output", *layers[-1][1:])
    return layers
