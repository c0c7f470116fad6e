"""Streams over data sets larger than memory: Parquet, CSV and ``.npy`` read chunk by chunk.

Training and inference on a stream keep at most one chunk, one shuffle buffer, the
bounded samples kept for metrics and one Parquet row group in memory. Peak memory
therefore depends on those sizes and not on the number of rows.

- Parquet files and folders are read row group by row group (``pyarrow.parquet``);
  each epoch visits a process's row groups in a new seeded order.
- CSV files are read in chunks of rows (``pandas.read_csv(chunksize=...)``), always
  in file order.
- ``.npy`` files are memory-mapped and read in ranges of rows, in a seeded order.

Rows are shuffled within a bounded :class:`ShuffleBuffer`, so the order is random
but, unlike a full permutation, rows far apart in the file rarely meet in one batch.
Sort order in a file therefore matters less the larger the buffer.
"""

from __future__ import annotations

import dataclasses
import logging
import numbers
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..exceptions import ConfigError, DataError
from .readers import COMPRESSION_SUFFIXES, CSV_SUFFIXES, PARQUET_SUFFIXES, _first_line, _is_number
from .validation import column_label
from .writers import ChunkedTableWriter

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_ROWS = 65_536
DEFAULT_SHUFFLE_ROWS = 65_536
DEFAULT_SAMPLE_ROWS = 100_000


@dataclasses.dataclass(frozen=True)
class _ReadUnit:
    """A piece of a source read in one go: a Parquet row group, an ``.npy`` row range,
    or a whole CSV file. ``start`` is the global index of its first row."""

    part: int
    index: int
    start: int
    n_rows: int | None


def stream(
    source: str | Path | np.ndarray,
    *,
    chunk_size: int = DEFAULT_CHUNK_ROWS,
    shuffle_buffer: int = DEFAULT_SHUFFLE_ROWS,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    columns: Sequence[str] | None = None,
) -> TableStream:
    """Open a data set for chunked reading, to train on or score data larger than memory.

    Pass the result to :meth:`aekit.AutoEncoder.fit` in place of an array.

    Parameters
    ----------
    source : str, Path or ndarray
        A Parquet file or folder of Parquet files, a CSV file (also compressed), an
        ``.npy`` file (memory-mapped) or an array such as ``numpy.memmap``.
    chunk_size : int, default=65536
        Rows read and processed at a time.
    shuffle_buffer : int, default=65536
        Rows held for shuffling during training; larger mixes better and costs
        ``shuffle_buffer * n_features * 4`` bytes.
    sample_rows : int, default=100000
        Rows of each split (training and validation) kept in memory, sampled
        uniformly, for validation, metrics and the PCA baseline.
    columns : sequence of str, optional
        Columns to read, in this order; by default every column.

    Returns
    -------
    TableStream

    Examples
    --------
    >>> import numpy as np
    >>> from aekit.data import stream
    >>> chunks = stream(np.arange(10.0).reshape(5, 2), chunk_size=2).chunks()
    >>> [(start, rows.shape) for start, rows in chunks]
    [(0, (2, 2)), (2, (2, 2)), (4, (1, 2))]
    """
    for name, value in (("chunk_size", chunk_size), ("shuffle_buffer", shuffle_buffer), ("sample_rows", sample_rows)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
    options = {"chunk_size": int(chunk_size), "shuffle_buffer": int(shuffle_buffer), "sample_rows": int(sample_rows)}
    columns = None if columns is None else [str(c) for c in columns]

    if isinstance(source, np.ndarray):
        return _ArrayStream(source, source=f"array of shape {source.shape}", **options)
    path = Path(source)
    if not path.exists():
        raise DataError(f"data file '{path}' not found; check the path.")
    suffixes = [s.lower() for s in path.suffixes]
    suffix = suffixes[-1] if suffixes else ""
    base_suffix = suffixes[-2] if suffix in COMPRESSION_SUFFIXES and len(suffixes) > 1 else suffix

    if path.is_dir() or base_suffix in PARQUET_SUFFIXES:
        return _ParquetStream(path, columns=columns, **options)
    if base_suffix in CSV_SUFFIXES:
        return _CsvStream(path, columns=columns, **options)
    if suffix == ".npy":
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as err:
            raise DataError(f"'{path}' cannot be memory-mapped as a numeric .npy array: {_first_line(err)}.") from err
        return _ArrayStream(array, source=str(path), **options)
    raise DataError(
        f"cannot stream '{path}'; streaming reads Parquet files or folders, CSV files and .npy "
        "files. Convert the data to Parquet, or read it into memory without streaming."
    )


class TableStream:
    """A data set read chunk by chunk; build one with :func:`stream`.

    Attributes
    ----------
    source : str
    feature_names : list of str or None
        Column names, when the source has string names.
    sample_shape : tuple of int
        Shape of one sample: ``(n_features,)`` for tables.
    n_rows : int or None
        Number of rows when the source records it (Parquet, ``.npy``), else ``None``.
    """

    source: str
    feature_names: list[str] | None
    sample_shape: tuple[int, ...]
    n_rows: int | None

    def __init__(self, *, chunk_size: int, shuffle_buffer: int, sample_rows: int) -> None:
        self.chunk_size = chunk_size
        self.shuffle_buffer = shuffle_buffer
        self.sample_rows = sample_rows

    @property
    def n_features(self) -> int:
        return int(np.prod(self.sample_shape))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source!r}, chunk_size={self.chunk_size})"

    def chunks(
        self, *, rank: int = 0, world_size: int = 1, rng: np.random.Generator | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, rows)`` pairs: the global index of the first row, and float32 rows
        of shape (n, n_features) with no NaN or infinity.

        With ``world_size > 1``, only this rank's share of the read units is read. With
        ``rng``, the units are visited in a random order (CSV is always read in order).
        """
        units = self._units()[rank::world_size] if self._splittable else self._units()
        if rng is not None and self._splittable:
            units = [units[i] for i in rng.permutation(len(units))]
        for position, (start, rows) in enumerate(self._read(units)):
            if not self._splittable and position % world_size != rank:
                continue
            self._check_finite(start, rows)
            yield start, rows

    def _check_finite(self, start: int, rows: np.ndarray) -> None:
        finite = np.isfinite(rows)
        if finite.all():
            return
        bad_rows, bad_columns = np.nonzero(~finite)
        raise DataError(
            f"'{self.source}' contains NaN or infinite values, first at row {start + int(bad_rows[0])} "
            f"column {column_label(int(bad_columns[0]), self.feature_names)} ({len(bad_rows)} values in "
            f"rows {start} to {start + len(rows) - 1}); drop or fill those values first."
        )

    # --- for subclasses -----------------------------------------------------------------

    # Whether read units can be assigned to ranks and reordered (all but CSV).
    _splittable = True

    def _units(self) -> list[_ReadUnit]:
        raise NotImplementedError

    def _read(self, units: list[_ReadUnit]) -> Iterator[tuple[int, np.ndarray]]:
        raise NotImplementedError


class _ArrayStream(TableStream):
    """An array, usually memory-mapped, read in ranges of ``chunk_size`` rows."""

    def __init__(self, array: np.ndarray, *, source: str, **options: int) -> None:
        super().__init__(**options)
        if array.ndim < 2 or array.ndim > 4 or len(array) == 0:
            raise DataError(
                f"{source} has shape {array.shape}; streaming needs (n_samples, n_features) or image "
                "arrays (n_samples, [channels,] height, width) with at least one row."
            )
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) or np.iscomplexobj(array):
            raise DataError(f"{source} has dtype {array.dtype}; streaming needs real numbers.")
        self.array = array
        self.source = source
        self.feature_names = None
        self.sample_shape = tuple(array.shape[1:]) if array.ndim != 3 else (1, *array.shape[1:])
        self.n_rows = len(array)

    def _units(self) -> list[_ReadUnit]:
        return [
            _ReadUnit(0, i, start, min(self.chunk_size, self.n_rows - start))
            for i, start in enumerate(range(0, self.n_rows, self.chunk_size))
        ]

    def _read(self, units: list[_ReadUnit]) -> Iterator[tuple[int, np.ndarray]]:
        for unit in units:
            rows = np.asarray(self.array[unit.start : unit.start + unit.n_rows], dtype=np.float32)
            yield unit.start, rows.reshape(len(rows), -1)


class _ParquetStream(TableStream):
    """A Parquet file, or a folder of them, read by row group in chunks of ``chunk_size`` rows."""

    def __init__(self, path: Path, *, columns: list[str] | None, **options: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        super().__init__(**options)
        self.source = str(path)
        self.files = sorted(p for p in path.rglob("*") if p.suffix.lower() in PARQUET_SUFFIXES) if path.is_dir() else [path]
        if not self.files:
            raise DataError(f"folder '{path}' contains no Parquet files (.parquet, .pq); pass a folder of Parquet files.")
        try:
            self._metadata = [pq.ParquetFile(file).metadata for file in self.files]
            schema = pq.ParquetFile(self.files[0]).schema_arrow
        except (pa.ArrowException, OSError) as err:
            raise DataError(f"'{path}' cannot be read as Parquet: {_first_line(err)}.") from err

        names = [name for name in schema.names if not name.startswith("__index_level_")]
        self.columns = _select_columns(names, columns, self.source)
        non_numeric = [
            name for name in self.columns
            if not (pa.types.is_integer(schema.field(name).type) or pa.types.is_floating(schema.field(name).type)
                    or pa.types.is_boolean(schema.field(name).type))
        ]
        if non_numeric:
            described = ", ".join(f"{name!r} ({schema.field(name).type})" for name in non_numeric[:5])
            raise DataError(f"'{path}' has non-numeric columns {described}; drop them or encode them as numbers.")
        self.feature_names = list(self.columns)
        self.sample_shape = (len(self.columns),)
        self.n_rows = sum(metadata.num_rows for metadata in self._metadata)
        if self.n_rows == 0:
            raise DataError(f"'{path}' contains no rows; it needs at least one.")

    def _units(self) -> list[_ReadUnit]:
        units, start = [], 0
        for part, metadata in enumerate(self._metadata):
            for index in range(metadata.num_row_groups):
                n_rows = metadata.row_group(index).num_rows
                units.append(_ReadUnit(part, index, start, n_rows))
                start += n_rows
        return units

    def _read(self, units: list[_ReadUnit]) -> Iterator[tuple[int, np.ndarray]]:
        import pyarrow.parquet as pq

        for unit in units:
            reader = pq.ParquetFile(self.files[unit.part])
            start = unit.start
            for batch in reader.iter_batches(batch_size=self.chunk_size, row_groups=[unit.index], columns=self.columns):
                rows = np.empty((batch.num_rows, len(self.columns)), dtype=np.float32)
                for j, column in enumerate(batch.columns):
                    # Nulls become NaN, which the finiteness check then reports.
                    rows[:, j] = column.to_numpy(zero_copy_only=False)
                yield start, rows
                start += batch.num_rows


class _CsvStream(TableStream):
    """A CSV file read in chunks of ``chunk_size`` rows, in file order."""

    _splittable = False

    def __init__(self, path: Path, *, columns: list[str] | None, **options: int) -> None:
        super().__init__(**options)
        self.path = path
        self.source = str(path)
        self.separator = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
        try:
            head = pd.read_csv(path, sep=self.separator, nrows=1)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, EOFError) as err:
            raise DataError(f"data file '{path}' cannot be read as CSV: {_first_line(err)}.") from err
        # A header whose every cell is a number means the file has no header row.
        self.header = None if len(head.columns) and all(_is_number(c) for c in head.columns) else 0
        names = [str(i) for i in range(len(head.columns))] if self.header is None else [str(c) for c in head.columns]
        self._file_columns = names
        self.columns = _select_columns(names, columns, self.source)
        self.feature_names = list(self.columns)
        self.sample_shape = (len(self.columns),)
        self.n_rows = None

    def _units(self) -> list[_ReadUnit]:
        return [_ReadUnit(0, 0, 0, None)]

    def _read(self, units: list[_ReadUnit]) -> Iterator[tuple[int, np.ndarray]]:
        from .validation import to_float_array

        names = self._file_columns if self.header is None else None
        start = 0
        try:
            reader = pd.read_csv(
                self.path, sep=self.separator, header=self.header, names=names, usecols=self.columns,
                chunksize=self.chunk_size,
            )
            for frame in reader:
                frame.columns = [str(c) for c in frame.columns]
                rows, _ = to_float_array(frame[self.columns])
                yield start, rows
                start += len(rows)
        except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as err:
            raise DataError(f"data file '{self.path}' cannot be read as CSV near row {start}: {_first_line(err)}.") from err


def _select_columns(names: list[str], columns: list[str] | None, source: str) -> list[str]:
    if columns is None:
        return names
    missing = [c for c in columns if c not in names]
    if missing:
        raise DataError(
            f"'{source}' lacks the columns {missing}; it has {names[:10]}{' ...' if len(names) > 10 else ''}. "
            "Pass data with the columns the model was trained on."
        )
    return list(columns)


# --- splitting, shuffling and sampling ----------------------------------------------


def validation_mask(row_indices: np.ndarray, seed: int, fraction: float) -> np.ndarray:
    """Return True for the rows that belong to the validation split.

    Each row's membership is a seeded hash of its global index (SplitMix64, Steele,
    Lea & Flood, OOPSLA 2014). It therefore does not depend on chunk sizes, read order
    or the number of processes. About ``fraction`` of the rows are chosen.
    """
    if fraction <= 0:
        return np.zeros(len(row_indices), dtype=bool)
    with np.errstate(over="ignore"):
        z = row_indices.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53 < fraction


class ShuffleBuffer:
    """Bounded shuffling of a stream of rows.

    The buffer fills to ``capacity`` rows; after that every incoming row replaces a
    uniformly chosen buffered row, which leaves. :meth:`flush` returns the rest in
    random order. The buffer never contains more than ``capacity`` rows.
    """

    def __init__(self, capacity: int, n_features: int, rng: np.random.Generator) -> None:
        self.capacity = capacity
        self.rng = rng
        self.rows = np.empty((capacity, n_features), dtype=np.float32)
        self.size = 0

    def push(self, rows: np.ndarray) -> np.ndarray:
        """Add ``rows``; return the rows that leave the buffer (as many as overflowed)."""
        taken = min(self.capacity - self.size, len(rows))
        self.rows[self.size : self.size + taken] = rows[:taken]
        self.size += taken

        leaving = []
        for start in range(taken, len(rows), self.capacity):
            incoming = rows[start : start + self.capacity]
            slots = self.rng.choice(self.capacity, size=len(incoming), replace=False)
            leaving.append(self.rows[slots])  # fancy indexing copies
            self.rows[slots] = incoming
        if not leaving:
            return self.rows[:0].copy()
        return np.concatenate(leaving) if len(leaving) > 1 else leaving[0]

    def flush(self) -> np.ndarray:
        """Return every buffered row in random order and empty the buffer."""
        rest = self.rows[self.rng.permutation(self.size)]
        self.size = 0
        return rest


class ReservoirSample:
    """A uniform random sample of at most ``capacity`` rows from a stream (Vitter's
    algorithm R, vectorised per chunk)."""

    def __init__(self, capacity: int, n_features: int, rng: np.random.Generator) -> None:
        self.capacity = capacity
        self.rng = rng
        self.rows = np.empty((0, n_features), dtype=np.float32)
        self.seen = 0

    def add(self, rows: np.ndarray) -> None:
        room = min(self.capacity - len(self.rows), len(rows))
        if room > 0:
            self.rows = np.concatenate([self.rows, rows[:room]])
        rest = rows[room:]
        seen = self.seen + room
        if len(rest):
            # Row number t (0-based) replaces a random slot with probability capacity / (t + 1).
            slots = self.rng.integers(0, seen + np.arange(1, len(rest) + 1))
            chosen = slots < self.capacity
            # Assignments run in order, so a later row overwrites an earlier one in the same slot.
            self.rows[slots[chosen]] = rest[chosen]
        self.seen = seen + len(rest)


def rows_to_batches(rows: Iterator[np.ndarray], batch_size: int, *, keep_last: bool) -> Iterator[np.ndarray]:
    """Regroup a stream of row blocks into batches of ``batch_size`` rows.

    With ``keep_last``, a final batch of at least 2 rows is kept; a single row is
    dropped, because batch normalisation cannot train on one row.
    """
    pending: list[np.ndarray] = []
    n_pending = 0
    for block in rows:
        if not len(block):
            continue
        pending.append(block)
        n_pending += len(block)
        if n_pending < batch_size:
            continue
        merged = np.concatenate(pending) if len(pending) > 1 else pending[0]
        n_full = len(merged) // batch_size * batch_size
        for start in range(0, n_full, batch_size):
            yield merged[start : start + batch_size]
        pending = [merged[n_full:]] if n_full < len(merged) else []
        n_pending = len(merged) - n_full
    if keep_last and n_pending >= 2:
        yield np.concatenate(pending)


def write_stream_results(
    source: TableStream, compute: Callable[[np.ndarray], pd.DataFrame], path: str | Path
) -> int:
    """Apply ``compute`` to each chunk of ``source`` and write the results chunk by chunk.

    ``compute`` maps float32 rows of shape (n, n_features) to a DataFrame of n rows,
    such as latent codes or scores. Output goes through :class:`ChunkedTableWriter`,
    so memory stays bounded by the chunk size. Returns the number of rows written.
    """
    with ChunkedTableWriter(path) as writer:
        for _, rows in source.chunks():
            writer.write(compute(rows.reshape(len(rows), *source.sample_shape)))
    return writer.n_rows
