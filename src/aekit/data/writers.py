"""Writing result tables (codes, reconstructions, scores) to CSV, Parquet or .npy, and
images to a PNG grid."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

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


class ChunkedTableWriter:
    """Write a result table chunk by chunk, so output of any length needs one chunk of memory.

    The extension picks the format, as in :func:`write_table`. CSV gets the header
    once, then rows appended. Parquet gets one row group per chunk, through
    ``pyarrow.parquet.ParquetWriter``. ``.npy`` gets the values only, and the writer
    rewrites the header's row count when it closes. Output goes to a temporary file beside ``path`` that replaces ``path``
    only when every chunk is written, so a failed run never leaves a truncated file.

    Examples
    --------
    >>> import pandas as pd, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "scores.csv")
    >>> with ChunkedTableWriter(path) as writer:
    ...     writer.write(pd.DataFrame({"score": [0.5, 1.5]}))
    ...     writer.write(pd.DataFrame({"score": [2.5]}))
    >>> pd.read_csv(path)["score"].tolist()
    [0.5, 1.5, 2.5]
    """

    def __init__(self, path: str | Path) -> None:
        self.path = check_output_path(path)
        self.suffix = self.path.suffix.lower()
        self.n_rows = 0
        self._temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
        self._handle: Any = None
        self._columns: list[str] | None = None
        self._npy_dtype: np.dtype | None = None

    def __enter__(self) -> ChunkedTableWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, frame: pd.DataFrame) -> None:
        """Append the rows of ``frame``; every chunk must have the first chunk's columns."""
        columns = [str(column) for column in frame.columns]
        if self._columns is None:
            self._columns = columns
            self._open(frame)
        elif columns != self._columns:
            raise DataError(f"chunk columns {columns} differ from the first chunk's {self._columns}.")

        if self.suffix == ".csv":
            frame.to_csv(self._handle, index=False, header=False)
        elif self.suffix in (".parquet", ".pq"):
            import pyarrow as pa

            self._handle.write_table(pa.Table.from_pandas(frame, schema=self._handle.schema, preserve_index=False))
        else:
            self._handle.write(np.ascontiguousarray(frame.to_numpy(dtype=self._npy_dtype)).tobytes())
        self.n_rows += len(frame)

    def _open(self, frame: pd.DataFrame) -> None:
        if self.suffix == ".csv":
            self._handle = open(self._temporary, "w", encoding="utf-8", newline="")
            frame.head(0).to_csv(self._handle, index=False)
        elif self.suffix in (".parquet", ".pq"):
            import pyarrow as pa
            import pyarrow.parquet as pq

            schema = pa.Schema.from_pandas(frame, preserve_index=False)
            self._handle = pq.ParquetWriter(self._temporary, schema)
        else:
            self._npy_dtype = np.result_type(*frame.dtypes) if len(frame.columns) else np.dtype(np.float64)
            self._handle = open(self._temporary, "wb")
            self._handle.write(_npy_header(self._npy_dtype, 0, len(frame.columns)))

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        try:
            if self._handle is not None:
                if self.suffix == ".npy":
                    self._handle.seek(0)
                    self._handle.write(_npy_header(self._npy_dtype, self.n_rows, len(self._columns)))
                self._handle.close()
            if exc_type is None:
                if self._handle is None:
                    raise DataError(f"no rows were written to '{self.path}'; the input had no rows.")
                os.replace(self._temporary, self.path)
        finally:
            self._temporary.unlink(missing_ok=True)


# Fixed size of the .npy header written by ChunkedTableWriter, so that the final header
# (with the row count known) overwrites the provisional one in place. 128 bytes hold any
# 2-D shape; the format requires a multiple of 64.
_NPY_HEADER_BYTES = 128


def _npy_header(dtype: np.dtype, n_rows: int, n_columns: int) -> bytes:
    """Return a version 1.0 ``.npy`` header for a C-ordered (n_rows, n_columns) array."""
    description = np.lib.format.dtype_to_descr(np.dtype(dtype))
    text = f"{{'descr': {description!r}, 'fortran_order': False, 'shape': ({n_rows}, {n_columns}), }}"
    prefix = b"\x93NUMPY\x01\x00"
    padding = _NPY_HEADER_BYTES - len(prefix) - 2 - len(text) - 1
    return prefix + struct.pack("<H", _NPY_HEADER_BYTES - len(prefix) - 2) + (text + " " * padding + "\n").encode("latin1")
