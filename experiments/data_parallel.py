"""Experiment (issue 38): the MADDPG update data-parallel over the 2 cores.

A second process holds a replica of the learner (the same seed, so the same weights). Each
update, this process samples the batch, hands the worker its rows through shared memory,
and both run `Learner.update` on their rows; after each backward (`Learner._step`) they
swap gradients and both apply the same weighted sum (in the same order, so the replicas
stay equal bit for bit), then clip and step Adam as usual. DP_WORKER_ROWS (default 128 of
256) sets the split; DP_SCALE=2 gives each process a whole batch of its own (512 rows an
update). Run as the CLI:

    PYTHONPATH=src python experiments/data_parallel.py train --config configs/tag_fast.yaml \
        --out R --seed S --time-budget 60
"""
import os, sys, time, numpy as np, torch, torch.multiprocessing as mp
from multiprocessing import shared_memory
WORKER_ROWS = int(os.environ.get("DP_WORKER_ROWS", "128"))  # rows of each batch for the worker
SCALE = int(os.environ.get("DP_SCALE", "1"))  # 2: each process its own full batch

class Exchange:
    def __init__(self, L, me, name, create, w_main, w_worker):
        self.me, self.L, self.k = me, L, 0
        self.sizes = {r: sum(t.numel() for t in L.stacks[r].tensors()) for r in ("critics", "actors")}
        n = max(self.sizes.values())
        self.shm = shared_memory.SharedMemory(name=name, create=create, size=2 * 2 * n * 4 + 64)
        self.buf = np.ndarray((2, 2, n), np.float32, self.shm.buf[64:])
        self.ctr = np.ndarray((4,), np.int64, self.shm.buf[:32])
        if create: self.ctr[:] = 0
        self.w = (w_main, w_worker)
    def reduce(self, role):
        ts, n = self.L.stacks[role].tensors(), self.sizes[role]
        self.k += 1; par = self.k % 2
        mine = torch.from_numpy(self.buf[self.me, par, :n])
        torch.cat([t.grad.reshape(-1) for t in ts], out=mine)
        self.ctr[self.me] = self.k
        other = 1 - self.me
        while self.ctr[other] < self.k:
            if self.ctr[3]: return
            os.sched_yield()
        a = torch.from_numpy(self.buf[0, par, :n]); b = torch.from_numpy(self.buf[1, par, :n])
        tot = a * self.w[0] + b * self.w[1]  # the same order in both processes
        off = 0
        for t in ts:
            t.grad.copy_(tot[off:off + t.numel()].view_as(t)); off += t.numel()

def patch(L, ex):
    from predprey.learn.optim import clip_grad_norm_per_model
    def _step(role, loss):
        stack = L.stacks[role]
        stack.drop_grads(); loss.backward(); ex.reduce(role)
        clip_grad_norm_per_model(stack.tensors(), L.algo.grad_clip, stack.module_grads())
        (L.critic_adam if role == "critics" else L.actor_adam).step()
    L._step = _step

def weights(B):
    if SCALE == 2: return 0.5, 0.5
    return (B - WORKER_ROWS) / B, WORKER_ROWS / B

def worker(cfg_dict, teams, seed, name, bname, spec_keys):
    torch.set_num_threads(1)
    from predprey.config import config_from_dict
    config = config_from_dict(cfg_dict)
    from predprey.learn.maddpg import Learner
    L = Learner(teams, config.algo, seed=seed)
    B = config.algo.batch_size
    ex = Exchange(L, 1, name, False, *weights(B)); patch(L, ex)
    bshm = shared_memory.SharedMemory(name=bname)
    fields, j = make_fields(bshm, spec_keys), 0
    while True:
        j += 1
        ppid = os.getppid(); spins = 0
        while ex.ctr[2] < j:
            if ex.ctr[3]: return
            spins += 1
            if spins % 100000 == 0 and os.getppid() != ppid: return
            os.sched_yield()
        L.update({k: v.copy() for k, v in fields.items()})

def make_fields(bshm, spec_keys):
    out, off = {}, 0
    for k, shape, dtype in spec_keys:
        a = np.ndarray(shape, dtype, bshm.buf[off:]); out[k] = a
        off += a.nbytes
    return out

import predprey.train as T
orig_init, orig_learn = T.LocalSource.__init__, T.LocalSource.learn
def init(self, config, loop):
    orig_init(self, config, loop)
    from predprey import seeding
    B = config.algo.batch_size
    rows = B if SCALE == 2 else WORKER_ROWS
    spec_keys = [(k, (rows, *shape), np.dtype(dt)) for k, (shape, dt) in self.runner.spec.items()]
    size = sum(int(np.prod(s)) * d.itemsize for _, s, d in spec_keys) + 64
    tag = f"dp{os.getpid()}"
    self._ex = Exchange(self.learner, 0, tag, True, *weights(B)); patch(self.learner, self._ex)
    self._bshm = shared_memory.SharedMemory(name=tag + "b", create=True, size=size)
    self._fields = make_fields(self._bshm, spec_keys)
    self._j = 0
    ctx = mp.get_context("spawn")
    self._proc = ctx.Process(target=worker, args=(config.to_dict(), loop.teams, seeding.streams(config.train.seed).learner, tag, tag + "b", spec_keys), daemon=True)
    self._proc.start()
def learn(self, n_updates, publish):
    B = self.config.algo.batch_size
    for _ in range(n_updates):
        t0 = time.perf_counter()
        if SCALE == 2:
            batch = self.buffer.sample(2 * B, self.rng_sample)
            mine = {k: v[:B] for k, v in batch.items()}; theirs = {k: v[B:] for k, v in batch.items()}
        else:
            batch = self.buffer.sample(B, self.rng_sample)
            h = B - WORKER_ROWS
            mine = {k: v[:h] for k, v in batch.items()}; theirs = {k: v[h:] for k, v in batch.items()}
        for k, v in theirs.items(): self._fields[k][...] = v
        self._j += 1; self._ex.ctr[2] = self._j
        t1 = time.perf_counter()
        self.loop.add_losses(self.learner.update(mine))
        self.seconds["buffer"] += t1 - t0
        self.seconds["learn"] += time.perf_counter() - t1
T.LocalSource.__init__, T.LocalSource.learn = init, learn
if __name__ == "__main__":
    from predprey.cli import main
    rc = main(sys.argv[1:])
    os._exit(rc)
