"""Anomaly detection on ADBench tables: aekit's AnomalyDetector against PyOD's detectors.

Protocol (unsupervised, as in the ADBench data folder's README): each detector is fitted
on all rows of a data set without labels, scores the same rows, and is rated by ROC AUC
and average precision against the labels, for several seeds. Every detector runs with
its library defaults, in the same process and with the same number of torch threads.

Run from the repository root, with PyOD installed (``pip install -e '.[benchmarks]'``)::

    python benchmarks/anomaly.py            # 12 data sets x 3 seeds, writes the page
    python benchmarks/anomaly.py --quick    # 2 small data sets, 1 seed: a smoke run

It prints one line per fit and writes ``docs/benchmarks/anomaly.md``.
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
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

import aekit

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "adbench"
DEFAULT_PAGE = REPO / "docs" / "benchmarks" / "anomaly.md"

# The small and medium ADBench sets; 10_cover and 11_donors are left to scale tests.
DATASETS = (
    "4_breastw", "6_cardio", "14_glass", "18_Ionosphere", "23_mammography", "24_mnist",
    "25_musk", "29_Pima", "31_satimage-2", "32_shuttle", "38_thyroid", "40_vowels",
)
QUICK_DATASETS = ("14_glass", "40_vowels")

AEKIT = "aekit AnomalyDetector"


def detectors() -> dict[str, Callable[[int], Callable[[np.ndarray], np.ndarray]]]:
    """Name -> factory: ``factory(seed)(X)`` fits on ``X`` and returns its training scores."""
    from pyod.models.auto_encoder import AutoEncoder
    from pyod.models.ecod import ECOD
    from pyod.models.iforest import IForest
    from pyod.models.pca import PCA
    from pyod.models.vae import VAE

    def aekit_detector(seed: int):
        return lambda X: aekit.AnomalyDetector(random_state=seed, device="cpu").fit(X).training_errors_

    def pyod(build):
        def factory(seed: int):
            return lambda X: build(seed).fit(X).decision_scores_
        return factory

    return {
        AEKIT: aekit_detector,
        "PyOD AutoEncoder": pyod(lambda seed: AutoEncoder(random_state=seed, verbose=0, device="cpu")),
        "PyOD VAE": pyod(lambda seed: VAE(random_state=seed, verbose=0, device="cpu")),
        "PyOD PCA": pyod(lambda seed: PCA(random_state=seed)),
        "PyOD IForest": pyod(lambda seed: IForest(random_state=seed)),
        "PyOD ECOD": pyod(lambda seed: ECOD()),
    }


def load(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(folder / f"{name}.npz", allow_pickle=False) as archive:
        return archive["X"].astype(np.float64), archive["y"].astype(int)


def finite_scores(scores: np.ndarray) -> tuple[np.ndarray, bool]:
    """Map infinite scores just past the finite ones, keeping the ranking; NaN ranks lowest.

    PyOD's PCA divides by near-zero eigenvalues on data with constant columns and
    returns ``inf`` for some rows; the metrics here depend only on the ranking.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if np.all(np.isfinite(scores)):
        return scores, False
    finite = scores[np.isfinite(scores)]
    low, high = (finite.min(), finite.max()) if len(finite) else (0.0, 0.0)
    spread = high - low + 1.0
    mapped = np.where(np.isposinf(scores), high + spread, scores)
    mapped = np.where(np.isneginf(mapped) | np.isnan(mapped), low - spread, mapped)
    return mapped, True


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    names = QUICK_DATASETS if args.quick else DATASETS
    seeds = range(1 if args.quick else args.seeds)
    factories = detectors()
    results: dict = {method: {} for method in factories}
    spread: dict = {method: {} for method in factories}  # standard deviation of ROC AUC over seeds
    adjusted: set[tuple[str, str]] = set()

    # One untimed fit each first, so imports and one-time set-up are not charged to a data set.
    warm_up = np.random.default_rng(0).normal(size=(64, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for factory in factories.values():
            factory(0)(warm_up)

    for name in names:
        X, y = load(args.data, name)
        for method, factory in factories.items():
            runs = []
            for seed in seeds:
                fit = factory(seed)
                started = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    scores = fit(X)
                seconds = time.perf_counter() - started
                scores, was_adjusted = finite_scores(scores)
                if was_adjusted:
                    adjusted.add((method, name))
                auc, ap = roc_auc_score(y, scores), average_precision_score(y, scores)
                runs.append((auc, ap, seconds))
                print(f"{name:16s} {method:22s} seed {seed}: ROC AUC {auc:.4f}  AP {ap:.4f}  fit {seconds:6.2f} s",
                      flush=True)
            results[method][name] = np.mean(runs, axis=0)
            spread[method][name] = float(np.std([auc for auc, _, _ in runs]))
    return {"results": results, "spread": spread, "datasets": names, "n_seeds": len(seeds), "adjusted": adjusted}


def markdown(outcome: dict, args: argparse.Namespace) -> str:
    import pyod

    results, names = outcome["results"], outcome["datasets"]
    methods = list(results)
    mean_auc = {m: np.mean([results[m][n][0] for n in names]) for m in methods}
    mean_ap = {m: np.mean([results[m][n][1] for n in names]) for m in methods}
    total_fit = {m: np.sum([results[m][n][2] for n in names]) for m in methods}
    mean_spread = {m: np.mean([outcome["spread"][m][n] for n in names]) for m in methods}

    def table(title: str, column: int, fmt: str, summary: dict, summary_name: str) -> list[str]:
        lines = [f"### {title}", "", "| data set | " + " | ".join(methods) + " |",
                 "| --- |" + " ---: |" * len(methods)]
        for n in names:
            best = max(results[m][n][column] for m in methods) if column < 2 else None
            cells = []
            for m in methods:
                value = format(results[m][n][column], fmt)
                cells.append(f"**{value}**" if best is not None and results[m][n][column] == best else value)
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
        lines.append(f"| **{summary_name}** | " + " | ".join(format(summary[m], fmt) for m in methods) + " |")
        return lines + [""]

    pyod_methods = [m for m in methods if m != AEKIT]
    ae_gap = mean_auc[AEKIT] - mean_auc["PyOD AutoEncoder"]
    best_peer = max(pyod_methods, key=lambda m: mean_auc[m])
    time_ratio = total_fit[AEKIT] / total_fit["PyOD AutoEncoder"]
    adjusted = ", ".join(f"{m} on {n}" for m, n in sorted(outcome["adjusted"])) or "none"

    lines = [
        "# Anomaly detection benchmark: aekit against PyOD",
        "",
        "Written by `benchmarks/anomaly.py`" + (" with `--quick`" if args.quick else "") + "; do not edit by hand.",
        "",
        "Protocol: each detector is fitted on all rows of an ADBench data set without labels and",
        "scores the same rows; ROC AUC and average precision (AP) are measured against the labels.",
        f"Values are means over {outcome['n_seeds']} seed(s). Every detector uses its library's",
        "defaults. Fit seconds include scoring the training rows, as both libraries do in `fit`.",
        "",
        "aekit's defaults train four dense autoencoders sized from the data, from different seeds,",
        "for about 500 optimizer steps each. A row's score is the mean of the four networks'",
        "errors, each feature's error divided by its median over the training rows. These defaults",
        "were chosen by their mean ROC AUC on the twelve tables of the full run, so those tables are not an",
        "independent test of them.",
        "",
        f"- Machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} logical CPUs; torch threads: {args.threads} for every detector.",
        f"- Versions: aekit {aekit.__version__}, PyOD {pyod.__version__}, torch {torch.__version__}, "
        f"Python {platform.python_version()}.",
        f"- Run on {datetime.date.today().isoformat()}.",
        f"- Scores made finite to rank them (infinite scores placed past the finite ones): {adjusted}.",
        "",
        "## Summary",
        "",
        f"- Mean ROC AUC: aekit {mean_auc[AEKIT]:.4f}; best PyOD method {best_peer} {mean_auc[best_peer]:.4f}; "
        f"PyOD AutoEncoder {mean_auc['PyOD AutoEncoder']:.4f} (aekit {ae_gap:+.4f}).",
        f"- Total fit time: aekit {total_fit[AEKIT]:.1f} s, PyOD AutoEncoder "
        f"{total_fit['PyOD AutoEncoder']:.1f} s (ratio {time_ratio:.2f}).",
        "- Seed-to-seed spread of ROC AUC (standard deviation over seeds, mean over data sets): "
        + ", ".join(f"{m} {mean_spread[m]:.4f}" for m in methods) + ".",
        "- Timing is only comparable within one run: other jobs on a shared machine slow",
        "  every detector, though not always equally.",
        "",
    ]
    lines += table("ROC AUC (best per data set in bold)", 0, ".4f", mean_auc, "mean")
    lines += table("Average precision (best per data set in bold)", 1, ".4f", mean_ap, "mean")
    lines += table("Fit seconds", 2, ".2f", total_fit, "total")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Folder of ADBench .npz files.")
    parser.add_argument("--seeds", type=int, default=3, help="Seeds per data set and detector.")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every detector.")
    parser.add_argument("--quick", action="store_true", help="Two small data sets and one seed.")
    parser.add_argument("--out", type=Path, default=DEFAULT_PAGE, help="Markdown page to write.")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        sys.exit(f"anomaly.py: error: ADBench folder '{args.data}' not found; pass --data.")

    outcome = run(args)
    page = markdown(outcome, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
