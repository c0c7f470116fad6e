"""Writing result tables (codes, reconstructions, scores) to CSV, Parquet or .npy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..exceptions import DataError

OUTPUT_SUFFIXES = (".csv", ".parquet", ".pq", ".npy")


def check_output_path(path: str | Path) -> Path:
    """Raise ``DataError`` early if ``path`` has an extension aekit cannot write."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise DataError(
            f"output file '{path}' has the unsupported extension '{path.suffix}'; "
            "use .csv, .parquet or .npy."
        )
    return path


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` to ``path``; the extension picks CSV, Parquet or .npy (values only)."""
    path = check_output_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        np.save(path, frame.to_numpy(), allow_pickle=False)
    return path
