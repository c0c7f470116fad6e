"""Scoring speed of an exported ONNX graph in ONNX Runtime versus aekit's own scoring.

Both score the same rows on the same number of CPU threads; the rate is the best of
several interleaved passes. `benchmarks/throughput.py` calls :func:`scoring_section`
and puts its table on the throughput page; run this file alone to print the table.
Needs ``pip install 'aekit[onnx]'`` and the real data in ../shared/data (MNIST and
ADBench cardio).

Usage: python benchmarks/onnx_scoring.py [--threads N] [--repeats N] [--quick] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from aekit import AutoEncoder
from aekit.data import read_data

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def best_rates(functions: dict[str, Callable[[], object]], n_rows: int, repeats: int, clock) -> dict[str, float]:
    """Rows per second of each function, best of ``repeats`` passes taken in turns, so that
    a busy spell on a shared machine slows every contender alike."""
    for function in functions.values():
        function()  # warm-up: first-call allocations and graph optimisation
    best = dict.fromkeys(functions, 0.0)
    for _ in range(repeats):
        for name, function in functions.items():
            started = clock()
            function()
            elapsed = max(clock() - started, 1e-9)
            best[name] = max(best[name], n_rows / elapsed)
    return best


def measure(name: str, X: np.ndarray, model: AutoEncoder, threads: int, repeats: int, clock) -> dict:
    import onnxruntime

    rows = np.ascontiguousarray(X, dtype=np.float32)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        model.export_onnx(path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        rates = best_rates(
            {
                "onnx": lambda: session.run(["reconstruction_error"], {"x": rows}),
                "aekit": lambda: model.reconstruction_error(rows),
            },
            len(rows), repeats, clock,
        )
    return {"name": name, "rows": len(rows), **rates}


def scoring_section(data: Path, threads: int, repeats: int, quick: bool, clock_name: str) -> list[str]:
    """Markdown lines of the ONNX scoring table, or one line saying why it was not measured."""
    try:
        import onnxruntime
    except ImportError:
        return ["ONNX scoring was not measured: onnxruntime is not installed (`pip install 'aekit[onnx]'`)."]

    clock = time.process_time if clock_name == "cpu" else time.perf_counter
    mnist = read_data(data / "mnist" / "t10k-images-idx3-ubyte.gz").X.astype(np.float32)
    with np.load(data / "adbench" / "6_cardio.npz", allow_pickle=False) as archive:
        cardio = archive["X"].astype(np.float32)
    if quick:
        mnist, cardio = mnist[:1000], cardio[:500]

    # Scoring speed does not depend on how well the weights are trained, so one epoch will do.
    cases = [
        ("MNIST, 784-512-256-30 dense", mnist, AutoEncoder(30, max_epochs=1, random_state=0).fit(mnist)),
        ("cardio, 21 features, default network", cardio, AutoEncoder(max_epochs=1, random_state=0).fit(cardio)),
    ]
    results = [measure(name, X, model, threads, repeats, clock) for name, X, model in cases]

    lines = [
        "Rows per second of the per-row reconstruction error (higher is better): the exported graph in",
        f"ONNX Runtime {onnxruntime.__version__} (its `reconstruction_error` output) against",
        f"`AutoEncoder.reconstruction_error`, both on {threads} CPU thread(s), best of {repeats} interleaved",
        "passes over the same rows.",
        "",
        "| model | rows | ONNX Runtime rows/s | aekit rows/s | ONNX / aekit |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['rows']:,} | {r['onnx']:,.0f} | {r['aekit']:,.0f} | {r['onnx'] / r['aekit']:.2f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="score fewer rows, to check the script runs")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 1 if args.quick else args.repeats
    print("\n".join(scoring_section(args.data, args.threads, repeats, args.quick, args.clock)))


if __name__ == "__main__":
    main()
