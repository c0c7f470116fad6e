import gzip
import struct

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aekit.data import read_data, read_idx, write_table
from aekit.exceptions import DataError


def write_idx(path, array, compress=False):
    type_codes = {np.uint8: 0x08, np.int16: 0x0B, np.float32: 0x0D}
    code = type_codes[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as handle:
        handle.write(payload)


def test_csv_with_header(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]}).to_csv(path, index=False)
    frame = read_data(path).X
    assert list(frame.columns) == ["a", "b"]
    assert frame.to_numpy().tolist() == [[1, 3], [2, 4]]


def test_csv_without_header(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("1.5,2\n3,4\n5,6\n")
    frame = read_data(path).X
    assert list(frame.columns) == ["0", "1"]
    assert frame.shape == (3, 2)
    assert frame.iloc[0, 0] == 1.5


def test_compressed_csv(tmp_path):
    path = tmp_path / "t.csv.gz"
    pd.DataFrame({"a": [1.0, 2.0]}).to_csv(path, index=False)
    assert read_data(path).X["a"].tolist() == [1.0, 2.0]


def test_parquet_file_and_folder(tmp_path):
    frame = pd.DataFrame({"x": np.arange(4.0), "y": np.ones(4)})
    write_table(frame, tmp_path / "one.parquet")
    pd.testing.assert_frame_equal(read_data(tmp_path / "one.parquet").X, frame)

    folder = tmp_path / "parts"
    folder.mkdir()
    frame.iloc[:2].to_parquet(folder / "part-0.parquet", index=False)
    frame.iloc[2:].to_parquet(folder / "part-1.parquet", index=False)
    assert read_data(folder).X["x"].tolist() == [0, 1, 2, 3]


def test_npy_and_npz(tmp_path):
    X = np.arange(12.0).reshape(4, 3)
    np.save(tmp_path / "a.npy", X)
    np.testing.assert_array_equal(read_data(tmp_path / "a.npy").X, X)

    np.savez(tmp_path / "b.npz", X=X, y=np.array([0, 1, 0, 1]))
    dataset = read_data(tmp_path / "b.npz")
    np.testing.assert_array_equal(dataset.X, X)
    assert dataset.labels.tolist() == [0, 1, 0, 1]


def test_npz_without_known_key_lists_keys(tmp_path):
    np.savez(tmp_path / "c.npz", first=np.ones((2, 2)), second=np.ones((2, 2)))
    with pytest.raises(DataError, match=r"holds arrays \['first', 'second'\].*'X'"):
        read_data(tmp_path / "c.npz")


def test_pickled_npy_is_refused_without_running_it(tmp_path):
    ran = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(ran), "w"))

    path = tmp_path / "evil.npy"
    np.save(path, np.array([Payload()], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="never loads pickled Python objects"):
        read_data(path)
    assert not ran.exists()


@pytest.mark.parametrize("compress", [False, True])
def test_idx_images(tmp_path, compress):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 7, 6)).astype(np.uint8)
    path = tmp_path / ("imgs.idx3-ubyte" + (".gz" if compress else ""))
    write_idx(path, images, compress)
    dataset = read_data(path)
    assert dataset.is_image
    assert dataset.X.shape == (5, 1, 7, 6)
    np.testing.assert_array_equal(dataset.X[:, 0], images)


def test_idx_float_and_short_types(tmp_path):
    values = np.array([[1.5, -2.0], [3.0, 4.25]], dtype=np.float32)
    write_idx(tmp_path / "f.idx", values)
    np.testing.assert_array_equal(read_idx(tmp_path / "f.idx"), values)
    shorts = np.array([[-300, 2], [5, 7000]], dtype=np.int16)
    write_idx(tmp_path / "s.idx", shorts)
    np.testing.assert_array_equal(read_idx(tmp_path / "s.idx"), shorts)


def test_idx_labels_beside_images_are_attached(tmp_path):
    images = np.zeros((3, 2, 2), dtype=np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([4, 2, 9], dtype=np.uint8))
    assert read_data(tmp_path / "t10k-images-idx3-ubyte").labels.tolist() == [4, 2, 9]


def test_truncated_idx_is_reported(tmp_path):
    path = tmp_path / "cut.idx"
    write_idx(path, np.zeros((4, 3, 3), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError, match=r"declares shape \(4, 3, 3\) \(36 bytes of data\) but holds 31 bytes"):
        read_data(path)


def test_labels_idx_file_is_refused(tmp_path):
    path = tmp_path / "labels.idx1-ubyte"
    write_idx(path, np.array([1, 2, 3], dtype=np.uint8))
    with pytest.raises(DataError, match="1-D array of 3 values, such as labels"):
        read_data(path)


def test_image_folder_resizes_and_labels(tmp_path):
    for label, size in (("cats", (10, 8)), ("dogs", (10, 8)), ("dogs", (20, 16))):
        folder = tmp_path / label
        folder.mkdir(exist_ok=True)
        index = len(list(folder.iterdir()))
        Image.new("L", size, color=200).save(folder / f"{index}.png")
    dataset = read_data(tmp_path)
    assert dataset.X.shape == (3, 1, 8, 10)  # most common size, (height, width)
    assert dataset.X.dtype == np.uint8
    assert np.all(dataset.X == 200)
    assert dataset.labels.tolist() == ["cats", "dogs", "dogs"]


def test_image_folder_colour_and_explicit_size(tmp_path):
    Image.new("RGB", (4, 4), color=(255, 0, 0)).save(tmp_path / "red.png")
    Image.new("L", (4, 4), color=0).save(tmp_path / "black.jpg")
    dataset = read_data(tmp_path, image_size=(2, 3))
    assert dataset.X.shape == (2, 3, 2, 3)
    assert dataset.labels is None
    grey = read_data(tmp_path, color_mode="grey")
    assert grey.X.shape == (2, 1, 4, 4)


def test_unreadable_image_names_file(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png' cannot be read"):
        read_data(tmp_path)


def test_embedded_digits():
    dataset = read_data(None)
    assert dataset.X.shape == (1797, 1, 8, 8)
    assert dataset.X.max() == 16
    assert dataset.X.min() == 0
    assert len(dataset.labels) == 1797


@pytest.mark.parametrize(
    "name, content, fragment",
    [
        ("empty.csv", b"", "is empty"),
        ("header_only.csv", b"a,b\n", "has a header but no rows"),
        ("binary.csv", bytes(range(256)) * 4, "cannot be read as CSV"),
        ("mystery.bin", b"hello world", "cannot tell the format"),
        ("bad.parquet", b"PAR1 nope", "cannot be read as Parquet"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, name, content, fragment):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=fragment):
        read_data(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found; check the path"):
        read_data(tmp_path / "nope.csv")


def test_writer_rejects_unknown_extension(tmp_path):
    with pytest.raises(DataError, match=r"unsupported extension '\.txt'; use \.csv, \.parquet or \.npy"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "out.txt")

