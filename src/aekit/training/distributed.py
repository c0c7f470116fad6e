"""Data-parallel training on ``torch.distributed``: process groups, ranks and collectives.

aekit trains on several processes with PyTorch's own engine: ``torchrun`` starts one
process per device and sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``
and ``MASTER_PORT``. Each process wraps the model in ``DistributedDataParallel``,
which averages gradients over the processes after every backward pass. The gloo
backend runs on CPUs and NCCL on CUDA GPUs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..exceptions import ConfigError

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class DistributedContext:
    """This process's place in a process group: its rank among ``world_size`` processes.

    ``local_rank`` is the rank on this machine, which picks the GPU (``cuda:local_rank``).
    """

    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that writes models, metrics and logs."""
        return self.rank == 0

    def rank_rows(self, n_rows: int) -> tuple[int, int]:
        """Return this rank's (start, stop) share of ``n_rows`` rows, sizes differing by at most 1."""
        return self.rank * n_rows // self.world_size, (self.rank + 1) * n_rows // self.world_size

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """Wrap ``model`` in ``DistributedDataParallel`` for ``device``.

        On CUDA, batch normalisation layers become ``SyncBatchNorm`` so that their
        statistics cover the global batch; call :func:`revert_sync_batchnorm` on the
        model afterwards. On the CPU (gloo), PyTorch's ``SyncBatchNorm`` does not run,
        so each rank normalises with its own batch's statistics.
        """
        if device.type == "cuda":
            # Replaces the BatchNorm children in place; parameters and buffers are shared.
            nn.SyncBatchNorm.convert_sync_batchnorm(model)
            return nn.parallel.DistributedDataParallel(model, device_ids=[device.index], output_device=device.index)
        if any(isinstance(module, nn.modules.batchnorm._BatchNorm) for module in model.modules()):
            # NOTE: per-rank batch statistics make training differ slightly from one
            # process with the same global batch; set batch_norm=False for an exact match.
            logger.info("batch normalisation on CPU ranks uses each rank's own batch statistics")
        return nn.parallel.DistributedDataParallel(model)

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over every rank, in place, and return it."""
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def all_reduce_min(self, value: int, device: torch.device) -> int:
        """Return the minimum of an integer over every rank."""
        tensor = torch.tensor([value], dtype=torch.int64, device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
        return int(tensor.item())

    def all_gather_objects(self, value: Any) -> list[Any]:
        """Return every rank's ``value`` (picklable, small), in rank order."""
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def broadcast_buffers(self, model: nn.Module) -> None:
        """Copy rank 0's buffers (batch-norm running statistics) to every rank."""
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def launched_distributed() -> bool:
    """Return whether this process is one of several, started by ``torchrun`` or in a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def process_rank() -> int:
    """This process's global rank: 0 when not distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    """Return whether this process writes files and logs: rank 0, or the only process."""
    return process_rank() == 0


def setup_distributed(device: torch.device) -> DistributedContext:
    """Join the process group that ``torchrun`` describes, starting it if needed.

    The backend is NCCL for CUDA devices and gloo otherwise. A process group that the
    caller started already is used as it is.
    """
    if not dist.is_available():
        raise ConfigError("distributed training was requested, but this PyTorch build has no torch.distributed.")
    if not dist.is_initialized():
        missing = [name for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
        if missing:
            raise ConfigError(
                f"distributed training needs the environment variables {missing} that torchrun sets; "
                "start the script with 'torchrun --nproc-per-node N ...' or set distributed=False."
            )
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            # NCCL binds each process to one GPU before the group starts.
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, device_id=device if device.type == "cuda" else None)
        logger.info("joined a %s process group as rank %d of %d", backend, dist.get_rank(), dist.get_world_size())
    local_rank = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return DistributedContext(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank)


def local_device(device: torch.device) -> torch.device:
    """Return the GPU of this process (``cuda:LOCAL_RANK``) for a CUDA ``device`` without an index."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def revert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace ``SyncBatchNorm`` layers by ``BatchNorm1d`` sharing their parameters and buffers.

    The model that training returns then runs without a process group and saves like
    any other. Returns the (possibly new) module.
    """
    if isinstance(module, nn.SyncBatchNorm):
        plain = nn.BatchNorm1d(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        if module.affine:
            plain.weight = module.weight
            plain.bias = module.bias
        plain.running_mean = module.running_mean
        plain.running_var = module.running_var
        plain.num_batches_tracked = module.num_batches_tracked
        plain.train(module.training)
        return plain
    for name, child in module.named_children():
        module.add_module(name, revert_sync_batchnorm(child))
    return module
