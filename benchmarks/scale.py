"""Streaming training and scoring on data larger than it needs to be in memory.

Writes docs/benchmarks/scale.md. Generates Parquet files of 20 float columns (1M and
5M rows by default) in a temporary folder. For each file, a fresh process trains one
epoch of aekit's default network through the streaming path and scores every row
into a Parquet file chunk by chunk. Reports rows per second and the process's peak
resident memory. ADBench 10_cover and 11_donors, converted to Parquet, are the real
large sets on the same page (with the ROC AUC of the scores against their labels).

Usage: python benchmarks/scale.py [--quick] [--threads N] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "benchmarks" / "scale.md"
N_COLUMNS = 20
ROW_GROUP_ROWS = 250_000


def generate(path: Path, n_rows: int, seed: int = 0) -> None:
    """Write ``n_rows`` rows of 20 correlated columns (5 hidden factors plus noise), one
    row group at a time so that the whole table is never in memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(5, N_COLUMNS))
    names = [f"x{j}" for j in range(N_COLUMNS)]
    with pq.ParquetWriter(path, pa.schema([(name, pa.float32()) for name in names])) as writer:
        for start in range(0, n_rows, ROW_GROUP_ROWS):
            n = min(ROW_GROUP_ROWS, n_rows - start)
            values = (rng.normal(size=(n, 5)) @ mixing + 0.1 * rng.normal(size=(n, N_COLUMNS))).astype(np.float32)
            writer.write_table(pa.table({name: values[:, j] for j, name in enumerate(names)}))


def npz_to_parquet(source: Path, path: Path) -> np.ndarray:
    """Convert an ADBench archive to Parquet; return its labels (1 = anomaly)."""
    import pandas as pd

    with np.load(source, allow_pickle=False) as archive:
        X, y = archive["X"].astype(np.float32), archive["y"]
    pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])]).to_parquet(path, row_group_size=ROW_GROUP_ROWS)
    return y


def child(path: Path, scores: Path, threads: int | None) -> None:
    """Train one streamed epoch on ``path`` and score it; print a JSON line of measurements."""
    import aekit
    from aekit.data import stream, write_stream_results

    baseline_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    estimator = aekit.AutoEncoder(max_epochs=1, random_state=0, n_threads=threads).fit(stream(path))
    train_seconds = time.perf_counter() - started

    import pandas as pd

    started = time.perf_counter()
    n_rows = write_stream_results(
        stream(path, columns=list(estimator.feature_names_in_)),
        lambda rows: pd.DataFrame({"reconstruction_error": estimator.reconstruction_error(rows)}),
        scores,
    )
    score_seconds = time.perf_counter() - started
    print(json.dumps({
        "rows": n_rows,
        "train_seconds": train_seconds,
        "epoch_seconds": estimator.history_.epoch_seconds[0],
        "score_seconds": score_seconds,
        "import_rss_mb": baseline_rss,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "val_mse": estimator.metrics_["val_mse"],
        "pca_val_mse": estimator.metrics_["pca_val_mse"],
    }))


def measure(path: Path, scores: Path, threads: int | None) -> dict:
    command = [sys.executable, __file__, "--child", str(path), str(scores)]
    if threads:
        command += ["--threads", str(threads)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small files: a smoke run, not a measurement")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: PyTorch's)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="folder of the data sets")
    parser.add_argument("--out", type=Path, default=PAGE, help="page to write")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.threads)
        return

    sizes = (100_000, 500_000) if args.quick else (1_000_000, 5_000_000)
    synthetic, real = [], []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for n_rows in sizes:
            path = folder / f"synthetic_{n_rows}.parquet"
            generate(path, n_rows)
            result = measure(path, folder / "scores.parquet", args.threads)
            result["file_mb"] = path.stat().st_size / 2**20
            synthetic.append(result)
            print(f"{n_rows:,} rows: {format_result(result)}", flush=True)
            path.unlink()

        from sklearn.metrics import roc_auc_score
        import pandas as pd

        for name in ("10_cover", "11_donors"):
            source = args.data / "adbench" / f"{name}.npz"
            if not source.exists():
                print(f"{name}: {source} not found, skipped")
                continue
            path = folder / f"{name}.parquet"
            labels = npz_to_parquet(source, path)
            result = measure(path, folder / "scores.parquet", args.threads)
            scores = pd.read_parquet(folder / "scores.parquet")["reconstruction_error"].to_numpy()
            result["roc_auc"] = roc_auc_score(labels, scores)
            result["name"] = name
            real.append(result)
            print(f"{name}: {format_result(result)}, ROC AUC {result['roc_auc']:.3f}", flush=True)
    write_page(args, synthetic, real)


def format_result(result: dict) -> str:
    return (
        f"train {result['rows'] / result['train_seconds']:,.0f} rows/s, score "
        f"{result['rows'] / result['score_seconds']:,.0f} rows/s, peak RSS {result['peak_rss_mb']:,.0f} MB"
    )


def write_page(args, synthetic: list[dict], real: list[dict]) -> None:
    import torch

    lines = [
        "# Streaming scale",
        "",
        "Written by `benchmarks/scale.py`" + (" with `--quick` (a smoke run, not a measurement)" if args.quick else "")
        + f"; do not edit by hand. Machine: {platform.processor() or platform.machine()}, "
        f"{args.threads or torch.get_num_threads()} torch threads, PyTorch {torch.__version__}.",
        "",
        "Each run is a fresh process that trains aekit's default network for one epoch on a Parquet file through",
        "`aekit.data.stream` (chunks of 65,536 rows, a 65,536-row shuffle buffer, samples of 100,000 rows for",
        "validation and metrics) and then scores every row into a Parquet file chunk by chunk. Training time",
        "includes the one-pass scaler fit and the metrics. Peak RSS is the process's maximum resident memory",
        "(`ru_maxrss`), including PyTorch itself (the \"after imports\" column).",
        "",
        f"Synthetic data: {N_COLUMNS} float32 columns driven by 5 hidden factors, row groups of {ROW_GROUP_ROWS:,} rows.",
        "",
        "| rows | file MB | train rows/s | train s per 1M rows | epoch s per 1M rows | score rows/s "
        "| RSS after imports MB | peak RSS MB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in synthetic:
        lines.append(
            f"| {r['rows']:,} | {r['file_mb']:,.0f} | {r['rows'] / r['train_seconds']:,.0f} | "
            f"{r['train_seconds'] / r['rows'] * 1e6:.1f} | {r['epoch_seconds'] / r['rows'] * 1e6:.1f} | "
            f"{r['rows'] / r['score_seconds']:,.0f} | "
            f"{r['import_rss_mb']:,.0f} | {r['peak_rss_mb']:,.0f} |"
        )
    if len(synthetic) >= 2:
        small, large = synthetic[0], synthetic[-1]
        ratio = (large["train_seconds"] / large["rows"]) / (small["train_seconds"] / small["rows"])
        epoch_ratio = (large["epoch_seconds"] / large["rows"]) / (small["epoch_seconds"] / small["rows"])
        lines += [
            "",
            f"Per row, training at {large['rows']:,} rows takes {ratio:.2f}x the time at {small['rows']:,} rows, "
            f"and the training epoch alone {epoch_ratio:.2f}x (1.00 = flat; the rest of training is fixed costs",
            "such as the metrics and the PCA baseline on the samples). Peak RSS changes by "
            f"{large['peak_rss_mb'] - small['peak_rss_mb']:+,.0f} MB.",
        ]
    lines += [
        "",
        "## Real large sets (ADBench)",
        "",
        "| set | rows | train rows/s | score rows/s | peak RSS MB | val MSE | PCA val MSE | ROC AUC |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in real:
        lines.append(
            f"| {r['name']} | {r['rows']:,} | {r['rows'] / r['train_seconds']:,.0f} | {r['rows'] / r['score_seconds']:,.0f} | "
            f"{r['peak_rss_mb']:,.0f} | {r['val_mse']:.4f} | {r['pca_val_mse']:.4f} | {r['roc_auc']:.3f} |"
        )
    lines += ["", "The ROC AUC is of one epoch's reconstruction error against the anomaly labels, for orientation only."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
