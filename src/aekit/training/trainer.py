"""Mini-batch training loop.

Where the time goes, measured with ``benchmarks/throughput.py`` (torch.profiler and
cProfile, AMD EPYC, 1 thread, fp32; see docs/benchmarks/throughput.md):

- On the 784-1000-500-250-30 network at batch 256, matrix products take about 88%
  of a step, fused Adam 3%, batch normalisation and ReLU about 5%, and the Python of
  this loop under 1%.
- On a 21-64-32 network at batch 32, the matrix products take only a quarter of a
  step. The rest is eager PyTorch's per-operator cost: autograd bookkeeping and
  kernel dispatch, about 30 us per operator on that machine. ``torch.optim.Adam``
  added about 200 us of Python and counter updates per step, which
  :class:`~aekit.training.optim.LeanFusedAdam` removes. This loop's own Python is
  about 1%.

So the loop keeps Python out of the step. Batches are whole slices of one shuffled
copy per epoch (``TensorBatches``), never per-sample ``Dataset.__getitem__`` calls or
``DataLoader`` collation. Step losses stay on the device until the epoch ends, so the
loop syncs with the device twice per epoch, for the mean loss and the check that the
weights are finite (plus the progress bar's rare refreshes).
Gradients are reset with ``zero_grad(set_to_none=True)``, the estimators build a
fused Adam (one kernel for all parameters), and the loss is one fused MSE kernel.
Against the earlier loop (per-parameter Adam, a four-kernel loss and an indexed
write per step), these raised the small network from about 37,000 to 50,000 samples/s.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .._device import amp_settings
from ..exceptions import TrainingDivergedError
from .batches import BatchSource, TensorBatches, batch_bounds
from .callbacks import Callback
from .distributed import DistributedContext
from .history import History

logger = logging.getLogger(__name__)

__all__ = ["Objective", "Trainer", "batch_bounds"]

# Step losses recorded between two stacks into one tensor (see train_one_epoch).
_STACK_STEPS = 256

# An objective maps (model, clean batch) to named loss tensors, and "loss" is minimised.
# Validation and early stopping monitor the entry named by the objective's ``monitor``
# attribute, or "reconstruction_loss" when it has none.
Objective = Callable[[nn.Module, torch.Tensor], dict[str, torch.Tensor]]


class Trainer:
    """Trains ``model`` by minimising ``objective`` with ``optimizer``.

    Parameters
    ----------
    model : nn.Module
        The plain module; the trainer wraps it for compilation and distributed
        training itself, and callbacks see this unwrapped module.
    objective : callable
        ``objective(model, x)`` returns a dict with a scalar ``"loss"`` to minimise and
        the scalar that validation reports: the entry named by ``objective.monitor``,
        or ``"reconstruction_loss"`` when the objective has no such attribute. Every
        other entry is averaged over the validation rows each epoch and recorded in
        ``history.extra``.
    optimizer : torch.optim.Optimizer
    batch_size, max_epochs : int
        ``batch_size`` is the global batch: on several ranks each takes its share.
    generator : torch.Generator
        Source of the per-epoch shuffles, so a seeded run shuffles the same way.
    callbacks : sequence of Callback
    precision : {"fp32", "bf16", "fp16"}, default="fp32"
        Autocast dtype of the forward pass; weights and optimizer state stay fp32.
    compile : bool, default=False
        Train through ``torch.compile(model)``; evaluation runs the plain module.
    distributed : DistributedContext or None, default=None
        Train with DistributedDataParallel in this process group.
    """

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        optimizer: torch.optim.Optimizer,
        *,
        batch_size: int,
        max_epochs: int,
        generator: torch.Generator,
        callbacks: Sequence[Callback] = (),
        precision: str = "fp32",
        compile: bool = False,
        distributed: DistributedContext | None = None,
    ) -> None:
        self.model = model
        self.objective = objective
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.generator = generator
        self.callbacks = list(callbacks)
        self.distributed = distributed
        self.device = next(model.parameters()).device
        self.amp = amp_settings(precision, self.device)
        self.grad_scaler = torch.amp.GradScaler(self.device.type) if self.amp.grad_scaler else None
        self.train_model = self._training_view(model, compile)
        self.history = History()
        self.stop_training = False
        # A run resumed from a checkpoint starts after the checkpoint's epoch (see restore).
        self.start_epoch = 1
        self._stopped_before_start = False

    def _training_view(self, model: nn.Module, compile: bool) -> nn.Module:
        """Return the module that training steps call: DDP-wrapped and compiled as asked."""
        view = model
        if self.distributed is not None:
            view = self.distributed.wrap(model, self.device)
        if compile:
            # DDP first, then compile, so the compiler traces DDP's gradient buckets.
            view = torch.compile(view)
        return view

    def fit(self, x_train: torch.Tensor | BatchSource, x_val: torch.Tensor | None = None) -> History:
        """Train on ``x_train`` and return the history.

        ``x_train`` is a tensor (on the model's device, or on the host when it is too
        large for the device) or a batch source such as a file stream. ``x_val``
        contains this rank's validation rows.
        """
        source = self._batch_source(x_train)
        # Callbacks may read the data, e.g. to log reconstructions of a few validation rows.
        self.x_train, self.x_val = x_train, x_val
        self.stop_training = self._stopped_before_start
        self._call("on_fit_start")
        # Weights after the last epoch with finite losses, put back if a later epoch diverges.
        good_state, good_epoch = _copy_state(self.model), self.start_epoch - 1

        for epoch in range(self.start_epoch, self.max_epochs + 1):
            if self.stop_training:
                break
            started = time.perf_counter()
            self._call("on_epoch_start", epoch)

            try:
                train_loss, val_terms = self._train_and_validate(source, x_val, epoch)
            except TrainingDivergedError as error:
                self.model.load_state_dict(good_state)
                error.last_good_epoch = good_epoch
                logger.warning("training diverged; the model keeps the weights of epoch %d", good_epoch)
                raise
            val_loss = val_terms.get(self.monitor)
            self._record_extra(val_terms)
            good_state, good_epoch = _copy_state(self.model), epoch

            logs = {
                "train_loss": train_loss,
                "val_loss": val_loss,
                "learning_rate": self._learning_rate(),
                "seconds": time.perf_counter() - started,
            }
            self._record(logs)
            self._call("on_epoch_end", epoch, logs)

        self._call("on_fit_end")
        return self.history

    def checkpoint_state(self, epoch: int) -> dict[str, Any]:
        """Everything that continues this run exactly after ``epoch``: weights, optimizer,
        gradient scaler, random number generators, history and callback states.

        Random numbers come from the batch-order generator and torch's default
        generators (dropout, input noise, a VAE's samples). Training draws nothing
        from numpy's or Python's global generators, so those are left alone.
        """
        return {
            "epoch": epoch,
            "stop_training": self.stop_training,
            "history": self.history.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "grad_scaler": None if self.grad_scaler is None else self.grad_scaler.state_dict(),
            "rng": {
                "batch_order": self.generator.get_state(),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            },
            "callbacks": [
                {"callback": type(callback).__name__, "state": state}
                for callback, state in self._callback_states()
            ],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (see :meth:`checkpoint_state`): the next :meth:`fit`
        starts with the epoch after it.

        Call it where the training run draws its random numbers, because it sets
        torch's default generator.
        """
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.grad_scaler is not None and state["grad_scaler"] is not None:
            self.grad_scaler.load_state_dict(state["grad_scaler"])
        rng = state["rng"]
        self.generator.set_state(rng["batch_order"])
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and self.device.type == "cuda":
            # NOTE: only run on CPU so far. CUDA kernels are not bit-reproducible anyway, so a
            # resumed GPU run continues the same random stream but may differ in rounding.
            torch.cuda.set_rng_state(rng["cuda"], self.device)

        saved = state["callbacks"]
        current = [callback for callback, _ in self._callback_states()]
        if [entry["callback"] for entry in saved] != [type(callback).__name__ for callback in current]:
            raise ValueError(
                f"the checkpoint contains the state of the callbacks {[entry['callback'] for entry in saved]}, "
                f"but this run has {[type(callback).__name__ for callback in current]}."
            )
        for callback, entry in zip(current, saved):
            callback.load_state_dict(entry["state"])

        self.history = History.from_dict(state["history"])
        self.start_epoch = int(state["epoch"]) + 1
        self._stopped_before_start = bool(state["stop_training"])

    def _callback_states(self) -> list[tuple[Callback, dict[str, Any]]]:
        states = [(callback, callback.state_dict()) for callback in self.callbacks]
        return [(callback, state) for callback, state in states if state is not None]

    def _train_and_validate(
        self, source: BatchSource, x_val: torch.Tensor | None, epoch: int
    ) -> tuple[float, dict[str, float]]:
        """Run one training epoch and the validation pass; raise if either loss is not finite."""
        train_loss = self.train_one_epoch(source, epoch)
        # A finite loss can still be followed by an update that overflows the weights.
        if not bool(torch.stack([p.detach().isfinite().all() for p in self.model.parameters()]).all()):
            raise TrainingDivergedError(
                f"the weights became non-finite during epoch {epoch}; lower the learning_rate "
                f"(now {self._learning_rate():g}) or check the data's scale.",
                epoch=epoch,
            )
        if self.distributed is not None:
            self.distributed.broadcast_buffers(self.model)
        val_terms = self.evaluate_terms(x_val) if x_val is not None else {}
        val_loss = val_terms.get(self.monitor)
        if val_loss is not None and not _is_finite(val_loss):
            raise TrainingDivergedError(
                f"the validation loss became {val_loss} at epoch {epoch}; lower the "
                f"learning_rate (now {self._learning_rate():g}) or check the data's scale.",
                epoch=epoch,
            )
        return train_loss, val_terms

    def _batch_source(self, x_train: torch.Tensor | BatchSource) -> BatchSource:
        if not isinstance(x_train, torch.Tensor):
            return x_train
        rank, world_size = (0, 1) if self.distributed is None else (self.distributed.rank, self.distributed.world_size)
        return TensorBatches(x_train, self.batch_size, self.generator, self.device, rank=rank, world_size=world_size)

    def train_one_epoch(self, source: BatchSource, epoch: int) -> float:
        """Run one pass over ``source``; return the row-weighted mean loss over every rank."""
        self.train_model.train()
        # Step losses are stacked into one tensor every _STACK_STEPS steps: appending to
        # a list is the cheapest per-step record, and stacking keeps few small tensors
        # alive, which would otherwise fragment host memory over a long streamed epoch.
        recent: list[torch.Tensor] = []
        stacked: list[torch.Tensor] = []
        step_rows: list[int] = []

        for batch, (x, loss_weight) in enumerate(source.epoch_batches(epoch)):
            with self.amp.autocast():
                loss = self.objective(self.train_model, x)["loss"]
            self._step(loss if loss_weight == 1.0 else loss * loss_weight)
            recent.append(loss.detach())
            step_rows.append(len(x))
            self._call("on_batch_end", batch, recent[-1])
            if len(recent) == _STACK_STEPS:
                stacked.append(torch.stack(recent))
                recent.clear()

        if recent:
            stacked.append(torch.stack(recent))
        losses = torch.cat(stacked) if stacked else torch.zeros(0, device=self.device)
        return self._epoch_mean(losses.float(), step_rows, epoch)

    def _step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        if self.grad_scaler is None:
            loss.backward()
            self.optimizer.step()
            return
        self.grad_scaler.scale(loss).backward()
        self.grad_scaler.step(self.optimizer)
        self.grad_scaler.update()

    def _epoch_mean(self, losses: torch.Tensor, step_rows: list[int], epoch: int) -> float:
        """Average the epoch's step losses by rows, over every rank: the epoch's one sync."""
        rows = torch.tensor(step_rows, dtype=torch.float32, device=self.device)
        totals = torch.stack([(losses * rows).sum(), rows.sum()])
        if self.distributed is not None:
            self.distributed.all_reduce_sum(totals)
        if float(totals[1]) == 0:
            raise TrainingDivergedError(f"epoch {epoch} had no training batches; check that the data has rows.")
        mean_loss = float(totals[0] / totals[1])

        if not _is_finite(mean_loss):
            bad = torch.nonzero(~torch.isfinite(losses))
            batch = int(bad[0, 0]) + 1 if len(bad) else None
            where = f"batch {batch} of {len(losses)}" if batch is not None else "a batch on another rank"
            raise TrainingDivergedError(
                f"the training loss became non-finite at epoch {epoch}, {where}; lower the "
                f"learning_rate (now {self._learning_rate():g}) or check the data's scale.",
                epoch=epoch,
                batch=batch,
            )
        return mean_loss

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, batch_size: int = 4096) -> float:
        """Mean monitored loss over ``x`` in evaluation mode (no dropout, running
        batch-norm statistics), so the value does not depend on ``batch_size``.

        Evaluation runs the plain module in fp32 whatever the training precision, so
        validation losses compare across precisions. On several ranks, each passes
        its own rows and the result is the mean over all of them.
        """
        return self.evaluate_terms(x, batch_size)[self.monitor]

    @torch.no_grad()
    def evaluate_terms(self, x: torch.Tensor, batch_size: int = 4096) -> dict[str, float]:
        """Mean of every scalar the objective returns over ``x``, in evaluation mode."""
        self.model.eval()
        names: list[str] | None = None
        totals = torch.zeros(0, device=self.device)
        for start in range(0, len(x), batch_size):
            batch = x[start : start + batch_size].to(self.device, non_blocking=True)
            terms = {name: value for name, value in self.objective(self.model, batch).items() if value.dim() == 0}
            if names is None:
                names = sorted(terms)
                totals = torch.zeros(len(names) + 1, device=self.device)
            totals[:-1] += torch.stack([terms[name].float() for name in names]) * len(batch)
            totals[-1] += len(batch)
        if self.distributed is not None:
            self.distributed.all_reduce_sum(totals)
        means = (totals[:-1] / totals[-1]).tolist()
        return dict(zip(names or [], means))

    @property
    def monitor(self) -> str:
        return getattr(self.objective, "monitor", "reconstruction_loss")

    def _learning_rate(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _record(self, logs: dict[str, float | None]) -> None:
        self.history.train_loss.append(logs["train_loss"])
        self.history.val_loss.append(logs["val_loss"])
        self.history.learning_rate.append(logs["learning_rate"])
        self.history.epoch_seconds.append(logs["seconds"])

    def _record_extra(self, terms: dict[str, float]) -> None:
        """Keep the validation means of the objective's terms other than the two losses."""
        for name, value in terms.items():
            if name not in ("loss", self.monitor):
                self.history.extra.setdefault(name, []).append(value)

    def _call(self, hook: str, *args: object) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)


def _copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copy the model's weights and buffers, on their device."""
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def _is_finite(value: float) -> bool:
    return value == value and abs(value) != float("inf")
