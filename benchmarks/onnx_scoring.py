"""Scoring speed of an exported ONNX graph in ONNX Runtime versus aekit's own scoring.

Both run on the same number of CPU threads and score the same rows; the script prints
the rows per second and writes docs/benchmarks/onnx.md. Needs pip install 'aekit[onnx]'
and the real data in ../shared/data (MNIST and ADBench cardio).

Usage: python benchmarks/onnx_scoring.py [--threads N] [--repeats N] [--quick]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from aekit import AutoEncoder
from aekit.data import read_data

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PAGE = ROOT / "docs" / "benchmarks" / "onnx.md"


def rows_per_second(function, n_rows: int, repeats: int) -> float:
    function()  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return n_rows * repeats / (time.perf_counter() - started)


def measure(name: str, X: np.ndarray, model: AutoEncoder, threads: int, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        model.export_onnx(path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        rows = np.ascontiguousarray(X, dtype=np.float32)
        onnx_speed = rows_per_second(lambda: session.run(["reconstruction_error"], {"x": rows}), len(rows), repeats)
    aekit_speed = rows_per_second(lambda: model.reconstruction_error(rows), len(rows), repeats)
    return {"name": name, "rows": len(rows), "onnx": onnx_speed, "aekit": aekit_speed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="score fewer rows once, to check the script runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 1 if args.quick else args.repeats

    mnist = read_data(DATA / "mnist" / "t10k-images-idx3-ubyte.gz").X.astype(np.float32)
    with np.load(DATA / "adbench" / "6_cardio.npz", allow_pickle=False) as archive:
        cardio = archive["X"].astype(np.float32)
    if args.quick:
        mnist, cardio = mnist[:1000], cardio[:500]

    # Scoring speed does not depend on how well the weights are trained, so one epoch will do.
    cases = [
        ("MNIST, 784-512-256-30 dense", mnist, AutoEncoder(30, max_epochs=1, random_state=0).fit(mnist)),
        ("cardio, 21 features, default network", cardio, AutoEncoder(max_epochs=1, random_state=0).fit(cardio)),
    ]
    results = [measure(name, X, model, args.threads, repeats) for name, X, model in cases]

    lines = [
        "# Scoring in ONNX Runtime versus aekit",
        "",
        "Rows per second for the per-row reconstruction error: the exported ONNX graph in ONNX Runtime",
        f"(`reconstruction_error` output) and `AutoEncoder.reconstruction_error`, both on {args.threads} CPU",
        f"threads, best of one warm-up then {repeats} timed passes over the same rows.",
        "",
        f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"onnxruntime {onnxruntime.__version__}. Written by `python benchmarks/onnx_scoring.py"
        f"{' --quick' if args.quick else ''}`.",
        "",
        "| model | rows | ONNX Runtime rows/s | aekit rows/s | ratio |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(f"| {r['name']} | {r['rows']:,} | {r['onnx']:,.0f} | {r['aekit']:,.0f} | {r['onnx'] / r['aekit']:.2f} |")
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
