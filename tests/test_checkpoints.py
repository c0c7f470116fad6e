"""Crash-safe training: checkpoints hold the whole training state as safetensors + JSON,
and a resumed run ends with the weights of an uninterrupted one, bit for bit, on CPU."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import aekit
from aekit import AnomalyDetector, AutoEncoder, ConfigError, DataError, ModelFileError, VariationalAutoEncoder
from aekit.cli.main import main
from aekit.training import Callback
from aekit.training.checkpoints import (
    STATE_FILE,
    TENSORS_FILE,
    checkpoint_folders,
    join_tensors,
    latest_checkpoint,
    split_tensors,
)
from conftest import small_params
from torch_threads import one_torch_thread  # noqa: F401


class Crash(Exception):
    """Stands in for the process dying."""


class CrashMidEpoch(Callback):
    """Raise after ``batch`` batches of ``epoch``: the optimizer has stepped, the epoch is unfinished."""

    def __init__(self, epoch: int, batch: int = 2) -> None:
        self.epoch = epoch
        self.batch = batch
        self.current = 0

    def on_epoch_start(self, trainer, epoch):
        self.current = epoch

    def on_batch_end(self, trainer, batch, loss):
        if self.current == self.epoch and batch + 1 == self.batch:
            raise Crash


def assert_same_weights(a, b):
    first, second = a.model_.state_dict(), b.model_.state_dict()
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


def crash_then_resume(make, X, tmp_path, crash_epoch):
    folder = tmp_path / "checkpoints"
    with pytest.raises(Crash):
        make(checkpoint_dir=folder, callbacks=[CrashMidEpoch(crash_epoch)]).fit(X)
    assert latest_checkpoint(folder).name == f"epoch-{crash_epoch - 1:06d}"
    return make(checkpoint_dir=folder, resume=True).fit(X)


AUTOENCODERS = {
    # Dropout and input noise draw from torch's generator every step.
    "denoising": lambda **kw: AutoEncoder(**small_params(dropout=0.2, noise="gaussian", **kw)),
    # Early stopping stops this one at epoch 12, after the crash: its state must survive.
    "early-stopping": lambda **kw: AutoEncoder(**small_params(max_epochs=40, patience=2, learning_rate=0.05, **kw)),
    # Posterior samples, the KL warm-up and the Gaussian decoder's variance.
    "vae": lambda **kw: VariationalAutoEncoder(**small_params(kl_warmup_epochs=4, **kw)),
}


@pytest.mark.parametrize("name", AUTOENCODERS)
def test_resumed_run_equals_uninterrupted_run(table, tmp_path, name):
    make = AUTOENCODERS[name]
    uninterrupted = make().fit(table)
    resumed = crash_then_resume(make, table, tmp_path, crash_epoch=6)

    assert_same_weights(resumed, uninterrupted)
    assert resumed.history_.train_loss == uninterrupted.history_.train_loss
    assert resumed.history_.val_loss == uninterrupted.history_.val_loss
    assert resumed.history_.best_epoch == uninterrupted.history_.best_epoch
    assert resumed.history_.stopped_early == uninterrupted.history_.stopped_early
    assert resumed.metrics_ == uninterrupted.metrics_
    np.testing.assert_array_equal(resumed.transform(table), uninterrupted.transform(table))


def test_early_stopping_case_stops_after_the_crash(table):
    history = AUTOENCODERS["early-stopping"]().fit(table).history_
    assert history.stopped_early and 6 < history.n_epochs < 40


def test_resumed_timeline_equals_uninterrupted(table, tmp_path):
    make = lambda **kw: AutoEncoder(**small_params(timeline=3, **kw))  # noqa: E731
    uninterrupted = make().fit(table)
    resumed = crash_then_resume(make, table, tmp_path, crash_epoch=7)
    assert list(resumed.timeline_["epochs"]) == [1, 2, 4, 8, 15]
    for key in ("epochs", "inputs", "reconstructions"):
        np.testing.assert_array_equal(resumed.timeline_[key], uninterrupted.timeline_[key])


def test_unseeded_run_resumes_with_its_own_seed(table, tmp_path):
    make = lambda **kw: AutoEncoder(**small_params(random_state=None, dropout=0.1, **kw))  # noqa: E731
    resumed = crash_then_resume(make, table, tmp_path, crash_epoch=5)
    uninterrupted = AutoEncoder(**small_params(random_state=resumed.seed_, dropout=0.1)).fit(table)
    assert_same_weights(resumed, uninterrupted)


def test_streamed_run_resumes_exactly(table, tmp_path):
    from aekit.data import stream

    path = tmp_path / "table.parquet"
    pd.DataFrame(table, columns=[f"f{j}" for j in range(6)]).to_parquet(path, row_group_size=64)
    make = lambda **kw: AutoEncoder(**small_params(dropout=0.1, **kw))  # noqa: E731
    uninterrupted = make().fit(stream(path, chunk_size=50, shuffle_buffer=64))
    resumed = crash_then_resume(make, stream(path, chunk_size=50, shuffle_buffer=64), tmp_path, crash_epoch=5)
    assert_same_weights(resumed, uninterrupted)
    assert resumed.history_.train_loss == uninterrupted.history_.train_loss


def test_detector_resumes_to_the_same_detector(table, tmp_path):
    def make(**kw):
        return AnomalyDetector(
            AutoEncoder(**small_params(dropout=0.1)), fpr=0.1, random_state=None,
            checkpoint_dir=kw.get("checkpoint_dir"), resume=kw.get("resume", False),
        ).set_params(estimator__callbacks=kw.get("callbacks"))

    resumed = crash_then_resume(make, table, tmp_path, crash_epoch=4)
    uninterrupted = AnomalyDetector(AutoEncoder(**small_params(dropout=0.1)), fpr=0.1, random_state=resumed.seed_)
    uninterrupted.fit(table)
    assert_same_weights(resumed.estimator_, uninterrupted.estimator_)
    assert resumed.threshold_ == uninterrupted.threshold_
    np.testing.assert_array_equal(resumed.calibration_errors_, uninterrupted.calibration_errors_)
    np.testing.assert_array_equal(resumed.predict(table), uninterrupted.predict(table))


class CrashInNetwork(Callback):
    """Raise at the start of ``epoch`` in the ``network``-th training run. The count is
    shared by the clones that a detector makes of its callbacks."""

    runs = 0

    def __init__(self, network: int, epoch: int) -> None:
        self.network = network
        self.epoch = epoch

    def on_epoch_start(self, trainer, epoch):
        CrashInNetwork.runs += epoch == 1
        if CrashInNetwork.runs == self.network and epoch == self.epoch:
            raise Crash


def test_detector_resumes_crash_in_third_network(table, tmp_path):
    folder = tmp_path / "checkpoints"

    def make(callbacks=None, **kw):
        inner = AutoEncoder(**small_params(dropout=0.1, callbacks=callbacks))
        return AnomalyDetector(inner, random_state=0, checkpoint_dir=folder, **kw)

    CrashInNetwork.runs = 0
    with pytest.raises(Crash):
        make(callbacks=[CrashInNetwork(network=3, epoch=4)]).fit(table)
    # The first two networks finished; the third stopped after its third epoch.
    assert latest_checkpoint(folder).name == "epoch-000015"
    assert latest_checkpoint(folder / "member-1").name == "epoch-000015"
    assert latest_checkpoint(folder / "member-2").name == "epoch-000003"

    resumed = make(resume=True).fit(table)
    uninterrupted = AnomalyDetector(AutoEncoder(**small_params(dropout=0.1)), random_state=0).fit(table)
    for again, fresh in zip(resumed.estimators_, uninterrupted.estimators_, strict=True):
        assert_same_weights(again, fresh)
    np.testing.assert_array_equal(resumed.training_errors_, uninterrupted.training_errors_)


def test_checkpoints_hold_tensors_and_json_only(table, tmp_path):
    AutoEncoder(**small_params(max_epochs=7, checkpoint_dir=tmp_path, checkpoint_every=3)).fit(table)

    # Every third epoch and the last; only the newest is kept.
    assert [p.name for p in checkpoint_folders(tmp_path)] == ["epoch-000007"]
    folder = latest_checkpoint(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == [STATE_FILE, TENSORS_FILE]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    document = json.loads((folder / STATE_FILE).read_text())
    tensors = load_file(str(folder / TENSORS_FILE))
    assert document["epoch"] == 7
    assert document["run"]["seed"] == 0
    assert len(document["state"]["history"]["train_loss"]) == 7
    assert {"optimizer/state/0/exp_avg", "optimizer/state/0/exp_avg_sq", "rng/torch", "rng/batch_order"} <= set(tensors)
    assert any(name.startswith("model/") for name in tensors)
    assert any(name.startswith("callbacks/0/state/best_state/") for name in tensors)


def test_checkpoint_every_writes_on_schedule(table, tmp_path):
    seen = []

    class Watch(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            seen.append([p.name for p in checkpoint_folders(tmp_path)])

    AutoEncoder(**small_params(max_epochs=5, checkpoint_dir=tmp_path, checkpoint_every=2, callbacks=[Watch()])).fit(table)
    # Watch runs before the checkpoint of its own epoch is written.
    assert seen == [[], [], ["epoch-000002"], ["epoch-000002"], ["epoch-000004"]]
    assert latest_checkpoint(tmp_path).name == "epoch-000005"


def test_fresh_run_removes_old_checkpoints(table, tmp_path):
    AutoEncoder(**small_params(max_epochs=9, checkpoint_dir=tmp_path)).fit(table)
    with pytest.raises(Crash):
        AutoEncoder(**small_params(max_epochs=9, checkpoint_dir=tmp_path, callbacks=[CrashMidEpoch(3)])).fit(table)
    assert latest_checkpoint(tmp_path).name == "epoch-000002"


def test_optimizer_state_survives_the_json_split():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.ones(4, 3)).sum().backward()
    optimizer.step()
    tensors = {}
    document = json.loads(json.dumps(split_tensors(optimizer.state_dict(), tensors, "optimizer")))
    restored = join_tensors(document, tensors)
    assert restored["param_groups"] == optimizer.state_dict()["param_groups"]
    assert restored["param_groups"][0]["betas"] == (0.9, 0.999)
    assert set(restored["state"]) == {0, 1}
    assert torch.equal(restored["state"][1]["exp_avg"], optimizer.state_dict()["state"][1]["exp_avg"])


@pytest.fixture
def checkpointed(table, tmp_path):
    AutoEncoder(**small_params(max_epochs=4, checkpoint_dir=tmp_path)).fit(table)
    return latest_checkpoint(tmp_path)


def test_damaged_checkpoint_is_refused(table, tmp_path, checkpointed):
    tensors = checkpointed / TENSORS_FILE
    data = bytearray(tensors.read_bytes())
    data[-3] ^= 0x01
    tensors.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="does not match the checksum in state.json; the checkpoint is damaged"):
        AutoEncoder(**small_params(max_epochs=4, checkpoint_dir=tmp_path, resume=True)).fit(table)


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (lambda text: text[: len(text) // 2], "state.json' is not valid JSON"),
        (lambda text: text.replace('"format_version": 1', '"format_version": 9'), "version 9.*Upgrade aekit"),
        (lambda text: text.replace('"optimizer"', '"optimiser"'), "does not fit this run: 'optimizer'"),
    ],
)
def test_broken_state_json_is_refused(table, tmp_path, checkpointed, damage, fragment):
    path = checkpointed / STATE_FILE
    path.write_text(damage(path.read_text()))
    with pytest.raises(ModelFileError, match=fragment):
        AutoEncoder(**small_params(max_epochs=4, checkpoint_dir=tmp_path, resume=True)).fit(table)


def test_pickle_checkpoint_rejected_unrun(table, tmp_path, checkpointed):
    import hashlib
    import pickle

    class CodePayload:
        def __reduce__(self):
            return (open, (str(tmp_path / "marker"), "w"))

    payload = pickle.dumps(CodePayload())
    (checkpointed / TENSORS_FILE).write_bytes(payload)
    state = json.loads((checkpointed / STATE_FILE).read_text())
    state["tensors_sha256"] = hashlib.sha256(payload).hexdigest()
    (checkpointed / STATE_FILE).write_text(json.dumps(state))

    with pytest.raises(ModelFileError, match="state.safetensors' is not a valid safetensors file"):
        AutoEncoder(**small_params(max_epochs=4, checkpoint_dir=tmp_path, resume=True)).fit(table)
    assert not (tmp_path / "marker").exists()


def test_resume_with_other_parameters_or_data_is_refused(table, tmp_path, checkpointed):
    with pytest.raises(ConfigError, match=r"other parameters \(learning_rate=0.001 then, 0.01 now\)"):
        AutoEncoder(**small_params(checkpoint_dir=tmp_path, resume=True, learning_rate=0.01)).fit(table)
    with pytest.raises(ConfigError, match="written by 'AutoEncoder', not 'VariationalAutoEncoder'"):
        VariationalAutoEncoder(**small_params(checkpoint_dir=tmp_path, resume=True)).fit(table)
    with pytest.raises(DataError, match=r"other data \(200 rows x 6 columns.* then, 199 rows x 6 columns"):
        AutoEncoder(**small_params(checkpoint_dir=tmp_path, resume=True)).fit(table[:199])
    # How long and where the run goes may change: more epochs continue training.
    longer = AutoEncoder(**small_params(max_epochs=6, checkpoint_dir=tmp_path, resume=True, verbose=0)).fit(table)
    assert longer.history_.n_epochs == 6


def test_resume_without_checkpoint_trains_from_the_start(table, tmp_path, caplog):
    resumed = AutoEncoder(**small_params(checkpoint_dir=tmp_path / "none", resume=True)).fit(table)
    assert "no checkpoint in" in caplog.text
    assert_same_weights(resumed, AutoEncoder(**small_params()).fit(table))


@pytest.mark.parametrize(
    "params, fragment",
    [
        (dict(resume=True), "resume=True needs checkpoint_dir"),
        (dict(checkpoint_dir="c", checkpoint_every=0), "checkpoint_every must be an integer >= 1"),
        (dict(checkpoint_dir="c", resume="yes"), "resume must be True or False, got 'yes'"),
    ],
)
def test_checkpoint_parameters_are_checked(table, params, fragment):
    with pytest.raises(ConfigError, match=fragment):
        AutoEncoder(**small_params(**params)).fit(table)


def test_cli_detector_resume_finishes_from_the_last_checkpoint(tmp_path, table, capsys):
    data = tmp_path / "table.csv"
    pd.DataFrame(table, columns=[f"f{i}" for i in range(6)]).to_csv(data, index=False)
    args = [str(data), "--detector", "--latent-dim", "2", "--hidden-dims", "16", "--epochs", "6", "--seed", "0",
            "--no-report", "--checkpoint-every", "2"]

    def train(out, *extra):
        try:
            main(["train", *args, "--out", str(out), *extra])
        except SystemExit as done:
            assert done.code == 0, capsys.readouterr().err

    train(tmp_path / "model")
    assert latest_checkpoint(tmp_path / "model" / "checkpoints").name == "epoch-000006"
    train(tmp_path / "model", "--resume")
    again = aekit.load(tmp_path / "model")
    train(tmp_path / "fresh")
    fresh = aekit.load(tmp_path / "fresh")
    assert_same_weights(again.estimator_, fresh.estimator_)
    assert again.threshold_ == fresh.threshold_


def _train_command(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "aekit", "-q", "train", str(data), "--out", str(out), "--epochs", "12", "--seed", "0",
        "--batch-size", "16", "--dropout", "0.1", "--no-early-stopping", "--no-report", "--device", "cpu",
        "--threads", "1", "--checkpoint-every", "1", *extra,
    ]


def test_killed_training_resumes_to_identical_weights(tmp_path):
    """SIGKILL an 'aekit train' process after its first checkpoint, resume it, and get
    the weights of an uninterrupted run."""
    rng = np.random.default_rng(1)
    factors = rng.normal(size=(800, 3))
    X = factors @ rng.normal(size=(3, 10)) + 0.1 * rng.normal(size=(800, 10))
    data = tmp_path / "data.csv"
    pd.DataFrame(X, columns=[f"c{i}" for i in range(10)]).to_csv(data, index=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    reference = subprocess.Popen(_train_command(data, tmp_path / "reference"), env=env)
    victim = subprocess.Popen(_train_command(data, tmp_path / "victim"), env=env)
    checkpoints = tmp_path / "victim" / "checkpoints"
    try:
        while latest_checkpoint(checkpoints) is None and victim.poll() is None:
            time.sleep(0.01)
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(timeout=60) == -signal.SIGKILL
    finally:
        if victim.poll() is None:
            victim.kill()

    # It died in the middle of training: before its last epoch, with no model saved.
    died_after = int(latest_checkpoint(checkpoints).name.split("-")[1])
    assert died_after < 12
    assert not (tmp_path / "victim" / "model.safetensors").exists()

    resumed = subprocess.run(_train_command(data, tmp_path / "victim", "--resume"), env=env, timeout=600,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert reference.wait(timeout=600) == 0

    final = load_file(str(tmp_path / "victim" / "model.safetensors"))
    expected = load_file(str(tmp_path / "reference" / "model.safetensors"))
    assert final.keys() == expected.keys()
    for name in expected:
        assert torch.equal(final[name], expected[name]), name
    history = json.loads((tmp_path / "victim" / "config.json").read_text())["training"]["history"]
    expected_history = json.loads((tmp_path / "reference" / "config.json").read_text())["training"]["history"]
    assert history["train_loss"] == expected_history["train_loss"]
    assert len(history["train_loss"]) == 12


def _mixed_table(n_rows: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({
        "amount": rng.normal(size=n_rows),
        "kind": rng.choice(["card", "cash", "wire"], n_rows),
        "hour": rng.integers(0, 24, n_rows).astype(float),
    })
    frame.loc[::13, "amount"] = np.nan
    return frame


def test_table_with_categories_and_gaps_resumes_exactly(tmp_path):
    table = _mixed_table()
    params = dict(hidden_dims=(16,), latent_dim=2, max_epochs=6, random_state=0, impute="model")
    uninterrupted = AutoEncoder(**params).fit(table)

    AutoEncoder(**{**params, "max_epochs": 3}, checkpoint_dir=tmp_path).fit(table)
    resumed = AutoEncoder(**params, checkpoint_dir=tmp_path, resume=True).fit(table)

    for name, tensor in uninterrupted.model_.state_dict().items():
        assert torch.equal(tensor, resumed.model_.state_dict()[name]), name
    assert resumed.history_.train_loss == uninterrupted.history_.train_loss


def test_table_resume_rejects_a_changed_table(tmp_path):
    table = _mixed_table()
    params = dict(hidden_dims=(16,), latent_dim=2, max_epochs=2, random_state=0, impute="model")
    AutoEncoder(**params, checkpoint_dir=tmp_path).fit(table)
    changed = table.copy()
    changed.loc[5, "kind"] = "wire" if changed.loc[5, "kind"] != "wire" else "cash"
    with pytest.raises(DataError, match="other data"):
        AutoEncoder(**{**params, "max_epochs": 4}, checkpoint_dir=tmp_path, resume=True).fit(changed)
