"""Property-based tests: any generated file or array either works or raises one of
aekit's documented errors (``AekitError`` subclasses), never an internal exception."""

import gzip
import os
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from aekit import AekitWarning, AnomalyDetector, AutoEncoder, VariationalAutoEncoder
from aekit.data import read_data
from aekit.exceptions import AekitError
from torch_threads import one_torch_thread  # noqa: F401

# Few examples and no deadline, so the suite runs in CI on small shared machines;
# AEKIT_HYPOTHESIS_EXAMPLES raises the count for a deeper search.
FAST = settings(
    max_examples=int(os.environ.get("AEKIT_HYPOTHESIS_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TINY_MODEL = dict(latent_dim=1, hidden_dims=(4,), max_epochs=2, batch_size=8, random_state=0)


def read_or_reject(path):
    """Read ``path``; return the data set, or None when aekit rejects it with its own error."""
    try:
        dataset = read_data(path)
    except AekitError as error:
        event(f"read rejected: {type(error).__name__}")
        return None
    event("read")
    return dataset


def fit_or_reject(estimator, X):
    """Fit on ``X``; return the estimator, or None when aekit rejects the data with its own error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AekitWarning)
        try:
            fitted = estimator.fit(X)
        except AekitError as error:
            event(f"fit rejected: {type(error).__name__}")
            return None
    event("fitted")
    return fitted


def check_scores(estimator, X):
    """Score ``X`` with a fitted estimator: finite scores or an aekit error, never NaN."""
    try:
        scores = estimator.score_samples(X)
    except AekitError as error:
        event(f"scoring rejected: {type(error).__name__}")
        return
    assert scores.shape == (len(X),)
    assert not np.isnan(scores).any()


# --- CSV ------------------------------------------------------------------------------

CSV_CELLS = st.sampled_from(["1", "-2.5", "0", "1e308", "1e309", "nan", "inf", "", "a", '"x,y"', "  ", "3"])
CSV_LINES = st.lists(st.lists(CSV_CELLS, min_size=0, max_size=4).map(",".join), min_size=0, max_size=6)


@FAST
@given(lines=CSV_LINES, newline=st.sampled_from(["\n", "\r\n"]), suffix=st.sampled_from([".csv", ".tsv", ".csv.gz"]))
def test_csv_text_reads_or_is_rejected(lines, newline, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"data{suffix}"
        payload = newline.join(lines).encode()
        path.write_bytes(gzip.compress(payload) if suffix.endswith(".gz") else payload)
        dataset = read_or_reject(path)
        if dataset is not None:
            assert dataset.n_samples >= 1
            fitted = fit_or_reject(AutoEncoder(**TINY_MODEL), dataset.X)
            if fitted is not None:
                check_scores(fitted, dataset.X)


@FAST
@given(payload=st.binary(max_size=200), suffix=st.sampled_from([".csv", ".csv.gz", ".parquet", ".npy", ".npz", ".bin"]))
def test_random_bytes_are_rejected_or_read(payload, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"data{suffix}"
        path.write_bytes(payload)
        read_or_reject(path)


# --- Parquet --------------------------------------------------------------------------

PARQUET_COLUMNS = st.dictionaries(
    st.text(alphabet="abcxyz_0", min_size=1, max_size=4),
    st.sampled_from(["float", "int", "bool", "str", "nan", "empty"]),
    min_size=0,
    max_size=3,
)


def make_column(kind, n_rows, rng):
    values = {
        "float": rng.normal(size=n_rows),
        "int": rng.integers(-5, 5, size=n_rows),
        "bool": rng.integers(0, 2, size=n_rows).astype(bool),
        "str": np.array(["a", "b"] * n_rows)[:n_rows],
        "nan": np.where(rng.random(n_rows) < 0.5, np.nan, 1.0),
        "empty": np.full(n_rows, np.nan),
    }
    return values[kind]


@FAST
@given(columns=PARQUET_COLUMNS, n_rows=st.integers(0, 5), cut=st.one_of(st.none(), st.integers(0, 400)))
def test_parquet_reads_or_is_rejected(columns, n_rows, cut):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({name: make_column(kind, n_rows, rng) for name, kind in columns.items()}, index=range(n_rows))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.parquet"
        frame.to_parquet(path)
        if cut is not None:
            # A file cut short, as a crash or a partial copy leaves it.
            path.write_bytes(path.read_bytes()[:cut])
        dataset = read_or_reject(path)
        if dataset is not None:
            fitted = fit_or_reject(AutoEncoder(**TINY_MODEL), dataset.X)
            if fitted is not None:
                check_scores(fitted, dataset.X)


# --- IDX ------------------------------------------------------------------------------


@FAST
@given(
    type_byte=st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07, 0xFF]),
    shape=st.lists(st.integers(0, 4), min_size=0, max_size=5),
    declared_dims=st.one_of(st.none(), st.integers(0, 255)),
    extra=st.integers(-6, 6),
    compress=st.booleans(),
)
def test_idx_reads_or_is_rejected(type_byte, shape, declared_dims, extra, compress):
    n_dims = len(shape) if declared_dims is None else declared_dims
    itemsize = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}.get(type_byte, 1)
    n_bytes = max(0, int(np.prod(shape)) * itemsize + extra)
    payload = bytes([0, 0, type_byte, n_dims % 256]) + struct.pack(">" + "I" * len(shape), *shape) + bytes(n_bytes)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "images-idx3-ubyte"
        path.write_bytes(gzip.compress(payload) if compress else payload)
        dataset = read_or_reject(path)
        if dataset is not None:
            fit_or_reject(AutoEncoder(**TINY_MODEL), dataset.X)


# --- image folders --------------------------------------------------------------------

IMAGES = st.lists(
    st.tuples(
        st.sampled_from(["L", "RGB", "RGBA", "P", "I;16", "1", "broken"]),
        st.integers(1, 6),
        st.integers(1, 6),
        st.sampled_from([".png", ".bmp", ".gif"]),
        st.sampled_from(["", "cats/", "dogs/"]),
    ),
    min_size=0,
    max_size=4,
)


@FAST
@given(images=IMAGES, color_mode=st.sampled_from(["auto", "grey", "rgb"]))
def test_image_folder_reads_or_is_rejected(images, color_mode):
    from aekit.data.readers import read_image_folder

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "images"
        root.mkdir()
        for index, (mode, height, width, suffix, subfolder) in enumerate(images):
            path = root / f"{subfolder}{index}{suffix}"
            path.parent.mkdir(exist_ok=True)
            if mode == "broken":
                path.write_bytes(b"not an image")
                continue
            try:
                Image.new(mode, (width, height), color=index).save(path)
            except (OSError, ValueError):
                path.write_bytes(b"")  # a format that cannot store this mode: an empty file
        try:
            dataset = read_image_folder(root, color_mode=color_mode)
        except AekitError:
            dataset = None
        read_or_reject(root)
        if dataset is not None:
            assert dataset.X.ndim == 4
            assert dataset.X.shape[0] == len(images)
            fit_or_reject(AutoEncoder(**TINY_MODEL), dataset.X)


# --- npy and npz ----------------------------------------------------------------------

NPY_DTYPES = st.one_of(
    hnp.floating_dtypes(),
    hnp.integer_dtypes(),
    hnp.boolean_dtypes(),
    hnp.complex_number_dtypes(),
    hnp.unicode_string_dtypes(max_len=3),
    hnp.datetime64_dtypes(),
)
NPY_ARRAYS = hnp.arrays(dtype=NPY_DTYPES, shape=hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4))


@FAST
@given(array=NPY_ARRAYS, archive=st.sampled_from(["npy", "npz-X", "npz-other", "npz-two"]))
def test_npy_and_npz_read_or_are_rejected(array, archive):
    with tempfile.TemporaryDirectory() as folder:
        if archive == "npy":
            path = Path(folder) / "data.npy"
            np.save(path, array)
        else:
            path = Path(folder) / "data.npz"
            arrays = {"X": array} if archive == "npz-X" else {"values": array}
            if archive == "npz-two":
                arrays["other"] = np.zeros(2)
            np.savez(path, **arrays)
        dataset = read_or_reject(path)
        if dataset is not None:
            fitted = fit_or_reject(AutoEncoder(**TINY_MODEL), dataset.X)
            if fitted is not None:
                check_scores(fitted, dataset.X)


def test_pickled_npy_is_rejected_without_running_code(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(AekitError, match="never loads pickled Python objects"):
        read_data(path)


# --- the estimator API ----------------------------------------------------------------

ELEMENTS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, 1.0, -1.0, 255.0, 1e-3, 1e6]),
)


@st.composite
def tables(draw, min_rows=0):
    n_rows = draw(st.integers(min_rows, 6))
    n_columns = draw(st.integers(0, 4))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.int64, np.uint8, np.bool_]))
    if np.dtype(dtype).kind == "f":
        elements = ELEMENTS
    elif dtype == np.bool_:
        elements = st.booleans()
    else:
        elements = st.integers(0, 255)
    return draw(hnp.arrays(dtype=dtype, shape=(n_rows, n_columns), elements=elements))


ANY_PARAMS = st.fixed_dictionaries(
    {
        "latent_dim": st.one_of(st.none(), st.integers(-1, 5)),
        "hidden_dims": st.one_of(st.none(), st.lists(st.integers(-1, 8), max_size=3).map(tuple)),
        "batch_size": st.integers(0, 9),
        "validation_fraction": st.sampled_from([0.0, 0.2, 0.5, 0.99, 1.0, -0.1]),
        "scaling": st.sampled_from(["auto", "standard", "minmax", "none", "bogus"]),
        "batch_norm": st.booleans(),
        "dropout": st.sampled_from([0.0, 0.5, 1.0]),
        "random_state": st.sampled_from([0, 1, 2**32 - 1, None, -1, 2**32, 2.5, "0"]),
        "verbose": st.sampled_from([0, -1, None, "1"]),
    }
)
# Valid settings, so that about half the examples get past the parameter checks to the data.
VALID_PARAMS = st.fixed_dictionaries(
    {
        "latent_dim": st.sampled_from([None, 1, 2]),
        "hidden_dims": st.sampled_from([None, (), (4,), (8, 4)]),
        "batch_size": st.integers(2, 9),
        "validation_fraction": st.sampled_from([0.0, 0.2, 0.5]),
        "scaling": st.sampled_from(["auto", "standard", "minmax", "none"]),
        "batch_norm": st.booleans(),
        "dropout": st.sampled_from([0.0, 0.5]),
        "random_state": st.sampled_from([0, 1, None]),
        "verbose": st.just(0),
    }
)
ESTIMATOR_PARAMS = st.one_of(VALID_PARAMS, ANY_PARAMS)


@FAST
@given(X=tables(), X_new=tables(min_rows=1), params=ESTIMATOR_PARAMS, kind=st.sampled_from(["ae", "vae", "detector"]))
def test_estimator_fits_scores_or_rejects(X, X_new, params, kind):
    base = {**TINY_MODEL, **{k: v for k, v in params.items() if v is not None or k in ("latent_dim", "verbose")}}
    if kind == "vae":
        estimator = VariationalAutoEncoder(**base)
    elif kind == "detector":
        estimator = AnomalyDetector(AutoEncoder(**base), random_state=0)
    else:
        estimator = AutoEncoder(**base)

    fitted = fit_or_reject(estimator, X)
    if fitted is None:
        return
    check_scores(fitted, X)
    check_scores(fitted, X_new)
    if hasattr(fitted, "transform"):
        try:
            codes = fitted.transform(X_new)
        except AekitError:
            return
        assert np.isfinite(codes).all()
        assert np.isfinite(fitted.inverse_transform(codes)).all()


@FAST
@given(X=hnp.arrays(dtype=np.float32, shape=hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4), elements=ELEMENTS.map(np.float32)))
def test_any_array_shape_fits_or_is_rejected(X):
    fitted = fit_or_reject(AutoEncoder(**TINY_MODEL), X)
    if fitted is not None:
        check_scores(fitted, X)


@FAST
@given(
    frame=st.lists(
        st.tuples(st.sampled_from(["num", "text", "cat", "bool", "object-num"]), st.text(alphabet="ab", min_size=1, max_size=2)),
        max_size=3,
    ),
    n_rows=st.integers(0, 4),
)
def test_dataframes_fit_or_are_rejected(frame, n_rows):
    columns = {}
    for kind, name in frame:
        values = {
            "num": np.arange(n_rows, dtype=float),
            "text": np.array(["u", "v"] * n_rows, dtype=object)[:n_rows],
            "cat": pd.Categorical(["u", "v"] * n_rows)[:n_rows],
            "bool": np.arange(n_rows) % 2 == 0,
            "object-num": np.array(list(range(n_rows)), dtype=object),
        }[kind]
        columns[name] = values
    data = pd.DataFrame(columns, index=range(n_rows))
    fitted = fit_or_reject(AutoEncoder(**TINY_MODEL), data)
    if fitted is not None:
        check_scores(fitted, data)
