"""Precision, devices, threads, optimizers and compilation.

CI has no GPU, so the CUDA decisions (autocast dtype, gradient scaler, pinned memory,
data placement) are tested as logic on the CPU, with CUDA availability patched.
"""

import numpy as np
import pytest
import torch
from torch import nn

from aekit import AekitWarning, AutoEncoder, ConfigError, load
from aekit import _device
from aekit._device import amp_settings, keep_data_on_host, should_pin_memory, to_device, torch_threads
from aekit.models import DenseAutoencoder, DenseConfig
from aekit.training import ReconstructionObjective, Trainer
from aekit.training.batches import TensorBatches
from aekit.training.distributed import DistributedContext, revert_sync_batchnorm
from aekit.training.optim import build_adam
from conftest import small_params

CPU = torch.device("cpu")
CUDA = torch.device("cuda", 0)


def test_amp_settings_per_precision_and_device(monkeypatch):
    assert amp_settings("fp32", CPU).autocast_dtype is None
    monkeypatch.setattr(_device, "cpu_has_native_bf16", lambda: True)
    bf16 = amp_settings("bf16", CPU)
    assert bf16.autocast_dtype == torch.bfloat16
    assert not bf16.grad_scaler

    fp16 = amp_settings("fp16", CUDA)
    assert (fp16.device_type, fp16.autocast_dtype, fp16.grad_scaler) == ("cuda", torch.float16, True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert amp_settings("bf16", CUDA).autocast_dtype == torch.bfloat16


def test_amp_settings_reject_bad_choices(monkeypatch):
    with pytest.raises(ConfigError, match="precision must be one of 'fp32', 'bf16', 'fp16'; got 'half'"):
        amp_settings("half", CPU)
    with pytest.raises(ConfigError, match="precision='fp16' needs a CUDA device.*use precision='bf16'"):
        amp_settings("fp16", CPU)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *args: "Tesla T4")
    with pytest.raises(ConfigError, match="Tesla T4 has no bf16 support"):
        amp_settings("bf16", CUDA)


def test_bf16_without_native_support_warns(monkeypatch):
    monkeypatch.setattr(_device, "cpu_has_native_bf16", lambda: False)
    with pytest.warns(AekitWarning, match="emulated and usually slower"):
        amp_settings("bf16", CPU)


def test_autocast_context_lowers_matmuls():
    with amp_settings("fp32", CPU).autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    bf16 = _device.AmpSettings("cpu", torch.bfloat16, grad_scaler=False)
    with bf16.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


def test_pinning_and_placement_decisions(monkeypatch):
    assert not should_pin_memory(CPU)
    assert not should_pin_memory(torch.device("mps"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert should_pin_memory(CUDA)

    assert not keep_data_on_host(10**12, CPU)
    assert not keep_data_on_host(10**12, torch.device("mps"))
    assert not keep_data_on_host(400, CUDA, free_bytes=1000)
    assert keep_data_on_host(600, CUDA, free_bytes=1000)


def test_to_device_leaves_cpu_tensors_alone():
    x = torch.ones(3, 2)
    assert to_device(x, CPU) is x


def test_torch_threads_sets_and_restores():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(ConfigError, match="n_threads must be a positive integer or None, got 0"):
        with torch_threads(0):
            pass


def test_fit_respects_n_threads(table):
    seen = []

    class Spy(AutoEncoder):
        def _train(self, *args, **kwargs):
            seen.append(torch.get_num_threads())
            return super()._train(*args, **kwargs)

    before = torch.get_num_threads()
    Spy(**small_params(max_epochs=2, n_threads=1)).fit(table)
    assert seen == [1]
    assert torch.get_num_threads() == before


def _model(seed=0, batch_norm=True):
    torch.manual_seed(seed)
    return DenseAutoencoder(DenseConfig(input_dim=6, latent_dim=2, hidden_dims=(8,), batch_norm=batch_norm))


def test_build_adam_is_fused_on_cpu():
    optimizer = build_adam(_model().parameters(), 1e-3, CPU)
    assert optimizer.defaults["fused"] is True


def test_fused_adam_matches_foreach_and_repeats():
    x = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))

    def train(fused):
        # Without batch normalisation: a bias right before it gets a gradient of pure
        # rounding noise, which Adam scales up to full-size steps that differ between
        # any two implementations.
        model = _model(batch_norm=False)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, fused=fused, foreach=None if fused else True)
        for _ in range(20):
            loss = (model(x).x_recon - x).square().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return [p.detach().clone() for p in model.parameters()]

    fused, fused_again, foreach = train(True), train(True), train(False)
    for a, b, c in zip(fused, fused_again, foreach):
        assert torch.equal(a, b)
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-5)


def test_bf16_training_on_cpu(table, monkeypatch):
    monkeypatch.setattr(_device, "cpu_has_native_bf16", lambda: True)
    ae = AutoEncoder(**small_params(max_epochs=30, precision="bf16")).fit(table)
    losses = ae.history_.train_loss
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0]
    assert all(p.dtype == torch.float32 for p in ae.model_.parameters())
    fp32 = AutoEncoder(**small_params(max_epochs=30)).fit(table)
    assert ae.metrics_["val_mse"] == pytest.approx(fp32.metrics_["val_mse"], rel=0.5)


def test_compile_switch_trains_through_compiled_module(monkeypatch):
    compiled = []

    def fake_compile(module, **kwargs):
        compiled.append(module)
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    model = _model()
    trainer = Trainer(model, ReconstructionObjective(), build_adam(model.parameters(), 1e-2, CPU), batch_size=16,
                      max_epochs=2, generator=torch.Generator().manual_seed(0), compile=True)
    assert compiled == [model]
    assert trainer.train_model is model
    trainer.fit(torch.randn(64, 6))
    assert len(trainer.history.train_loss) == 2


def test_estimator_rejects_bad_speed_options(table):
    with pytest.raises(ConfigError, match="precision must be one of"):
        AutoEncoder(**small_params(precision="fp8")).fit(table)
    with pytest.raises(ConfigError, match="compile must be True or False, got 'yes'"):
        AutoEncoder(**small_params(compile="yes")).fit(table)
    with pytest.raises(ConfigError, match="distributed must be one of 'auto', True, False; got 'on'"):
        AutoEncoder(**small_params(distributed="on")).fit(table)


def test_distributed_true_without_torchrun_explains(table, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="environment variables .* that torchrun sets"):
        AutoEncoder(**small_params(distributed=True)).fit(table)


def test_speed_options_round_trip(table, tmp_path):
    ae = AutoEncoder(**small_params(n_threads=1, distributed=False)).fit(table)
    ae.save(tmp_path / "m")
    loaded = load(tmp_path / "m")
    assert loaded.get_params() == ae.get_params()
    np.testing.assert_array_equal(loaded.transform(table), ae.transform(table))


def test_rank_batches_split_each_global_batch():
    x = torch.arange(50, dtype=torch.float32).reshape(25, 2)
    single = list(TensorBatches(x, 10, torch.Generator().manual_seed(0), CPU).epoch_batches(1))
    ranks = [list(TensorBatches(x, 10, torch.Generator().manual_seed(0), CPU, rank=r, world_size=2).epoch_batches(1))
             for r in range(2)]
    assert [len(b) for b, _ in single] == [10, 10, 5]
    for step, (batch, weight) in enumerate(single):
        assert weight == 1.0
        (first, w0), (second, w1) = ranks[0][step], ranks[1][step]
        torch.testing.assert_close(torch.cat([first, second]), batch)
        # Weights make the DDP average of rank means equal the global batch mean.
        assert (w0 * first.mean() + w1 * second.mean()) / 2 == pytest.approx(batch.mean().item())
    assert [len(b) for b, _ in ranks[1]] == [5, 5, 3]

    # A last global batch below 2 rows per rank joins the previous one.
    merged = TensorBatches(x[:21], 10, torch.Generator().manual_seed(0), CPU, rank=0, world_size=2)
    assert merged.bounds == [(0, 10), (10, 21)]


def test_context_rank_rows_cover_everything():
    shares = [DistributedContext(rank=r, world_size=3, local_rank=r).rank_rows(10) for r in range(3)]
    assert shares == [(0, 3), (3, 6), (6, 10)]


def test_sync_batchnorm_reverts_to_plain_layers():
    model = _model()
    parameters = list(model.parameters())
    nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())
    revert_sync_batchnorm(model)
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())
    assert sum(isinstance(m, nn.BatchNorm1d) for m in model.modules()) == 2
    assert all(a is b for a, b in zip(model.parameters(), parameters))


def test_save_on_other_ranks_writes_nothing(table, tmp_path, monkeypatch):
    ae = AutoEncoder(**small_params(max_epochs=2)).fit(table)
    monkeypatch.setenv("RANK", "1")
    ae.save(tmp_path / "rank1")
    assert not (tmp_path / "rank1").exists()
    monkeypatch.setenv("RANK", "0")
    ae.save(tmp_path / "rank0")
    assert (tmp_path / "rank0" / "model.safetensors").is_file()


def test_host_batches_match_device_batches(monkeypatch):
    # Data kept on the host for a CUDA model: the batches gathered on the host must
    # equal those sliced on the device. The copy itself is patched out (no GPU in CI).
    from aekit.training import batches

    monkeypatch.setattr(batches, "to_device", lambda batch, device: batch)
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    on_device = TensorBatches(x, 16, torch.Generator().manual_seed(1), CPU)
    on_host = TensorBatches(x, 16, torch.Generator().manual_seed(1), CUDA)
    pairs = list(zip(on_device.epoch_batches(1), on_host.epoch_batches(1)))
    assert len(pairs) == 4
    for (expected, _), (gathered, weight) in pairs:
        assert torch.equal(gathered, expected)
        assert weight == 1.0


def lean_and_torch_adam(shapes: list[tuple[int, ...]], seed: int):
    """Return (start values, lean params, torch params, LeanFusedAdam, fused torch Adam)
    over two copies of the same random parameters."""
    from aekit.training.optim import LeanFusedAdam

    torch.manual_seed(seed)
    start = [torch.randn(shape) for shape in shapes]
    lean_params = [torch.nn.Parameter(t.clone()) for t in start]
    torch_params = [torch.nn.Parameter(t.clone()) for t in start]
    lean = LeanFusedAdam(lean_params, lr=1e-2)
    reference = torch.optim.Adam(torch_params, lr=1e-2, fused=True)
    return start, lean_params, torch_params, lean, reference


def test_lean_fused_adam_matches_torch_bit_for_bit():
    shapes = [(16, 5), (16,), (3, 16), (3,)]
    start, lean_params, torch_params, lean, reference = lean_and_torch_adam(shapes, seed=0)

    for step in range(25):
        grads = [torch.randn(shape, generator=torch.Generator().manual_seed(step * 10 + i)) for i, shape in enumerate(shapes)]
        for params, optimizer in ((lean_params, lean), (torch_params, reference)):
            for p, g in zip(params, grads):
                p.grad = g.clone()
            optimizer.step()
        if step == 10:  # a learning-rate change reaches the lean path too
            for optimizer in (lean, reference):
                optimizer.param_groups[0]["lr"] = 5e-3

    for a, b in zip(lean_params, torch_params):
        assert torch.equal(a, b)
    restored = torch.optim.Adam([torch.nn.Parameter(t.clone()) for t in start], lr=1e-2, fused=True)
    restored.load_state_dict(lean.state_dict())
    assert float(restored.state_dict()["state"][0]["step"]) == 25


def test_lean_adam_missing_gradient_fallback():
    """A parameter without a gradient skips a step, so the step counts part ways. The lean
    path must hand each parameter its own counter back and still match torch exactly."""
    shapes = [(8, 3), (8,), (2, 8)]
    _, lean_params, torch_params, lean, reference = lean_and_torch_adam(shapes, seed=1)

    for step in range(12):
        grads = [torch.randn(shape, generator=torch.Generator().manual_seed(step * 10 + i)) for i, shape in enumerate(shapes)]
        for params, optimizer in ((lean_params, lean), (torch_params, reference)):
            optimizer.zero_grad(set_to_none=True)
            for i, (p, g) in enumerate(zip(params, grads)):
                if not (step == 5 and i == 1):  # the bias gets no gradient in step 5
                    p.grad = g.clone()
            optimizer.step()

    for a, b in zip(lean_params, torch_params):
        assert torch.equal(a, b)
    steps = [float(state["step"]) for state in lean.state_dict()["state"].values()]
    assert steps == [12.0, 11.0, 12.0]


def test_lean_adam_step_hooks_run_once():
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    from aekit.training.optim import LeanFusedAdam

    param = torch.nn.Parameter(torch.ones(3))
    optimizer = LeanFusedAdam([param], lr=0.1)
    calls: list[str] = []
    optimizer.register_step_pre_hook(lambda *_: calls.append("pre"))
    optimizer.register_step_post_hook(lambda *_: calls.append("post"))
    handle = register_optimizer_step_pre_hook(lambda *_: calls.append("global"))
    try:
        for _ in range(3):
            param.grad = torch.ones(3)
            optimizer.step()
    finally:
        handle.remove()
    assert calls == ["global", "pre", "post"] * 3
    assert float(optimizer.state[param]["step"]) == 3
