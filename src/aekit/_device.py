"""Devices, precision and host-device transfers: where and how training runs."""

from __future__ import annotations

import contextlib
import dataclasses
import mmap
import numbers
import warnings
from collections.abc import Iterator

import numpy as np
import torch

from .exceptions import AekitWarning, ConfigError


def resolve_device(device: str | torch.device) -> torch.device:
    """Return the torch device for ``device``: ``"auto"`` picks CUDA, then MPS, then CPU."""
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise ConfigError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}."
        )

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")

    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ConfigError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}."
        ) from err

    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={device!r} was requested but CUDA is not available on this machine; "
            "use device='auto' or 'cpu'."
        )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            f"device={device!r} was requested but Apple MPS is not available on this machine; "
            "use device='auto' or 'cpu'."
        )
    return resolved


# --- precision and host-device transfers ----------------------------------------------

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")


@dataclasses.dataclass(frozen=True)
class AmpSettings:
    """Autocast and gradient-scaler settings of a ``precision`` on a device.

    ``autocast_dtype`` is ``None`` for plain fp32. Weights, gradients and optimizer
    state stay fp32 in every case (autocast only lowers the matrix products), so the
    saved model does not depend on the precision it was trained in.
    """

    device_type: str
    autocast_dtype: torch.dtype | None
    grad_scaler: bool

    def autocast(self) -> contextlib.AbstractContextManager:
        """Return the autocast context for a forward pass (a no-op for fp32)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.autocast_dtype)


def amp_settings(precision: str, device: torch.device) -> AmpSettings:
    """Resolve ``precision`` ("fp32", "bf16" or "fp16") for ``device``.

    bf16 runs on CPU and CUDA (and MPS); fp16 needs CUDA, where a gradient scaler keeps
    small gradients from underflowing. bf16 has fp32's exponent range, so it needs no
    scaler.
    """
    if precision not in PRECISIONS:
        listed = ", ".join(repr(p) for p in PRECISIONS)
        raise ConfigError(f"precision must be one of {listed}; got {precision!r}.")
    if precision == "fp32":
        return AmpSettings(device.type, None, grad_scaler=False)

    if precision == "fp16":
        if device.type != "cuda":
            raise ConfigError(
                f"precision='fp16' needs a CUDA device, but training runs on {device.type!r}; "
                "use precision='bf16' (CPU, CUDA, MPS) or 'fp32'."
            )
        return AmpSettings("cuda", torch.float16, grad_scaler=True)

    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(
            f"precision='bf16' was requested but {torch.cuda.get_device_name(device)} has no bf16 "
            "support; use precision='fp16' or 'fp32'."
        )
    if device.type == "cpu" and not cpu_has_native_bf16():
        warnings.warn(
            "precision='bf16' on a CPU without native bf16 instructions (AVX512-BF16 or AMX) "
            "is emulated and usually slower than fp32; use precision='fp32' on this machine.",
            AekitWarning,
            stacklevel=3,
        )
    return AmpSettings(device.type, torch.bfloat16, grad_scaler=False)


def cpu_has_native_bf16() -> bool:
    """Return whether oneDNN reports native bf16 matrix instructions on this CPU."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def should_pin_memory(device: torch.device) -> bool:
    """Return whether host batches bound for ``device`` go through page-locked memory.

    Pinned pages let a CUDA copy run asynchronously (``non_blocking=True``) and overlap
    the previous step's kernels; for CPU and MPS, pinning would only add a copy.
    """
    return device.type == "cuda" and torch.cuda.is_available()


def to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a host batch to ``device``, through pinned memory and an asynchronous copy on CUDA.

    The pinned staging tensor comes from PyTorch's caching host allocator, which does
    not reuse the block until the copy that reads it has finished, so the asynchronous
    copy is safe without a sync.
    """
    if batch.device == device:
        return batch
    if should_pin_memory(device) and batch.device.type == "cpu":
        if not batch.is_pinned():
            batch = batch.pin_memory()
        return batch.to(device, non_blocking=True)
    return batch.to(device)


def is_memory_mapped(X: object) -> bool:
    """Return whether ``X`` is a view of a memory-mapped file, such as ``np.load(path, mmap_mode="r")``."""
    while X is not None:
        if isinstance(X, (np.memmap, mmap.mmap)):
            return True
        X = getattr(X, "base", None)
    return False


# Share of the free device memory that an in-memory training set may occupy; the rest
# is left for weights, activations and optimizer state.
DEVICE_DATA_SHARE = 0.5


def keep_data_on_host(
    n_bytes: int, device: torch.device, free_bytes: int | None = None, *, memory_mapped: bool = False
) -> bool:
    """Return whether training data of ``n_bytes`` stays in host memory and moves by batch.

    On the CPU the data is already where the model is. Data read from a memory-mapped
    file stays on the host on every other device, because its user chose not to hold it
    all in memory. On CUDA, data larger than ``DEVICE_DATA_SHARE`` of the free device
    memory (``free_bytes``, read from the device when ``None``) stays on the host. MPS
    shares memory with the host, so other data moves once.
    """
    if device.type == "cpu":
        return False
    if memory_mapped:
        return True
    if device.type != "cuda":
        return False
    if free_bytes is None:
        free_bytes, _ = torch.cuda.mem_get_info(device)
    return n_bytes > DEVICE_DATA_SHARE * free_bytes


@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Run the block with ``n_threads`` intra-op CPU threads, then restore the setting.

    ``None`` keeps PyTorch's setting, which defaults to the number of physical cores
    (or ``OMP_NUM_THREADS`` when set).
    """
    if n_threads is None:
        yield
        return
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral) or n_threads < 1:
        raise ConfigError(f"n_threads must be a positive integer or None, got {n_threads!r}.")
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
