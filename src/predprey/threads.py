"""One knob for the threads a process computes with: torch's intra-op pool and NumPy's BLAS
(the runners act through NumPy matmuls). Both default to every core; on a busy machine
BLAS threads spin waiting for a core, which made acting 7x slower (spread PPO, 1024 envs,
a second process on the other core), so `train.torch_threads` limits both."""

from __future__ import annotations


def limit_threads(n: int) -> None:
    """At most `n` >= 1 threads for torch and for NumPy's BLAS in this process."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(n, user_api="blas")  # applies now, process-wide
