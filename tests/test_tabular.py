"""Tables with categorical columns and missing values: the column schema, the tabular
model, imputation, explanations and model files."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import aekit
from aekit.data.schema import CATEGORICAL, NUMERIC, OTHER_LABEL, TableSchema
from aekit.estimators._tabular import cell_details
from aekit.estimators.anomaly import _combine_expected
from aekit.exceptions import ConfigError, DataError, ExportError
from aekit.models.tabular import TabularAutoencoder

FAST = {"hidden_dims": (16,), "max_epochs": 30, "batch_size": 32, "random_state": 0, "device": "cpu"}


def mixed_table(n=240, seed=0):
    """A numeric column that depends on a colour, a copy of it with noise, counts and a flag."""
    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "green", "blue"], n)
    a = rng.normal(size=n) + np.where(color == "red", 4.0, 0.0)
    return pd.DataFrame(
        {
            "a": a,
            "color": color,
            "b": 2 * a + rng.normal(scale=0.1, size=n),
            "count": rng.integers(0, 5, n),
            "flag": rng.random(n) < 0.3,
        }
    )


# --- schema -------------------------------------------------------------------------------


def test_schema_infers_kinds_and_categories():
    schema = TableSchema.infer(mixed_table())
    kinds = {column.name: column.kind for column in schema.columns}
    assert kinds == {"a": "numeric", "color": "categorical", "b": "numeric", "count": "numeric", "flag": "categorical"}
    color = schema.columns[1]
    assert color.categories == ["blue", "green", "red"]
    assert color.n_slots == 4  # three categories and "unknown"
    assert schema.columns[4].categories == [False, True]


def test_schema_declared_categorical_column():
    schema = TableSchema.infer(mixed_table(), categorical_columns=["count"])
    count = schema.columns[3]
    assert count.kind == "categorical"
    assert count.categories == [0, 1, 2, 3, 4]


def test_schema_declared_column_not_found():
    with pytest.raises(ConfigError, match=r"categorical_columns names columns that X does not have: \['nope'\]"):
        TableSchema.infer(mixed_table(), categorical_columns=["nope"])


def test_schema_caps_categories_into_other():
    values = ["a"] * 50 + ["b"] * 30 + ["c"] * 5 + ["d"] * 3 + ["e"] * 2
    schema = TableSchema.infer(pd.DataFrame({"x": values}), max_categories=3)
    column = schema.columns[0]
    assert column.categories == ["a", "b"]
    assert column.has_other
    assert sorted(column.rare_values) == ["c", "d", "e"]

    encoded, unseen = schema.encode(schema.align(pd.DataFrame({"x": ["a", "d", "zzz"]})))
    assert encoded[:, 0].tolist() == [0.0, 2.0, 3.0]  # "d" -> other, "zzz" -> unknown
    assert unseen[:, 0].tolist() == [False, False, True]


def test_max_categories_invalid():
    with pytest.raises(ConfigError, match="max_categories must be an integer >= 2, got 1"):
        TableSchema.infer(mixed_table(), max_categories=1)


def test_schema_reorders_columns_by_name():
    table = mixed_table()
    schema = TableSchema.infer(table)
    shuffled = table[["flag", "b", "a", "count", "color"]]
    assert list(schema.align(shuffled).columns) == list(table.columns)


def test_schema_lists_missing_and_extra_columns():
    table = mixed_table()
    schema = TableSchema.infer(table)
    with pytest.raises(DataError) as caught:
        schema.align(table.drop(columns=["b"]).assign(extra=1))
    message = str(caught.value)
    assert "missing ['b']" in message
    assert "unexpected ['extra']" in message


def test_schema_rejects_changed_numeric_dtype():
    table = mixed_table()
    schema = TableSchema.infer(table)
    changed = table.assign(a=table["a"].astype(str))
    with pytest.raises(DataError, match=r"non-numeric values in numeric columns \['a' \(numeric float64 at fit"):
        schema.align(changed)


def test_schema_round_trips_through_dict():
    schema = TableSchema.infer(mixed_table(), categorical_columns=["count"], max_categories=3)
    again = TableSchema.from_dict(schema.to_dict())
    assert again == schema


# --- estimator ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted():
    table = mixed_table()
    return aekit.AutoEncoder(**FAST).fit(table), table


def test_fit_uses_tabular_model(fitted):
    model, _ = fitted
    assert isinstance(model.model_, TabularAutoencoder)
    assert model.schema_.cardinalities() == (0, 4, 0, 0, 3)
    assert list(model.feature_names_in_) == ["a", "color", "b", "count", "flag"]


def test_reconstruct_keeps_names_and_dtypes(fitted):
    model, table = fitted
    recon = model.reconstruct(table)
    assert list(recon.columns) == list(table.columns)
    assert recon["count"].dtype == np.int64
    assert recon["flag"].dtype == bool
    assert set(recon["color"]) <= {"red", "green", "blue"}
    # The colour is predictable from column a (red rows have a around 4).
    assert (recon["color"] == table["color"]).mean() > 0.6


def test_inverse_transform_returns_table(fitted):
    model, table = fitted
    decoded = model.inverse_transform(model.transform(table.head(4)))
    assert list(decoded.columns) == list(table.columns)
    assert len(decoded) == 4


def test_unseen_category_raises_row_error(fitted):
    model, table = fitted
    rows = table.head(5).copy()
    before = model.reconstruction_error(rows)
    rows.loc[0, "color"] = "purple"
    after = model.reconstruction_error(rows)
    assert after[0] > 1.5 * before[0]
    np.testing.assert_allclose(after[1:], before[1:], rtol=1e-5)


def test_missing_values_rejected_without_impute(fitted):
    model, table = fitted
    rows = table.head(3).copy()
    rows.loc[1, "a"] = np.nan
    with pytest.raises(DataError, match=r"missing values \(NaN\) in columns 'a' \(1\) at scoring; set impute="):
        model.reconstruction_error(rows)


def test_numeric_only_table_keeps_dense_model():
    table = mixed_table()[["a", "b"]]
    model = aekit.AutoEncoder(**FAST).fit(table)
    assert model.model_.name == "dense"
    assert not hasattr(model, "schema_")


def test_categorical_only_table():
    rng = np.random.default_rng(0)
    first = rng.choice(["x", "y"], 200)
    table = pd.DataFrame({"first": first, "second": np.where(first == "x", "p", "q"), "third": rng.choice(["u", "v"], 200)})
    model = aekit.AutoEncoder(**FAST).fit(table)
    recon = model.reconstruct(table)
    # "second" is a function of "first", so the model reconstructs it.
    assert (recon["second"] == table["second"]).mean() > 0.9
    assert model.reconstruction_error(table).shape == (200,)


def test_unsupported_piece_rejected():
    with pytest.raises(ConfigError, match=r"got noise='masking'"):
        aekit.AutoEncoder(noise="masking", **FAST).fit(mixed_table())


def test_impute_parameter_invalid():
    with pytest.raises(ConfigError, match=r"impute must be None, 'mean' or 'model'; got 'median'"):
        aekit.AutoEncoder(impute="median", **FAST).fit(mixed_table())


# --- missing values -----------------------------------------------------------------------


def with_gaps(table, share=0.1, seed=1):
    rng = np.random.default_rng(seed)
    gaps = table.copy()
    hidden = rng.random(table.shape) < share
    for j, column in enumerate(table.columns):
        gaps[column] = gaps[column].astype(object).mask(hidden[:, j]) if column in ("color", "flag") else gaps[column].mask(hidden[:, j])
    return gaps, hidden


def test_impute_model_fills_from_other_columns():
    table = mixed_table(n=400)
    gaps, hidden = with_gaps(table)
    model = aekit.AutoEncoder(impute="model", **{**FAST, "max_epochs": 60}).fit(gaps)
    filled = model.impute_missing(gaps)

    assert not filled.isna().any().any()
    present = ~hidden[:, 0]
    np.testing.assert_array_equal(filled["a"].to_numpy()[present], table["a"].to_numpy()[present])
    # Column b is 2 * a, so a hidden b is predicted far better than by its mean.
    rows = hidden[:, 2]
    model_error = np.abs(filled["b"].to_numpy()[rows] - table["b"].to_numpy()[rows]).mean()
    mean_error = np.abs(table["b"].mean() - table["b"].to_numpy()[rows]).mean()
    assert model_error < 0.5 * mean_error
    # Gaps made the integer column float in the training table, so it stays float.
    assert filled["count"].dtype == np.float64


def test_impute_mean_fills_means_and_modes():
    table = mixed_table()
    gaps, hidden = with_gaps(table)
    model = aekit.AutoEncoder(impute="mean", **FAST).fit(gaps)
    filled = model.impute_missing(gaps)
    rows = hidden[:, 0]
    train_mean = model.schema_.columns[0].mean
    np.testing.assert_allclose(filled["a"].to_numpy()[rows], train_mean, rtol=1e-5)
    mode = model.schema_.columns[1].slot_labels()[model.schema_.columns[1].mode]
    assert set(filled["color"].to_numpy()[hidden[:, 1]]) == {mode}


def test_impute_missing_needs_impute_setting(fitted):
    model, table = fitted
    with pytest.raises(ConfigError, match="impute_missing\\(\\) needs a model trained with impute='model'"):
        model.impute_missing(table)


def test_impute_mean_on_numeric_array():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    X[::10, 2] = np.nan
    model = aekit.AutoEncoder(impute="mean", **FAST).fit(X)
    filled = model.impute_missing(X)
    assert isinstance(filled, np.ndarray)
    assert np.isfinite(filled).all()
    assert np.isfinite(model.reconstruction_error(X)).all()


def test_all_missing_column():
    table = mixed_table().assign(empty=np.nan)
    model = aekit.AutoEncoder(impute="model", **FAST).fit(table)
    assert np.isfinite(model.reconstruction_error(table)).all()
    filled = model.impute_missing(table)
    assert filled["empty"].notna().all()


def test_all_missing_categorical_column():
    table = mixed_table().assign(empty=pd.Series([None] * 240, dtype=object))
    model = aekit.AutoEncoder(impute="model", categorical_columns=["empty"], **FAST).fit(table)
    assert model.schema_.columns[-1].categories == []
    assert np.isfinite(model.reconstruction_error(table)).all()


# --- anomaly detection --------------------------------------------------------------------


def test_detector_explains_columns_in_their_terms():
    table = mixed_table(n=300)
    detector = aekit.AnomalyDetector(aekit.AutoEncoder(**FAST), contamination=0.05).fit(table)
    odd = table.head(2).copy()
    odd.loc[0, "color"] = "purple"
    odd.loc[1, "b"] = 40.0
    explained = detector.explain(odd, top_k=2)
    assert list(explained.columns) == ["row", "rank", "feature", "actual", "expected", "probability", "error_share"]

    first = explained[(explained["row"] == 0) & (explained["rank"] == 1)].iloc[0]
    assert first["feature"] == "color"
    assert first["actual"] == "purple"
    assert first["expected"] in {"red", "green", "blue"}
    assert first["probability"] < 0.1

    second = explained[(explained["row"] == 1) & (explained["rank"] == 1)].iloc[0]
    assert second["feature"] == "b"
    assert second["actual"] == 40.0
    assert abs(second["expected"]) < 20
    assert np.isnan(second["probability"])
    assert detector.predict(odd)[1] == -1
    # The unseen category raises the row's score above its score with the real colour.
    assert detector.reconstruction_error(odd)[0] > 2 * detector.reconstruction_error(table.head(1))[0]
    # The probability is the mean of the four networks' probabilities.
    members = np.stack([cell_details(member, odd)[3] for member in detector.estimators_])
    assert first["probability"] == pytest.approx(members[:, 0, list(table.columns).index("color")].mean())


def test_networks_vote_on_expected_categories():
    schema = SimpleNamespace(columns=[
        SimpleNamespace(name="n", kind=NUMERIC, dtype="int64"),
        SimpleNamespace(name="c", kind=CATEGORICAL, dtype="object"),
    ])
    frames = [
        pd.DataFrame({"n": [1, 10], "c": ["a", "x"]}),
        pd.DataFrame({"n": [2, 20], "c": ["b", "y"]}),
        pd.DataFrame({"n": [4, 33], "c": ["b", "z"]}),
    ]
    combined = _combine_expected(frames, schema)
    # Numeric cells: the mean, rounded back to the column's integer dtype.
    assert combined["n"].tolist() == [2, 21]
    assert combined["n"].dtype == np.int64
    # Categorical cells: the majority, and the first network's category on a three-way tie.
    assert combined["c"].tolist() == ["b", "x"]


def test_detector_with_missing_values():
    table = mixed_table(n=300)
    gaps, _ = with_gaps(table)
    detector = aekit.AnomalyDetector(aekit.AutoEncoder(impute="model", **FAST)).fit(gaps)
    assert np.isfinite(detector.reconstruction_error(gaps)).all()
    assert not detector.impute_missing(gaps).isna().any().any()


# --- model files and export ---------------------------------------------------------------


def test_save_load_categorical_model(tmp_path, fitted):
    model, table = fitted
    model.save(tmp_path / "model")
    loaded = aekit.load(tmp_path / "model")
    assert loaded.schema_ == model.schema_
    np.testing.assert_array_equal(loaded.reconstruction_error(table), model.reconstruction_error(table))
    pd.testing.assert_frame_equal(loaded.reconstruct(table), model.reconstruct(table))


def test_save_load_detector_with_impute(tmp_path):
    table = mixed_table()
    gaps, _ = with_gaps(table)
    detector = aekit.AnomalyDetector(aekit.AutoEncoder(impute="model", **FAST)).fit(gaps)
    detector.save(tmp_path / "detector")
    loaded = aekit.load(tmp_path / "detector")
    np.testing.assert_array_equal(loaded.reconstruction_error(gaps), detector.reconstruction_error(gaps))
    pd.testing.assert_frame_equal(loaded.impute_missing(gaps), detector.impute_missing(gaps))


def test_onnx_export_rejected(tmp_path, fitted):
    model, _ = fitted
    with pytest.raises(ExportError, match="column schema"):
        model.export_onnx(str(tmp_path / "model.onnx"))


def test_other_label_in_reconstruction():
    values = ["a"] * 60 + ["b"] * 40 + [f"r{i}" for i in range(100)]
    table = pd.DataFrame({"x": values, "y": np.r_[np.zeros(100), np.ones(100)]})
    model = aekit.AutoEncoder(max_categories=3, **FAST).fit(table)
    recon = model.reconstruct(table)
    # Rows with y = 1 hold only rare values, grouped as "other".
    assert (recon["x"].to_numpy()[100:] == OTHER_LABEL).mean() > 0.8
