"""The matmul floor of a learner step: the matrix products it performs, timed alone.

`capture` runs a step under a TorchDispatchMode and records every matrix product that
reaches the dispatcher (forward and backward, every critic and actor, the target networks'
forwards, the batched-across-agents bmm/baddbmm included) with its operands' shapes,
strides and scalars: the list follows the networks and the config, nothing is written down
by hand. `MatmulFloor` allocates every operand and output once and replays the products
back to back as plain torch calls with `out=`: what the step would cost if it were nothing
but its matmuls, at the same shapes, layouts and threads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
# product op -> (torch function taking out=, how many leading tensor operands)
PRODUCTS = {
    aten.mm.default: (torch.mm, 2),
    aten.addmm.default: (torch.addmm, 3),
    aten.bmm.default: (torch.bmm, 2),
    aten.baddbmm.default: (torch.baddbmm, 3),
}


class Product(NamedTuple):
    op: str  # mm | addmm | bmm | baddbmm
    operands: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]  # (shape, stride) each
    out_shape: tuple[int, ...]
    scalars: tuple[tuple[str, float], ...]  # beta, alpha where given
    flop: int  # 2 x m x k x n (x batch)


class _Recorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.products: list[Product] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in PRODUCTS:
            _, n = PRODUCTS[func]
            ops = tuple((tuple(a.shape), tuple(a.stride())) for a in args[:n])
            a, b = args[n - 2], args[n - 1]  # the two factors: [.., m, k] x [.., k, n]
            batch = a.shape[0] if a.dim() == 3 else 1
            flop = 2 * batch * a.shape[-2] * a.shape[-1] * b.shape[-1]
            scalars = tuple((k, float(v)) for k, v in kwargs.items() if k in ("beta", "alpha"))
            name = func.__name__.split(".")[0]
            self.products.append(Product(name, ops, tuple(out.shape), scalars, flop))
        return out


def capture(step: Callable[[], object]) -> list[Product]:
    """The matrix products `step()` performs, in order (forward and backward)."""
    with _Recorder() as rec:
        step()
    return rec.products


class MatmulFloor:
    """The captured products on preallocated operands (random values), replayed with out=."""

    def __init__(self, products: list[Product], seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.products = products
        self.calls = []
        for p in products:
            fn, _ = PRODUCTS[getattr(aten, p.op).default]
            operands = [_strided(shape, stride, g) for shape, stride in p.operands]
            out = torch.empty(p.out_shape)
            self.calls.append((fn, operands, dict(p.scalars), out))
        self.flop = sum(p.flop for p in products)

    def run(self) -> None:
        for fn, operands, scalars, out in self.calls:
            fn(*operands, **scalars, out=out)

    def by_shape(self) -> list[tuple[str, int, int]]:
        """(op and shapes, count, flop) per distinct product, most flop first."""
        rows: dict[str, list[int]] = {}
        for p in self.products:
            key = f"{p.op} " + " x ".join(str(list(s)) for s, _ in p.operands)
            row = rows.setdefault(key, [0, 0])
            row[0] += 1
            row[1] += p.flop
        return sorted(((k, c, f) for k, (c, f) in rows.items()), key=lambda r: -r[2])


def _strided(shape, stride, g) -> torch.Tensor:
    """A tensor of `shape` with the captured `stride` (transposed views, expanded biases and
    slices keep their memory layout, which matters to the matmul's speed)."""
    extent = 1 + sum((n - 1) * s for n, s in zip(shape, stride, strict=True) if n > 0)
    base = torch.randn(extent, generator=g)
    return base.as_strided(shape, stride)
