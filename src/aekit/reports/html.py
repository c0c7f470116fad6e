"""A self-contained HTML report of a fitted autoencoder, plus each figure as a PNG.

The page embeds its images as base64 data URIs and contains no script, stylesheet or
font from elsewhere, so it opens from disk and makes no network request.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .. import plot
from .._version import __version__

logger = logging.getLogger(__name__)

# Rows used for the data-driven figures; a seeded sample keeps reports quick on large data.
MAX_REPORT_ROWS = 2000
WORST_ROWS = 10


@dataclasses.dataclass
class Section:
    """One part of the report: a heading, an optional figure and optional HTML below it."""

    title: str
    figure_name: str | None = None
    figure: Figure | None = None
    body: str = ""


def write_report(
    estimator: Any,
    out_dir: str | Path,
    X: Any = None,
    *,
    labels: Any = None,
    data_description: str | None = None,
) -> Path:
    """Write ``report.html`` and one PNG per figure to ``out_dir``; return the HTML path.

    Parameters
    ----------
    estimator : fitted aekit estimator
    out_dir : str or Path
        Folder for the report, created if needed.
    X : array-like, optional
        Data to show reconstructions, latent codes and errors for. Without it the
        report holds the learning curves, the network and the timeline only.
    labels : array-like of shape (n_samples,), optional
        Colours the latent-space plot.
    data_description : str, optional
        A line describing the data, such as its source and shape.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # A detector keeps its network in an inner estimator; its own scores and threshold
    # go into the error histogram.
    model = getattr(estimator, "estimator_", estimator)
    X, labels = _sample_rows(X, labels, model)

    sections = [_summary_section(estimator, model, X, data_description)]
    sections.append(Section("Learning curves", "loss_curves", plot.loss_curves(model), _loss_note(model)))
    if X is not None:
        sections.extend(_data_sections(estimator, model, X, labels))
    sections.append(Section("The network", "network", plot.network(model), _network_note(model)))
    sections.append(Section("Weights per layer", "weight_histograms", plot.weight_histograms(model)))
    if getattr(model, "timeline_", None):
        sections.append(Section("Training timeline", "timeline", plot.timeline(model), _TIMELINE_NOTE))

    images = {}
    for section in sections:
        if section.figure is not None:
            png = _png_bytes(section.figure)
            (out_dir / f"{section.figure_name}.png").write_bytes(png)
            images[section.figure_name] = base64.b64encode(png).decode("ascii")
    path = out_dir / "report.html"
    path.write_text(_render(estimator, sections, images), encoding="utf-8")
    logger.info("wrote report to %s", path)
    return path


def _sample_rows(X: Any, labels: Any, estimator: Any) -> tuple[Any, Any]:
    if X is None:
        return None, None
    n_rows = len(X)
    if n_rows <= MAX_REPORT_ROWS:
        return X, labels
    rows = np.sort(np.random.default_rng(estimator.seed_).choice(n_rows, MAX_REPORT_ROWS, replace=False))
    X = X.iloc[rows] if hasattr(X, "iloc") else np.asarray(X)[rows]
    return X, None if labels is None else np.asarray(labels)[rows]


def _data_sections(estimator: Any, model: Any, X: Any, labels: Any) -> list[Section]:
    sections = []
    if plot.is_image_model(model):
        sections.append(Section("Originals and reconstructions", "reconstructions", plot.reconstructions(model, X)))
    else:
        sections.append(
            Section("Reconstruction error per feature", "feature_errors", plot.feature_errors(model, X),
                    _worst_rows_table(model, X))
        )
    codes_note = ("<p>The code is drawn as it is.</p>" if model.latent_dim_ <= 2 else
                  f"<p>The {model.latent_dim_}-unit codes are projected on their first two principal "
                  "components.</p>")
    sections.append(Section("Latent space", "latent_space", plot.latent_space(model, X, labels), codes_note))
    sections.append(Section("Reconstruction error", "error_histogram", plot.error_histogram(estimator, X)))
    return sections


def _summary_section(estimator: Any, model: Any, X: Any, data_description: str | None) -> Section:
    metrics = model.metrics_
    history = model.history_
    rows = [
        ("data", data_description or "not given"),
        ("rows shown in this report", "none" if X is None else f"{len(X):,}"),
        ("sample shape", str(model.input_shape_)),
        ("features", f"{model.n_features_in_:,}"),
        ("latent code", f"{model.latent_dim_} units"),
        ("preprocessing", f"{model.scaler_.kind} scaling"),
        ("training rows / validation rows", f"{metrics.get('n_train', '?'):,} / {metrics.get('n_val', '?'):,}"),
        ("epochs trained", f"{history.n_epochs} (best {history.best_epoch})"),
        ("training time", f"{sum(history.epoch_seconds):.1f} s"),
    ]
    rows += [(f"metric: {name}", _format_value(metrics.get(name))) for name in
             ("train_mse", "val_mse", "pca_train_mse", "pca_val_mse")]
    if metrics.get("val_mse") is not None and metrics.get("pca_val_mse"):
        rows.append(("validation error / PCA's", f"{metrics['val_mse'] / metrics['pca_val_mse']:.3f}"))
    threshold = getattr(estimator, "threshold_", None)
    if threshold is not None:
        method = getattr(estimator, "threshold_method_", "")
        rows.append(("anomaly threshold", f"{_format_value(threshold)} ({method})".replace(" ()", "")))

    settings = model.get_params(deep=False)
    settings.pop("callbacks", None)
    body = (
        '<div class="columns"><div><h3>Run</h3>' + _table(["item", "value"], rows) + "</div>"
        "<div><h3>Settings</h3>" + _table(["parameter", "value"], sorted(settings.items())) + "</div></div>"
    )
    return Section("Summary", body=body)


def _worst_rows_table(estimator: Any, X: Any) -> str:
    """Render a table of the worst-reconstructed rows, each with its three largest per-feature errors."""
    errors = estimator.reconstruction_error(X)
    worst = np.argsort(errors)[::-1][:WORST_ROWS]
    if getattr(estimator, "schema_", None) is not None:
        return _worst_table_rows(estimator, X, errors, worst)
    values = np.asarray(X, dtype=np.float32).reshape(len(errors), -1)[worst]
    recon = estimator.reconstruct(values).reshape(len(worst), -1)
    scaled_gap = ((recon - values) / estimator.scaler_.scale_) ** 2
    names = plot.feature_names(estimator)

    rows = []
    for position, row in enumerate(worst):
        top = np.argsort(scaled_gap[position])[::-1][:3]
        detail = "; ".join(f"{names[j]}: {values[position, j]:.4g} (expected {recon[position, j]:.4g})" for j in top)
        rows.append((str(row), f"{errors[row]:.4g}", detail))
    return "<h3>Worst-reconstructed rows</h3>" + _table(["row", "error", "largest feature errors: actual (expected)"], rows)


def _worst_table_rows(estimator: Any, X: Any, errors: np.ndarray, worst: np.ndarray) -> str:
    """``_worst_rows_table`` for a table with a column schema, each cell in its own terms."""
    from ..estimators._tabular import cell_details

    rows_of_x = X.iloc[worst] if isinstance(X, pd.DataFrame) else np.asarray(X, dtype=object)[worst]
    actual, expected, cell_errors, _ = cell_details(estimator, rows_of_x)
    names = plot.feature_names(estimator)
    rows = []
    for position, row in enumerate(worst):
        top = np.argsort(np.nan_to_num(cell_errors[position], nan=0.0))[::-1][:3]
        detail = "; ".join(
            f"{names[j]}: {_cell_text(actual.iat[position, j])} (expected {_cell_text(expected.iat[position, j])})"
            for j in top
        )
        rows.append((str(row), f"{errors[row]:.4g}", detail))
    return "<h3>Worst-reconstructed rows</h3>" + _table(["row", "error", "largest feature errors: actual (expected)"], rows)


def _cell_text(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value)


def _loss_note(estimator: Any) -> str:
    best = estimator.history_.best_epoch
    if best is None:
        return "<p>Early stopping was off, so the weights are those of the last epoch.</p>"
    return f"<p>The dashed line marks epoch {best}, whose weights the model kept.</p>"


def _network_note(estimator: Any) -> str:
    n_parameters = sum(p.numel() for p in estimator.model_.parameters())
    ratio = estimator.n_features_in_ / estimator.latent_dim_
    return (f"<p>{n_parameters:,} parameters. The encoder compresses {estimator.n_features_in_:,} features into a "
            f"{estimator.latent_dim_}-unit code (compression ratio {ratio:.1f}); the decoder mirrors it.</p>")


_TIMELINE_NOTE = ("<p>The same inputs, reconstructed by the network's weights at several epochs. Early "
                  "reconstructions are blurred averages; later ones recover the details as training "
                  "adjusts the weights.</p>")


def _render(estimator: Any, sections: list[Section], images: dict[str, str]) -> str:
    parts = []
    for section in sections:
        parts.append(f"<section><h2>{html.escape(section.title)}</h2>")
        if section.figure is not None:
            alt = html.escape(section.title)
            parts.append(f'<img alt="{alt}" src="data:image/png;base64,{images[section.figure_name]}">')
        parts.append(section.body)
        parts.append("</section>")
    model = getattr(estimator, "estimator_", estimator)
    title = f"aekit report: {type(estimator).__name__} ({model.model_.name})"
    return _PAGE.format(title=html.escape(title), version=__version__, body="\n".join(parts))


def _png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _table(header: list[str], rows: list[tuple[Any, ...]]) -> str:
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _format_value(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.5g}"
    return str(value)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
section {{ margin-bottom: 2.5em; }}
.columns {{ display: flex; flex-wrap: wrap; gap: 2em; align-items: flex-start; }}
h3 {{ margin: 0.3em 0; }}
img {{ max-width: 100%; height: auto; border: 1px solid #ddd; }}
table {{ border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }}
footer {{ color: #777; font-size: 0.85em; }}
</style>
</head>
<body>
<h1>{title}</h1>
{body}
<footer>Written by aekit {version}. Errors are in the scaled units the model trains in.</footer>
</body>
</html>
"""
