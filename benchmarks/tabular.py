"""Mixed-type tables: anomaly detection on NSL-KDD and imputation on Adult.

NSL-KDD (``nsl-kdd/KDDTrain+_20Percent.txt``, 41 features of which 3 categorical): each
detector trains on a seeded 80% of the ``normal`` rows and scores the other 20% of the
normal rows and every attack row. ROC AUC and average precision are measured with
attacks as positives. Detectors: aekit's AnomalyDetector on the table as it is
(categorical columns embedded in the model), the same detector on a table one-hot
encoded by hand, and PyOD's AutoEncoder and IForest on that one-hot table, each with
its library defaults. The training rows are known to be normal, and aekit gets that
information through ``contamination=0``, which trains its network without dropout; PyOD's
AutoEncoder runs a second time with ``dropout_rate=0`` to match (PyOD's contamination
must be above 0 and only sets its threshold, not its scores).

Adult (``adult/adult.csv``, 6 numeric and 8 categorical columns, ``?`` for missing):
a seeded 10% of the present cells is hidden, and each imputer fills the hidden and the
originally missing cells. Categorical cells are rated by accuracy and numeric cells by
the RMSE in units of each column's standard deviation. Imputers: aekit's AutoEncoder
with ``impute="model"``, the column mode and mean, and scikit-learn's
IterativeImputer on the one-hot table (a categorical cell takes the category whose
imputed indicator is largest).

Run from the repository root, with PyOD installed (``pip install -e '.[benchmarks]'``)::

    python benchmarks/tabular.py            # NSL-KDD x 3 seeds, Adult x 1; writes docs/benchmarks/tabular.md
    python benchmarks/tabular.py --quick    # 1 seed and a 5,000-row Adult sample: a smoke run
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

import aekit

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_PAGE = REPO / "docs" / "benchmarks" / "tabular.md"

NSL_KDD_COLUMNS = [
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land", "wrong_fragment",
    "urgent", "hot", "num_failed_logins", "logged_in", "num_compromised", "root_shell", "su_attempted",
    "num_root", "num_file_creations", "num_shells", "num_access_files", "num_outbound_cmds",
    "is_host_login", "is_guest_login", "count", "srv_count", "serror_rate", "srv_serror_rate",
    "rerror_rate", "srv_rerror_rate", "same_srv_rate", "diff_srv_rate", "srv_diff_host_rate",
    "dst_host_count", "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate", "class", "difficulty",
]
NSL_KDD_CATEGORICAL = ["protocol_type", "service", "flag"]
TRAIN_SHARE = 0.8
HIDDEN_SHARE = 0.1
ADULT_LABEL = "Salary"


# --- NSL-KDD ------------------------------------------------------------------------------


def load_nsl_kdd(data: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Return the 41 feature columns and a 0/1 attack label per row."""
    table = pd.read_csv(data / "nsl-kdd" / "KDDTrain+_20Percent.txt", header=None, names=NSL_KDD_COLUMNS)
    labels = (table["class"] != "normal").to_numpy(dtype=np.int64)
    return table.drop(columns=["class", "difficulty"]), labels


def split_normal(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, test) rows: 80% of the normal rows, then the rest and every attack."""
    normal = np.flatnonzero(labels == 0)
    order = np.random.default_rng(seed).permutation(normal)
    n_train = int(round(TRAIN_SHARE * len(normal)))
    train = np.sort(order[:n_train])
    test = np.sort(np.concatenate([order[n_train:], np.flatnonzero(labels == 1)]))
    return train, test


def one_hot(train: pd.DataFrame, test: pd.DataFrame, categorical: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """One-hot encode by hand with the training categories; unseen test values get all zeros."""
    encoded_train = pd.get_dummies(train, columns=categorical, dtype=np.float32)
    encoded_test = pd.get_dummies(test, columns=categorical, dtype=np.float32)
    encoded_test = encoded_test.reindex(columns=encoded_train.columns, fill_value=0.0)
    return encoded_train.to_numpy(dtype=np.float32), encoded_test.to_numpy(dtype=np.float32)


def nsl_kdd_detectors() -> dict[str, Callable[[int, pd.DataFrame, pd.DataFrame], np.ndarray]]:
    """Name -> ``run(seed, train, test)`` that fits on ``train`` and returns test scores."""
    from pyod.models.auto_encoder import AutoEncoder as PyODAutoEncoder
    from pyod.models.iforest import IForest

    def aekit_categorical(seed: int, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
        detector = aekit.AnomalyDetector(contamination=0, random_state=seed, device="cpu").fit(train)
        return detector.reconstruction_error(test)

    def aekit_one_hot(seed: int, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
        x_train, x_test = one_hot(train, test, NSL_KDD_CATEGORICAL)
        detector = aekit.AnomalyDetector(contamination=0, random_state=seed, device="cpu").fit(x_train)
        return detector.reconstruction_error(x_test)

    def pyod(build: Callable[[int], object]) -> Callable[[int, pd.DataFrame, pd.DataFrame], np.ndarray]:
        def run(seed: int, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
            x_train, x_test = one_hot(train, test, NSL_KDD_CATEGORICAL)
            torch.manual_seed(seed)
            detector = build(seed)
            detector.fit(x_train)
            return detector.decision_function(x_test)

        return run

    return {
        "aekit, categorical columns": aekit_categorical,
        "aekit, one-hot by hand": aekit_one_hot,
        "PyOD AutoEncoder, one-hot": pyod(lambda seed: PyODAutoEncoder(random_state=seed, verbose=0)),
        "PyOD AutoEncoder, one-hot, dropout_rate=0": pyod(
            lambda seed: PyODAutoEncoder(random_state=seed, verbose=0, dropout_rate=0.0)
        ),
        "PyOD IForest, one-hot": pyod(lambda seed: IForest(random_state=seed)),
    }


def run_nsl_kdd(data: Path, seeds: list[int]) -> dict[str, dict[str, list[float]]]:
    features, labels = load_nsl_kdd(data)
    results: dict[str, dict[str, list[float]]] = {}
    for seed in seeds:
        train_rows, test_rows = split_normal(labels, seed)
        train, test = features.iloc[train_rows], features.iloc[test_rows]
        y_test = labels[test_rows]
        for name, run in nsl_kdd_detectors().items():
            started = time.process_time()
            scores = np.asarray(run(seed, train, test), dtype=np.float64)
            seconds = time.process_time() - started
            record = results.setdefault(name, {"auc": [], "ap": [], "cpu_seconds": []})
            record["auc"].append(roc_auc_score(y_test, scores))
            record["ap"].append(average_precision_score(y_test, scores))
            record["cpu_seconds"].append(seconds)
            print(f"nsl-kdd seed {seed} {name}: AUC {record['auc'][-1]:.4f} AP {record['ap'][-1]:.4f} "
                  f"({seconds:.1f} CPU s)", flush=True)
    return results


# --- Adult --------------------------------------------------------------------------------


def load_adult(data: Path, n_rows: int | None, seed: int) -> pd.DataFrame:
    table = pd.read_csv(data / "adult" / "adult.csv", skipinitialspace=True, na_values="?")
    table = table.drop(columns=[ADULT_LABEL])
    if n_rows is not None and n_rows < len(table):
        table = table.sample(n=n_rows, random_state=seed).reset_index(drop=True)
    return table


def hide_cells(table: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Hide a seeded 10% of the present cells; return the table with gaps and the hidden mask."""
    present = table.notna().to_numpy()
    hidden = present & (np.random.default_rng(seed).random(table.shape) < HIDDEN_SHARE)
    with_gaps = table.copy()
    for j, column in enumerate(table.columns):
        with_gaps[column] = with_gaps[column].mask(hidden[:, j])
    return with_gaps, hidden


def impute_mean_mode(table: pd.DataFrame) -> pd.DataFrame:
    filled = table.copy()
    for column in table.columns:
        if pd.api.types.is_numeric_dtype(table[column]):
            filled[column] = table[column].fillna(table[column].mean())
        else:
            filled[column] = table[column].fillna(table[column].mode().iloc[0])
    return filled


def impute_iterative(table: pd.DataFrame, seed: int) -> pd.DataFrame:
    """scikit-learn's IterativeImputer (defaults) on the one-hot table with NaN indicators."""
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer

    categorical = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    dummies = pd.get_dummies(table, columns=categorical, dtype=np.float64)
    for column in categorical:
        block = [c for c in dummies.columns if c.startswith(f"{column}_")]
        dummies.loc[table[column].isna(), block] = np.nan
    imputed = IterativeImputer(random_state=seed).fit_transform(dummies.to_numpy())
    imputed = pd.DataFrame(imputed, columns=dummies.columns)

    filled = table.copy()
    for column in table.columns:
        if column in categorical:
            block = [c for c in dummies.columns if c.startswith(f"{column}_")]
            best = imputed[block].to_numpy().argmax(axis=1)
            labels = np.asarray([c[len(column) + 1 :] for c in block], dtype=object)
            filled[column] = table[column].where(table[column].notna(), labels[best])
        else:
            filled[column] = imputed[column].to_numpy()
    return filled


def impute_aekit(table: pd.DataFrame, seed: int, max_epochs: int) -> pd.DataFrame:
    model = aekit.AutoEncoder(impute="model", max_epochs=max_epochs, random_state=seed, device="cpu")
    return model.fit(table).impute_missing(table)


def imputation_scores(truth: pd.DataFrame, filled: pd.DataFrame, hidden: np.ndarray) -> dict[str, float]:
    """Accuracy on hidden categorical cells and RMSE (in column standard deviations) on numeric ones."""
    correct, n_categorical, squared, n_numeric = 0, 0, 0.0, 0
    for j, column in enumerate(truth.columns):
        rows = hidden[:, j]
        actual, guess = truth[column].to_numpy()[rows], filled[column].to_numpy()[rows]
        if pd.api.types.is_numeric_dtype(truth[column]):
            scale = float(truth[column].std())
            squared += float(np.sum(((guess.astype(np.float64) - actual.astype(np.float64)) / scale) ** 2))
            n_numeric += int(rows.sum())
        else:
            correct += int(np.sum(guess.astype(str) == actual.astype(str)))
            n_categorical += int(rows.sum())
    return {"accuracy": correct / n_categorical, "rmse": float(np.sqrt(squared / n_numeric))}


def run_adult(data: Path, seeds: list[int], n_rows: int | None, max_epochs: int) -> dict[str, dict[str, list[float]]]:
    imputers: dict[str, Callable[[pd.DataFrame, int], pd.DataFrame]] = {
        "aekit AutoEncoder, impute='model'": lambda table, seed: impute_aekit(table, seed, max_epochs),
        "mode / mean": lambda table, seed: impute_mean_mode(table),
        "scikit-learn IterativeImputer, one-hot": impute_iterative,
    }
    results: dict[str, dict[str, list[float]]] = {}
    for seed in seeds:
        truth = load_adult(data, n_rows, seed)
        with_gaps, hidden = hide_cells(truth, seed)
        for name, impute in imputers.items():
            started = time.process_time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                filled = impute(with_gaps, seed)
            seconds = time.process_time() - started
            scores = imputation_scores(truth, filled, hidden)
            record = results.setdefault(name, {"accuracy": [], "rmse": [], "cpu_seconds": []})
            record["accuracy"].append(scores["accuracy"])
            record["rmse"].append(scores["rmse"])
            record["cpu_seconds"].append(seconds)
            print(f"adult seed {seed} {name}: accuracy {scores['accuracy']:.4f} RMSE {scores['rmse']:.4f} "
                  f"({seconds:.1f} CPU s)", flush=True)
    return results


# --- page ---------------------------------------------------------------------------------


def mean(values: list[float]) -> float:
    return float(np.mean(values))


def write_page(path: Path, command: str, seeds: list[int], adult_seeds: list[int], nsl: dict, adult: dict,
               n_rows: int | None, max_epochs: int) -> None:
    import pyod
    import sklearn

    lines = [
        "# Mixed-type tables: NSL-KDD anomaly detection and Adult imputation",
        "",
        "Written by `benchmarks/tabular.py`; do not edit by hand.",
        "",
        f"- Command: `{command}`",
        f"- Run on {datetime.date.today().isoformat()}; machine: {platform.platform()}, {os.cpu_count()} "
        f"logical CPUs, torch threads: {torch.get_num_threads()}.",
        f"- Versions: aekit {aekit.__version__}, PyOD {pyod.__version__}, scikit-learn {sklearn.__version__}, "
        f"torch {torch.__version__}, pandas {pd.__version__}, Python {platform.python_version()}.",
        f"- Seeds: {', '.join(str(s) for s in seeds)} for NSL-KDD, {', '.join(str(s) for s in adult_seeds)} "
        "for Adult; values are means over the seeds. CPU seconds are process time for fitting and "
        "scoring (or imputing), summed over threads.",
        "",
        "## NSL-KDD: anomaly detection",
        "",
        "`KDDTrain+_20Percent.txt` (25,192 connections, 41 features, 3 of them categorical). Each "
        "detector trains on a seeded 80% of the normal rows and scores the other 20% of the normal "
        "rows and all attack rows (attacks are the positives). aekit runs with the AnomalyDetector "
        "defaults (four networks, scores averaged) and `contamination=0`, which declares the training "
        "rows clean, so its networks train without dropout and for 1500 steps each. It runs once on "
        "the table as it is and once on a one-hot table made by hand with "
        "`pandas.get_dummies` (categories from the training rows). PyOD's detectors run with their "
        "defaults on the one-hot table, and PyOD's AutoEncoder once more without dropout to match "
        "(PyOD's `contamination` must be above 0 and sets only the threshold, not the scores).",
        "",
        "| detector | ROC AUC | average precision | CPU seconds |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, record in nsl.items():
        lines.append(
            f"| {name} | {mean(record['auc']):.4f} | {mean(record['ap']):.4f} | {mean(record['cpu_seconds']):.1f} |"
        )
    ours = mean(nsl["aekit, categorical columns"]["auc"])
    best_other = max(mean(r["auc"]) for n, r in nsl.items() if n != "aekit, categorical columns")
    lines += [
        "",
        f"Target: ROC AUC >= 0.95 and above every other row. aekit with categorical columns: "
        f"{ours:.4f} ({'met' if ours >= 0.95 and ours > best_other else 'not met'}; best other "
        f"{best_other:.4f}).",
        "",
        "## Adult: imputation",
        "",
        f"`adult.csv` without the `Salary` column ({'all 32,561 rows' if n_rows is None else f'a seeded sample of {n_rows:,} rows'}, "
        "6 numeric and 8 categorical columns, `?` read as missing). A seeded 10% of the present "
        "cells is hidden. Each imputer sees the table with those gaps and the original ones, and is "
        "rated on the hidden cells: accuracy for categorical cells, and RMSE in units of the column's "
        "standard deviation for numeric cells (lower is better). aekit is "
        f"`AutoEncoder(impute='model', max_epochs={max_epochs})` with its other defaults, fitted on "
        "the table with gaps, then `impute_missing` on the same table. IterativeImputer runs with "
        "its defaults on the one-hot table, where a categorical cell takes the category with the "
        "largest imputed indicator.",
        "",
        "| imputer | categorical accuracy | numeric RMSE (std units) | CPU seconds |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, record in adult.items():
        lines.append(
            f"| {name} | {mean(record['accuracy']):.4f} | {mean(record['rmse']):.4f} | "
            f"{mean(record['cpu_seconds']):.1f} |"
        )
    ours = adult["aekit AutoEncoder, impute='model'"]
    baseline = adult["mode / mean"]
    accuracy_met = mean(ours["accuracy"]) > mean(baseline["accuracy"])
    rmse_met = mean(ours["rmse"]) < mean(baseline["rmse"])
    lines += [
        "",
        f"Targets: categorical accuracy above the mode's ({'met' if accuracy_met else 'not met'}), "
        f"numeric RMSE below the mean's ({'met' if rmse_met else 'not met'}).",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with nsl-kdd/ and adult/")
    parser.add_argument("--out", type=Path, default=DEFAULT_PAGE, help="the Markdown page to write")
    parser.add_argument("--seeds", type=int, default=3, help="NSL-KDD: number of seeds (0, 1, ...)")
    parser.add_argument("--adult-seeds", type=int, default=1, help="Adult: number of seeds (0, 1, ...)")
    parser.add_argument("--adult-rows", type=int, default=None, help="sample this many Adult rows (default: all)")
    parser.add_argument("--adult-epochs", type=int, default=30, help="max_epochs of aekit's imputer")
    parser.add_argument("--quick", action="store_true", help="1 seed and 5,000 Adult rows")
    args = parser.parse_args()

    seeds = list(range(1 if args.quick else args.seeds))
    adult_seeds = list(range(1 if args.quick else args.adult_seeds))
    n_rows = 5000 if args.quick else args.adult_rows
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    command = "python " + " ".join(["benchmarks/tabular.py", *sys.argv[1:]])
    nsl = run_nsl_kdd(args.data, seeds)
    adult = run_adult(args.data, adult_seeds, n_rows, args.adult_epochs)
    write_page(args.out, command, seeds, adult_seeds, nsl, adult, n_rows, args.adult_epochs)


if __name__ == "__main__":
    main()
