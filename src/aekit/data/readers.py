"""Readers for the data formats aekit accepts.

Tables: CSV (also compressed, e.g. ``.csv.gz``), Parquet files and folders of Parquet
files, ``.npy`` and ``.npz``. Images: MNIST-style IDX files (gzip or not) and folders
of PNG/JPEG images. With no path, the embedded default is scikit-learn's bundled
8 x 8 digits (no download).
"""

from __future__ import annotations

import collections
import dataclasses
import gzip
import logging
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import DataError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
CSV_SUFFIXES = frozenset({".csv", ".tsv", ".txt"})
COMPRESSION_SUFFIXES = frozenset({".gz", ".bz2", ".xz", ".zst", ".zip"})

# IDX type byte -> big-endian numpy dtype (LeCun's MNIST file format description).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


@dataclasses.dataclass
class Dataset:
    """Data read from a file: the samples, their feature names and optional labels.

    ``X`` is a DataFrame for tables and an array of shape (n_samples, channels,
    height, width) for images.
    """

    X: pd.DataFrame | np.ndarray
    source: str
    labels: np.ndarray | None = None

    @property
    def is_image(self) -> bool:
        return isinstance(self.X, np.ndarray) and self.X.ndim == 4

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    def describe(self) -> str:
        """Return a short description such as ``"1797 images of 1 x 8 x 8"``."""
        if self.is_image:
            _, channels, height, width = self.X.shape
            return f"{self.n_samples} images of {channels} x {height} x {width}"
        n_columns = int(np.prod(self.X.shape[1:]))
        return f"{self.n_samples} rows x {n_columns} columns"


def read_data(
    path: str | Path | None,
    *,
    image_size: tuple[int, int] | None = None,
    color_mode: str = "auto",
    na_values: Sequence[str] | None = None,
) -> Dataset:
    """Read a data set, choosing the reader from the file type.

    Parameters
    ----------
    path : str, Path or None
        A CSV, Parquet, ``.npy``, ``.npz`` or IDX file, a folder of images or of
        Parquet files, or ``None`` for the embedded digits.
    image_size : (height, width), optional
        Size that images in a folder are resized to; by default their most common size.
    color_mode : {"auto", "grey", "rgb"}
        Channels for images in a folder; ``"auto"`` picks RGB if any image has colour.
    na_values : sequence of str, optional
        CSV only: strings that mark a missing cell besides pandas' defaults (empty,
        "NA", "NaN", ...), such as ``["?"]``. Spaces after the separator are then
        skipped, so ``", ?"`` is missing too.
    """
    if path is None:
        return load_digits_images()

    path = Path(path)
    if not path.exists():
        raise DataError(f"data file '{path}' not found; check the path.")
    if path.is_dir():
        return _read_folder(path, image_size=image_size, color_mode=color_mode)
    if path.stat().st_size == 0:
        raise DataError(f"data file '{path}' is empty; it needs a header and at least one row.")

    suffixes = [s.lower() for s in path.suffixes]
    suffix = suffixes[-1] if suffixes else ""
    base_suffix = suffixes[-2] if suffix in COMPRESSION_SUFFIXES and len(suffixes) > 1 else suffix

    if base_suffix in PARQUET_SUFFIXES:
        return Dataset(X=_read_parquet(path), source=str(path))
    if base_suffix in CSV_SUFFIXES:
        return Dataset(X=_read_csv(path, na_values), source=str(path))
    if suffix == ".npy":
        return Dataset(X=_as_samples(_read_npy(path), path), source=str(path))
    if suffix == ".npz":
        return _read_npz(path)
    if suffix in IMAGE_SUFFIXES:
        raise DataError(
            f"'{path}' is a single image; pass the folder that contains the images instead."
        )
    if _looks_like_idx(path):
        return _read_idx_dataset(path)
    raise DataError(
        f"cannot tell the format of '{path}'; use a .csv, .parquet, .npy, .npz or IDX file, "
        "or a folder of images."
    )


def load_digits_images() -> Dataset:
    """Return scikit-learn's bundled digits: 1,797 grey 8 x 8 images, values 0-16."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32)[:, None, :, :]  # (n, 1, 8, 8)
    return Dataset(X=images, source="embedded digits (scikit-learn load_digits)", labels=digits.target)


# --- tables -------------------------------------------------------------------------


def _read_csv(path: Path, na_values: Sequence[str] | None = None) -> pd.DataFrame:
    separator = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
    options: dict[str, Any] = {"sep": separator}
    if na_values:
        options.update(na_values=list(na_values), skipinitialspace=True)
    try:
        frame = pd.read_csv(path, **options)
        if len(frame.columns) and all(_is_number(column) for column in frame.columns):
            # Every header cell is a number, so the file has no header row.
            logger.info("'%s' has no header row; naming its columns 0..%d", path, len(frame.columns) - 1)
            frame = pd.read_csv(path, header=None, **options)
            frame.columns = [str(column) for column in frame.columns]
    except pd.errors.EmptyDataError as err:
        raise DataError(f"data file '{path}' is empty; it needs a header and at least one row.") from err
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as err:
        raise DataError(f"data file '{path}' cannot be read as CSV: {_first_line(err)}.") from err

    if frame.empty:
        raise DataError(f"data file '{path}' has a header but no rows; add at least one row.")
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa

    try:
        frame = pd.read_parquet(path)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise DataError(f"'{path}' cannot be read as Parquet: {_first_line(err)}.") from err
    if frame.empty:
        raise DataError(f"'{path}' holds no rows; it needs at least one.")
    return frame


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:
        raise DataError(
            f"'{path}' cannot be read as a numeric .npy array ({_first_line(err)}); aekit never "
            "loads pickled Python objects."
        ) from err
    except (OSError, EOFError) as err:
        raise DataError(f"'{path}' cannot be read as .npy: {_first_line(err)}.") from err


def _read_npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except ValueError as err:
        raise DataError(
            f"'{path}' cannot be read as a numeric .npz archive ({_first_line(err)}); aekit never "
            "loads pickled Python objects."
        ) from err
    except (OSError, EOFError) as err:
        raise DataError(f"'{path}' cannot be read as .npz: {_first_line(err)}.") from err

    data_key = next((key for key in ("X", "x", "data") if key in arrays), None)
    if data_key is None and len(arrays) == 1:
        data_key = next(iter(arrays))
    if data_key is None:
        raise DataError(
            f"'{path}' holds arrays {sorted(arrays)}; aekit reads the one named 'X' (or 'x', "
            "'data'). Save the samples under the name 'X'."
        )

    X = _as_samples(arrays[data_key], path)
    labels = next((arrays[key] for key in ("y", "labels") if key in arrays), None)
    if labels is not None and (labels.ndim != 1 or len(labels) != len(X)):
        labels = None
    return Dataset(X=X, source=str(path), labels=labels)


def _as_samples(array: np.ndarray, path: Path) -> np.ndarray:
    """Shape an array read from a file into samples: 2-D stays, 3-D becomes grey images."""
    if array.ndim == 3:
        return array[:, None, :, :]
    if array.ndim in (2, 4):
        return array
    raise DataError(
        f"'{path}' holds an array of shape {array.shape}; aekit expects (n_samples, "
        "n_features), (n_samples, height, width) or (n_samples, channels, height, width)."
    )


# --- IDX ----------------------------------------------------------------------------


def _open_maybe_gzip(path: Path):
    with open(path, "rb") as handle:
        magic = handle.read(2)
    return gzip.open(path, "rb") if magic == _GZIP_MAGIC else open(path, "rb")


def _looks_like_idx(path: Path) -> bool:
    try:
        with _open_maybe_gzip(path) as handle:
            header = handle.read(4)
    except (OSError, EOFError):
        return False
    return len(header) == 4 and header[:2] == b"\0\0" and header[2] in _IDX_DTYPES and 1 <= header[3] <= 4


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or not, into a numpy array."""
    path = Path(path)
    try:
        with _open_maybe_gzip(path) as handle:
            raw = handle.read()
    except (OSError, EOFError) as err:
        raise DataError(f"'{path}' cannot be read as an IDX file: {_first_line(err)}.") from err

    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_DTYPES or not 1 <= raw[3] <= 4:
        raise DataError(f"'{path}' is not an IDX file: its first four bytes are {raw[:4]!r}.")

    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    n_dims = raw[3]
    header_size = 4 + 4 * n_dims
    if len(raw) < header_size:
        raise DataError(f"IDX file '{path}' is truncated inside its header.")
    shape = struct.unpack(">" + "I" * n_dims, raw[4:header_size])

    expected = int(np.prod(shape)) * dtype.itemsize
    found = len(raw) - header_size
    if found != expected:
        raise DataError(
            f"IDX file '{path}' declares shape {shape} ({expected} bytes of data) but holds "
            f"{found} bytes; the file is truncated or damaged."
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def _read_idx_dataset(path: Path) -> Dataset:
    array = read_idx(path)
    if array.ndim == 1:
        raise DataError(
            f"IDX file '{path}' holds a 1-D array of {array.shape[0]} values, such as labels; "
            "pass the file of images or samples instead."
        )
    return Dataset(X=_as_samples(array, path), source=str(path), labels=_sibling_idx_labels(path, len(array)))


def _sibling_idx_labels(path: Path, n_samples: int) -> np.ndarray | None:
    """Find MNIST's labels file beside an images file (``*-images-idx3-*`` -> ``*-labels-idx1-*``)."""
    if "images-idx3" not in path.name:
        return None
    candidate = path.with_name(path.name.replace("images-idx3", "labels-idx1"))
    if not candidate.exists():
        return None
    try:
        labels = read_idx(candidate)
    except DataError:
        return None
    return labels if labels.shape == (n_samples,) else None


# --- folders ------------------------------------------------------------------------


def _read_folder(path: Path, *, image_size: tuple[int, int] | None, color_mode: str) -> Dataset:
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    if any(p.suffix.lower() in PARQUET_SUFFIXES for p in files):
        return Dataset(X=_read_parquet(path), source=str(path))
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        raise DataError(
            f"folder '{path}' holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}) and no "
            "Parquet files; point to a folder of images or a data file."
        )
    return read_image_folder(path, image_size=image_size, color_mode=color_mode, files=images)


def read_image_folder(
    path: str | Path,
    *,
    image_size: tuple[int, int] | None = None,
    color_mode: str = "auto",
    files: list[Path] | None = None,
) -> Dataset:
    """Read every image under ``path`` into an array of shape (n, channels, height, width).

    Images are resized to ``image_size`` (height, width), by default the most common size
    among them. Subfolder names become labels when the images sit in subfolders.
    """
    from PIL import Image, UnidentifiedImageError

    if color_mode not in ("auto", "grey", "rgb"):
        raise DataError(f"color_mode must be 'auto', 'grey' or 'rgb', got {color_mode!r}.")

    path = Path(path)
    files = files if files is not None else sorted(
        p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise DataError(f"folder '{path}' holds no images; add PNG or JPEG files.")

    sizes: collections.Counter[tuple[int, int]] = collections.Counter()
    modes: set[str] = set()
    for file in files:
        try:
            with Image.open(file) as image:
                sizes[(image.height, image.width)] += 1
                modes.add(image.mode)
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(f"image '{file}' cannot be read: {_first_line(err)}.") from err

    height, width = image_size or sizes.most_common(1)[0][0]
    if color_mode == "auto":
        color_mode = "grey" if modes <= {"1", "L", "LA", "I", "I;16", "F"} else "rgb"
    pil_mode = "L" if color_mode == "grey" else "RGB"

    array = np.empty((len(files), 1 if pil_mode == "L" else 3, height, width), dtype=np.uint8)
    for index, file in enumerate(files):
        try:
            with Image.open(file) as image:
                converted = image.convert(pil_mode)
                if converted.size != (width, height):
                    converted = converted.resize((width, height), Image.Resampling.BILINEAR)
                pixels = np.asarray(converted, dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(f"image '{file}' cannot be read: {_first_line(err)}.") from err
        array[index] = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)

    if len(sizes) > 1:
        logger.info("resized images of %d different sizes to %d x %d", len(sizes), height, width)
    return Dataset(X=array, source=str(path), labels=_folder_labels(path, files))


def _folder_labels(root: Path, files: list[Path]) -> np.ndarray | None:
    """Use each image's first subfolder below ``root`` as its label, if all have one."""
    parts = [file.relative_to(root).parts for file in files]
    if any(len(p) < 2 for p in parts):
        return None
    return np.array([p[0] for p in parts])


# --- helpers ------------------------------------------------------------------------


def _is_number(text: object) -> bool:
    try:
        float(str(text))
    except ValueError:
        return False
    return True


def _first_line(err: BaseException) -> str:
    """Return the first line of an exception's message, without a trailing period."""
    text = str(err).strip().splitlines()
    return text[0].rstrip(".") if text else type(err).__name__
