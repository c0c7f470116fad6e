"""Writing result tables (codes, reconstructions, scores) to CSV, Parquet or .npy, and
images to a PNG grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..exceptions import DataError

OUTPUT_SUFFIXES = (".csv", ".parquet", ".pq", ".npy")


def check_output_path(path: str | Path) -> Path:
    """Raise ``DataError`` early if ``path`` has an extension aekit cannot write."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise DataError(
            f"output file '{path}' has the unsupported extension '{path.suffix}'; "
            "use .csv, .parquet or .npy."
        )
    return path


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` to ``path``; the extension picks CSV, Parquet or .npy (values only)."""
    path = check_output_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        np.save(path, frame.to_numpy(), allow_pickle=False)
    return path


# File names that ``aekit generate`` writes when given a folder.
SAMPLES_IMAGE_NAME = "samples.png"
SAMPLES_TABLE_NAME = "samples.csv"
# Grid cells are enlarged to at least this many pixels on their longer side.
MIN_CELL_PIXELS = 32
GRID_PADDING = 2


def generated_sample_path(out: str | Path, is_image: bool) -> Path:
    """Return the file for generated samples: ``out`` itself when it has a file extension,
    else ``samples.png`` (images) or ``samples.csv`` (tables) inside the folder ``out``."""
    path = Path(out)
    if not path.suffix:
        return path / (SAMPLES_IMAGE_NAME if is_image else SAMPLES_TABLE_NAME)
    if path.suffix.lower() == ".png":
        if not is_image:
            raise DataError(
                f"output file '{path}' is a PNG, but the model was trained on a table; "
                "use .csv, .parquet or .npy."
            )
        return path
    return check_output_path(path)


def write_image_grid(
    images: np.ndarray, path: str | Path, *, value_range: tuple[float, float] | None = None
) -> Path:
    """Write images of shape (n, channels, height, width) or (n, height, width) as one PNG grid.

    Values in ``value_range`` map to black through white and are clipped to it; with
    ``None``, the grid's own minimum and maximum are used. Grey images need 1 channel
    and colour images 3. The grid is as close to square as ``n`` allows, with a grey
    border between cells, and small images are enlarged without smoothing.
    """
    from PIL import Image

    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise DataError(
            f"a PNG grid needs images of shape (n, 1 or 3, height, width), got {images.shape}; "
            "write .npy or .csv instead."
        )

    low, high = value_range if value_range is not None else (float(images.min()), float(images.max()))
    pixels = np.clip((images - low) / max(high - low, 1e-12), 0, 1)
    pixels = np.round(pixels * 255).astype(np.uint8).transpose(0, 2, 3, 1)  # (n, height, width, channels)

    n, height, width, channels = pixels.shape
    zoom = max(1, -(-MIN_CELL_PIXELS // max(height, width)))
    pixels = pixels.repeat(zoom, axis=1).repeat(zoom, axis=2)
    cell_h, cell_w = height * zoom, width * zoom

    columns = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    grid = np.full(
        (rows * (cell_h + GRID_PADDING) + GRID_PADDING, columns * (cell_w + GRID_PADDING) + GRID_PADDING, channels),
        128,
        dtype=np.uint8,
    )
    for index in range(n):
        top = GRID_PADDING + (index // columns) * (cell_h + GRID_PADDING)
        left = GRID_PADDING + (index % columns) * (cell_w + GRID_PADDING)
        grid[top : top + cell_h, left : left + cell_w] = pixels[index]

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid[..., 0] if channels == 1 else grid, mode="L" if channels == 1 else "RGB").save(path)
    return path
