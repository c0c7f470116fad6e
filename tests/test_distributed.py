"""Two processes under torchrun (gloo, CPU) against one process with the same global batch."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from safetensors.torch import load_file

from aekit.cli.main import main


@pytest.fixture
def csv_file(tmp_path, table):
    path = tmp_path / "data.csv"
    pd.DataFrame(table, columns=[f"f{j}" for j in range(6)]).to_csv(path, index=False)
    return path


def test_torchrun_matches_one_process(csv_file, tmp_path, capsys):
    # Batch normalisation is off: on CPU ranks it would use per-rank batch statistics,
    # which differ from the statistics of the global batch on one process.
    options = ["--latent-dim", "2", "--hidden-dims", "16,8", "--no-batch-norm", "--epochs", "4",
               "--batch-size", "30", "--seed", "0"]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "aekit", "train", str(csv_file), *options, "--out", str(tmp_path / "ddp")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    # Only rank 0 writes and reports.
    assert done.stdout.count("model saved to") == 1
    written = sorted(p.name for p in (tmp_path / "ddp").iterdir())
    assert written == ["README.md", "config.json", "metrics.json", "model.safetensors", "report"]

    main(["train", str(csv_file), *options, "--out", str(tmp_path / "single")])
    distributed, single = load_file(tmp_path / "ddp" / "model.safetensors"), load_file(tmp_path / "single" / "model.safetensors")
    assert distributed.keys() == single.keys()
    # Extra arrays (the report's timeline) come from each process's own validation rows.
    for name in (key for key in single if not key.startswith("extra/")):
        np.testing.assert_allclose(distributed[name].numpy(), single[name].numpy(), rtol=1e-4, atol=1e-6, err_msg=name)

    metrics = [json.loads((tmp_path / run / "metrics.json").read_text()) for run in ("ddp", "single")]
    assert metrics[0]["val_mse"] == pytest.approx(metrics[1]["val_mse"], rel=1e-4)
    assert metrics[0]["epochs"] == metrics[1]["epochs"] == 4
