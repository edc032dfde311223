"""torch tensors as raw storage bytes plus dtype, shape and strides (storage layer, internal).

Saving copies nothing for a CPU tensor whose elements fill the memory they span
(contiguous, transposed or permuted, expanded): that span of its storage travels
out of band and the exact strides are kept. A tensor with gaps (a strided slice)
is saved compact, with contiguous strides. A tensor on an accelerator is copied
to the CPU. Loading builds the tensor on the CPU over the blob's mapping
(``torch.frombuffer``, zero copy) and restores ``requires_grad``. Sparse,
quantized, nested and meta tensors are left to pickle.
"""

from __future__ import annotations

import pickle
from typing import Any

import torch


def encode(value: torch.Tensor) -> Any:
    """The codec state ``(dtype, shape, strides, requires_grad, bytes)``, or ``NotImplemented``."""
    if value.layout != torch.strided or value.is_quantized or value.is_nested or value.is_meta:
        return NotImplemented
    t = value.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
    shape, strides = tuple(t.shape), tuple(t.stride())
    numel = t.numel()
    if numel == 0:
        flat = torch.empty(0, dtype=t.dtype)
    else:
        span = 1 + sum((n - 1) * s for n, s in zip(shape, strides))
        if span <= numel:  # no gaps: save the span as it lies in memory
            flat = t.as_strided((span,), (1,), t.storage_offset())
        else:
            t = t.contiguous()
            strides = tuple(t.stride())
            flat = t.reshape(-1)
    # The uint8 numpy view shares the tensor's memory and keeps it alive.
    raw = flat.view(torch.uint8).numpy()
    return str(t.dtype).removeprefix("torch."), shape, strides, value.requires_grad, pickle.PickleBuffer(raw)


def decode(state: Any) -> torch.Tensor:
    """The tensor ``encode`` saved, on the CPU, sharing ``state``'s buffer."""
    dtype_name, shape, strides, requires_grad, data = state
    dtype = getattr(torch, dtype_name)
    view = memoryview(data)
    if view.nbytes == 0:
        flat = torch.empty(0, dtype=dtype)
    else:
        if view.readonly:  # only small in-band bytes: torch.frombuffer wants writable memory
            view = memoryview(bytearray(view))
        flat = torch.frombuffer(view, dtype=torch.uint8).view(dtype)
    out = flat.as_strided(shape, strides)
    if requires_grad:
        out.requires_grad_(True)
    return out
