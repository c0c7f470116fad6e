"""The CLI on a CSV table with an id, a categorical column, '?' for missing and a label."""

import json

import numpy as np
import pandas as pd
import pytest

import aekit
from test_cli import run  # noqa: F401  (shared fixture)

SMALL = ("--hidden-dims", "16", "--epochs", 10, "--batch-size", 32, "--seed", 0, "--no-report")
TABLE_OPTIONS = ("--drop", "id", "--label", "class", "--na-values", "?")


@pytest.fixture
def mixed_csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    color = rng.choice(["red", "green", "blue"], n)
    a = rng.normal(size=n) + np.where(color == "red", 3.0, 0.0)
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "a": a.round(4),
            "color": color,
            "b": (2 * a).round(4),
            "code": rng.integers(0, 3, n),
            "class": rng.choice(["normal", "attack"], n),
        }
    ).astype(object)
    frame.loc[::10, "a"] = "?"
    frame.loc[::13, "color"] = "?"
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return path


def test_train_rejects_missing_without_impute(run, mixed_csv, tmp_path):
    code, _, err = run("train", mixed_csv, *TABLE_OPTIONS, *SMALL, "--out", tmp_path / "m")
    assert code == 1
    assert err.startswith("aekit: error: X has missing values (NaN) in columns 'a' (20), 'color' (16)")
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_train_and_impute(run, mixed_csv, tmp_path):
    model_dir = tmp_path / "model"
    code, stdout, err = run(
        "train", mixed_csv, *TABLE_OPTIONS, "--categorical", "code", "--impute", "model", *SMALL, "--out", model_dir
    )
    assert code == 0, err
    assert "model saved to" in stdout
    model = aekit.load(model_dir)
    kinds = {column.name: column.kind for column in model.schema_.columns}
    assert kinds == {"a": "numeric", "color": "categorical", "b": "numeric", "code": "categorical"}

    out = tmp_path / "filled.csv"
    code, stdout, err = run("impute", model_dir, mixed_csv, *TABLE_OPTIONS, "--out", out)
    assert code == 0, err
    assert "36 missing cells filled" in stdout
    filled = pd.read_csv(out)
    assert list(filled.columns) == ["class", "a", "color", "b", "code"]
    assert filled.notna().all().all()
    assert set(filled["color"]) <= {"red", "green", "blue"}
    original = pd.read_csv(mixed_csv)
    assert list(filled["class"]) == list(original["class"])
    assert list(filled["b"]) == list(original["b"])

    clean = tmp_path / "clean.csv"
    pd.read_csv(mixed_csv, na_values="?").drop(columns=["id", "class"]).to_csv(clean, index=False)
    code, _, err = run("reconstruct", model_dir, clean, "--out", tmp_path / "recon.csv")
    assert code == 0, err
    recon = pd.read_csv(tmp_path / "recon.csv")
    assert list(recon.columns) == ["a", "color", "b", "code"]
    assert set(recon["color"]) <= {"red", "green", "blue"}


def test_impute_needs_impute_model(run, mixed_csv, tmp_path):
    clean = tmp_path / "clean.csv"
    pd.read_csv(mixed_csv, na_values="?").dropna().to_csv(clean, index=False)
    model_dir = tmp_path / "model"
    code, _, err = run("train", clean, *TABLE_OPTIONS, *SMALL, "--out", model_dir)
    assert code == 0, err
    code, _, err = run("impute", model_dir, clean, *TABLE_OPTIONS, "--out", tmp_path / "f.csv")
    assert code == 1
    assert "was trained without --impute" in err


def test_detect_carries_label(run, mixed_csv, tmp_path):
    model_dir = tmp_path / "detector"
    code, _, err = run("train", mixed_csv, "--detector", *TABLE_OPTIONS, "--impute", "model", *SMALL, "--out", model_dir)
    assert code == 0, err
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["detector"]["n_flagged"] == 20

    out = tmp_path / "flagged.csv"
    code, stdout, err = run("detect", model_dir, mixed_csv, *TABLE_OPTIONS, "--out", out, "--top-features", 1)
    assert code == 0, err
    frame = pd.read_csv(out)
    assert list(frame.columns) == [
        "class", "score", "label", "feature_1", "error_share_1", "actual_1", "expected_1", "probability_1"
    ]
    assert list(frame["class"]) == list(pd.read_csv(mixed_csv)["class"])
    assert set(frame["feature_1"]) <= {"a", "color", "b", "code"}


def test_detect_lists_extra_columns(run, mixed_csv, tmp_path):
    model_dir = tmp_path / "detector"
    code, _, err = run("train", mixed_csv, "--detector", *TABLE_OPTIONS, "--impute", "model", *SMALL, "--out", model_dir)
    assert code == 0, err
    code, _, err = run("detect", model_dir, mixed_csv, "--na-values", "?", "--out", tmp_path / "s.csv")
    assert code == 1
    assert "unexpected ['id', 'class']" in err


def test_drop_unknown_column(run, mixed_csv, tmp_path):
    code, _, err = run("train", mixed_csv, "--drop", "nope", *SMALL, "--out", tmp_path / "m")
    assert code == 1
    assert "column(s) 'nope' not found in the table" in err


def test_detect_and_impute_reuse_the_training_table_options(run, mixed_csv, tmp_path):
    model_dir = tmp_path / "model"
    code, _, err = run("train", mixed_csv, *TABLE_OPTIONS, "--impute", "model", "--detector", *SMALL, "--out", model_dir)
    assert code == 0, err
    assert json.loads((model_dir / "table.json").read_text()) == {"drop": ["id"], "label": "class", "na_values": ["?"]}

    # No table options: those of training apply, so 'id' is dropped, 'class' carried and '?' read as missing.
    out = tmp_path / "scores.csv"
    code, _, err = run("detect", model_dir, mixed_csv, "--out", out)
    assert code == 0, err
    scores = pd.read_csv(out)
    assert list(scores.columns[:3]) == ["class", "score", "label"]
    assert len(scores) == 200
    assert np.isfinite(scores["score"]).all()

    # A new table without the label column scores too, with no label in the output.
    unlabelled = tmp_path / "unlabelled.csv"
    pd.read_csv(mixed_csv).drop(columns=["class"]).to_csv(unlabelled, index=False)
    code, _, err = run("detect", model_dir, unlabelled, "--out", tmp_path / "new.csv")
    assert code == 0, err
    assert list(pd.read_csv(tmp_path / "new.csv").columns[:2]) == ["score", "label"]

    # Options given on the command line replace the saved ones: without --drop id, 'id' is an unknown column.
    code, _, err = run("detect", model_dir, mixed_csv, "--label", "class", "--na-values", "?", "--out", out)
    assert code == 1
    assert "unexpected ['id']" in err


def test_damaged_table_options_file_is_one_line_error(run, mixed_csv, tmp_path):
    model_dir = tmp_path / "model"
    code, _, err = run("train", mixed_csv, *TABLE_OPTIONS, "--impute", "mean", *SMALL, "--out", model_dir)
    assert code == 0, err
    (model_dir / "table.json").write_text("{not json", encoding="utf-8")
    code, _, err = run("impute", model_dir, mixed_csv, "--out", tmp_path / "filled.csv")
    assert code == 1
    assert err.startswith("aekit: error: ")
    assert "is not a table options file" in err
    assert len(err.strip().splitlines()) == 1
