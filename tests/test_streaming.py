import numpy as np
import pandas as pd
import pytest

from aekit import AutoEncoder, ConfigError, DataError, load
from aekit.cli.main import main
from aekit.data import ChunkedTableWriter, stream, write_stream_results, write_table
from aekit.data.streaming import ReservoirSample, ShuffleBuffer, rows_to_batches, validation_mask
from aekit.estimators._streaming import StreamBatches
from aekit.preprocessing import RunningStats, Scaler
from conftest import small_params


@pytest.fixture
def frame(table):
    return pd.DataFrame(table, columns=[f"f{j}" for j in range(table.shape[1])])


@pytest.fixture
def files(tmp_path, frame):
    """The same 200 x 6 table as Parquet (row groups of 64), CSV, headerless CSV and .npy."""
    paths = {
        "parquet": tmp_path / "t.parquet",
        "csv": tmp_path / "t.csv",
        "headerless": tmp_path / "t_noheader.csv",
        "npy": tmp_path / "t.npy",
    }
    frame.to_parquet(paths["parquet"], row_group_size=64)
    frame.to_csv(paths["csv"], index=False)
    frame.to_csv(paths["headerless"], index=False, header=False)
    np.save(paths["npy"], frame.to_numpy())
    return paths


@pytest.mark.parametrize("kind", ["parquet", "csv", "headerless", "npy"])
def test_chunks_reassemble_the_table(files, table, kind):
    source = stream(files[kind], chunk_size=50)
    chunks = list(source.chunks())
    assert [start for start, _ in chunks] == [0, 50, 64, 114, 128, 178, 192] if kind == "parquet" else [0, 50, 100, 150]
    np.testing.assert_array_equal(np.concatenate([rows for _, rows in chunks]), table)
    assert all(rows.dtype == np.float32 for _, rows in chunks)


@pytest.mark.parametrize("kind", ["parquet", "csv", "npy"])
def test_rank_shards_partition_the_rows(files, table, kind):
    shards = [np.concatenate([rows for _, rows in stream(files[kind], chunk_size=50).chunks(rank=r, world_size=2)])
              for r in range(2)]
    both = np.concatenate(shards)
    assert len(both) == len(table)
    np.testing.assert_array_equal(np.sort(both, axis=0), np.sort(table, axis=0))


def test_feature_names_and_column_selection(files, table):
    assert stream(files["parquet"]).feature_names == [f"f{j}" for j in range(6)]
    assert stream(files["headerless"]).feature_names == [str(j) for j in range(6)]
    assert stream(files["npy"]).feature_names is None
    for kind in ("parquet", "csv"):
        rows = np.concatenate([r for _, r in stream(files[kind], columns=["f3", "f0"]).chunks()])
        np.testing.assert_array_equal(rows, table[:, [3, 0]])


def test_stream_errors_name_the_problem(tmp_path, files, frame):
    with pytest.raises(DataError, match=r"lacks the columns \['nope'\]"):
        stream(files["parquet"], columns=["nope"])
    with pytest.raises(ConfigError, match="chunk_size must be a positive integer, got 0"):
        stream(files["parquet"], chunk_size=0)
    with pytest.raises(DataError, match="not found"):
        stream(tmp_path / "missing.parquet")
    (tmp_path / "data.json").write_text("{}")
    with pytest.raises(DataError, match="cannot stream .*Convert the data to Parquet"):
        stream(tmp_path / "data.json")

    frame.assign(label="x").to_parquet(tmp_path / "text.parquet")
    with pytest.raises(DataError, match=r"non-numeric columns 'label' \((large_)?string"):
        stream(tmp_path / "text.parquet")

    broken = frame.copy()
    broken.iloc[130, 2] = np.nan
    broken.to_parquet(tmp_path / "nan.parquet", row_group_size=64)
    with pytest.raises(DataError, match="NaN or infinite values, first at row 130 column 'f2'"):
        list(stream(tmp_path / "nan.parquet").chunks())


def test_validation_mask_ignores_chunking():
    rows = np.arange(10_000)
    whole = validation_mask(rows, seed=3, fraction=0.2)
    pieces = np.concatenate([validation_mask(rows[i : i + 777], seed=3, fraction=0.2) for i in range(0, 10_000, 777)])
    np.testing.assert_array_equal(whole, pieces)
    assert abs(whole.mean() - 0.2) < 0.02
    assert not np.array_equal(whole, validation_mask(rows, seed=4, fraction=0.2))
    assert not validation_mask(rows, seed=3, fraction=0.0).any()


def test_shuffle_buffer_is_bounded_and_loses_nothing(table):
    buffer = ShuffleBuffer(capacity=40, n_features=6, rng=np.random.default_rng(0))
    out = []
    for start in range(0, 200, 64):
        out.append(buffer.push(table[start : start + 64]))
        assert buffer.size <= 40
        assert buffer.rows.shape == (40, 6)
    out.append(buffer.flush())
    shuffled = np.concatenate(out)
    assert buffer.size == 0
    assert not np.array_equal(shuffled, table)
    np.testing.assert_array_equal(np.sort(shuffled, axis=0), np.sort(table, axis=0))


def test_reservoir_sample_is_bounded(table):
    sample = ReservoirSample(capacity=30, n_features=6, rng=np.random.default_rng(0))
    for start in range(0, 200, 64):
        sample.add(table[start : start + 64])
    assert sample.rows.shape == (30, 6)
    assert sample.seen == 200
    # Every kept row is a row of the input, and later rows got in too.
    positions = [int(np.flatnonzero((table == row).all(axis=1))[0]) for row in sample.rows]
    assert len(set(positions)) == 30
    assert max(positions) >= 64


def test_rows_to_batches_regroups_blocks():
    blocks = [np.ones((n, 2), dtype=np.float32) for n in (70, 5, 126)]
    assert [len(b) for b in rows_to_batches(iter(blocks), 32, keep_last=True)] == [32] * 6 + [9]
    assert [len(b) for b in rows_to_batches(iter(blocks), 32, keep_last=False)] == [32] * 6
    # A final single row is dropped: batch normalisation cannot train on it.
    assert [len(b) for b in rows_to_batches(iter([np.ones((33, 2))]), 32, keep_last=True)] == [32]


def test_running_stats_match_numpy(table):
    stats = RunningStats(6)
    for start in range(0, 200, 37):
        stats.update(table[start : start + 37])
    np.testing.assert_allclose(stats.mean, table.astype(np.float64).mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats.std, table.astype(np.float64).std(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(stats.minimum, table.min(axis=0))
    np.testing.assert_array_equal(stats.maximum, table.max(axis=0))
    assert stats.count == 200

    halves = RunningStats(6).update(table[:150]).merge(RunningStats(6).update(table[150:]))
    np.testing.assert_allclose(halves.m2, stats.m2, rtol=1e-12)


@pytest.mark.parametrize("kind", ["standard", "minmax", "global-minmax", "none"])
def test_streamed_scaler_matches_array_scaler(table, kind):
    stats = RunningStats(6)
    for start in range(0, 200, 64):
        stats.update(table[start : start + 64])
    streamed, whole = stats.to_scaler(kind), Scaler(kind).fit(table)
    np.testing.assert_allclose(streamed.offset_, whole.offset_, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(streamed.scale_, whole.scale_, rtol=1e-6)


def test_stream_fit_matches_in_memory_scaler_and_scores(files, frame):
    params = small_params(validation_fraction=0.0)
    streamed = AutoEncoder(**params).fit(stream(files["parquet"], chunk_size=50))
    in_memory = AutoEncoder(**params).fit(frame)
    np.testing.assert_allclose(streamed.scaler_.offset_, in_memory.scaler_.offset_, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(streamed.scaler_.scale_, in_memory.scaler_.scale_, rtol=1e-6)
    assert list(streamed.feature_names_in_) == list(frame.columns)
    assert streamed.metrics_["n_train"] == 200

    # Scores written chunk by chunk equal the in-memory scores of the same model.
    out = files["parquet"].parent / "scores.csv"
    n_rows = write_stream_results(
        stream(files["csv"], chunk_size=64),
        lambda rows: pd.DataFrame({"reconstruction_error": streamed.reconstruction_error(rows)}),
        out,
    )
    assert n_rows == 200
    np.testing.assert_array_equal(pd.read_csv(out)["reconstruction_error"].to_numpy(dtype=np.float32),
                                  streamed.reconstruction_error(frame))


def test_stream_fit_trains_and_round_trips(files, frame, tmp_path):
    ae = AutoEncoder(**small_params(max_epochs=30)).fit(stream(files["parquet"], chunk_size=50, shuffle_buffer=64))
    assert ae.history_.train_loss[-1] < 0.5 * ae.history_.train_loss[0]
    assert ae.metrics_["n_train"] + ae.metrics_["n_val"] == 200
    assert 20 <= ae.metrics_["n_val"] <= 60
    assert ae.metrics_["val_mse"] < 1.0

    again = AutoEncoder(**small_params(max_epochs=30)).fit(stream(files["parquet"], chunk_size=50, shuffle_buffer=64))
    np.testing.assert_array_equal(ae.transform(frame), again.transform(frame))
    ae.save(tmp_path / "model")
    np.testing.assert_array_equal(load(tmp_path / "model").transform(frame), ae.transform(frame))


def test_stream_batches_respect_batch_size(files, table):
    scaler = Scaler("none").fit(table)
    import torch

    source = StreamBatches(
        stream(files["npy"], chunk_size=30, shuffle_buffer=16), scaler, seed=0, validation_fraction=0.25,
        batch_size=32, device=torch.device("cpu"),
    )
    batches = [x for x, weight in source.epoch_batches(1)]
    assert all(len(x) == 32 for x in batches[:-1])
    n_train = int((~validation_mask(np.arange(200), 0, 0.25)).sum())
    assert sum(len(x) for x in batches) == n_train


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npy"])
def test_chunked_writer_matches_write_table(tmp_path, suffix):
    frame = pd.DataFrame({"z0": np.linspace(0, 1, 25, dtype=np.float32), "z1": np.arange(25, dtype=np.float32)})
    write_table(frame, tmp_path / f"whole{suffix}")
    with ChunkedTableWriter(tmp_path / f"chunked{suffix}") as writer:
        for start in range(0, 25, 10):
            writer.write(frame.iloc[start : start + 10])
    assert writer.n_rows == 25
    if suffix == ".npy":
        np.testing.assert_array_equal(np.load(tmp_path / "chunked.npy"), np.load(tmp_path / "whole.npy"))
    else:
        assert (tmp_path / f"chunked{suffix}").read_bytes() == (tmp_path / f"whole{suffix}").read_bytes() or \
            pd.read_parquet(tmp_path / f"chunked{suffix}").equals(pd.read_parquet(tmp_path / f"whole{suffix}"))


def test_chunked_writer_leaves_no_partial_file(tmp_path):
    with pytest.raises(RuntimeError):
        with ChunkedTableWriter(tmp_path / "out.csv") as writer:
            writer.write(pd.DataFrame({"a": [1.0]}))
            raise RuntimeError("failed mid-way")
    assert list(tmp_path.iterdir()) == []


def test_cli_streams_train_and_score(files, tmp_path, capsys):
    main(["train", str(files["parquet"]), "--stream", "--chunk-size", "50", "--latent-dim", "2",
          "--hidden-dims", "16", "--epochs", "5", "--seed", "0", "--out", str(tmp_path / "m")])
    assert "streamed in chunks of 50, 200 rows x 6 columns" in capsys.readouterr().out
    main(["score", str(tmp_path / "m"), str(files["csv"]), "--stream", "--chunk-size", "64",
          "--out", str(tmp_path / "streamed.csv")])
    main(["score", str(tmp_path / "m"), str(files["csv"]), "--out", str(tmp_path / "whole.csv")])
    assert (tmp_path / "streamed.csv").read_text() == (tmp_path / "whole.csv").read_text()

    main(["encode", str(tmp_path / "m"), str(files["parquet"]), "--stream", "--out", str(tmp_path / "codes.npy")])
    assert np.load(tmp_path / "codes.npy").shape == (200, 2)


def test_cli_stream_errors(files, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--stream"])
    assert exit_info.value.code == 2
    assert "aekit: error: --stream needs a DATA file" in capsys.readouterr().err

    (tmp_path / "data.json").write_text("{}")
    with pytest.raises(SystemExit):
        main(["train", str(tmp_path / "data.json"), "--stream"])
    assert "aekit: error: cannot stream" in capsys.readouterr().err


def test_streamed_fit_records_timeline_and_reference_rows(tmp_path):
    import aekit
    from aekit.data import stream

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(600, 5)).astype(np.float32), columns=list("abcde"))
    frame.to_parquet(tmp_path / "rows.parquet", row_group_size=100)
    model = aekit.AutoEncoder(2, hidden_dims=(8,), max_epochs=3, timeline=4, random_state=0)
    model.fit(stream(tmp_path / "rows.parquet", chunk_size=100))
    assert model.timeline_["inputs"].shape == (4, 5)
    assert model.timeline_["epochs"].tolist() == [1, 2, 3]
    assert model.reference_rows_.shape[1] == 5
    np.testing.assert_allclose(model.data_min_, frame.to_numpy().min(axis=0), rtol=1e-5)
    assert model.n_samples_fit_ == 600
