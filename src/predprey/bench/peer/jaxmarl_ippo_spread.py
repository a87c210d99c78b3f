"""Peer anchor for on-policy training: JaxMARL's IPPO recipe (PureJaxRL PPO, one actor-critic
shared by all agents, discrete actions; the config of JaxMARL baselines/IPPO/ippo_ff_mpe.yaml:
lr 2.5e-4, 16 envs x 128 steps, 4 epochs x 4 minibatches, gamma .99, lambda .95, clip .2,
ent .01, vf .5, grad-norm .5, tanh 64x64) on MPE_simple_spread_v3, jitted on the CPU, run for a
wall-clock budget. Learning rate is constant (the baseline anneals over 1e7 steps; within a few
minutes that is ~constant).
Prints JSON lines: seconds, env_steps (vector steps x envs), env-steps/s, and the mean episode
return per agent of the episodes finished in the last update (LogWrapper: the sum of one
agent's 25 rewards, as mpe2 reports it).
usage: python jaxmarl_ippo_spread.py SECONDS [NUM_ENVS] [SEED]
Shipped with predprey as package data, not as a module: `predprey bench jaxmarl` runs it with
the `--python` given (a Python with jax[cpu] jaxmarl flax optax), which needs no predprey."""

import json
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import jaxmarl
import numpy as np
import optax
from flax.linen.initializers import constant, orthogonal
from flax.training.train_state import TrainState
from jaxmarl.wrappers.baselines import LogWrapper

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 120.0
NUM_ENVS = int(sys.argv[2]) if len(sys.argv) > 2 else 16
SEED = int(sys.argv[3]) if len(sys.argv) > 3 else 0
C = dict(
    LR=2.5e-4,
    NUM_STEPS=128,
    EPOCHS=4,
    MINIBATCHES=4,
    GAMMA=0.99,
    LAM=0.95,
    CLIP=0.2,
    ENT=0.01,
    VF=0.5,
    MAX_GRAD=0.5,
)


class AC(nn.Module):
    n_act: int

    @nn.compact
    def __call__(self, x):
        def mlp(h, out, scale):
            for _ in range(2):
                h = nn.tanh(
                    nn.Dense(64, kernel_init=orthogonal(np.sqrt(2)), bias_init=constant(0.0))(h)
                )
            return nn.Dense(out, kernel_init=orthogonal(scale), bias_init=constant(0.0))(h)

        return mlp(x, self.n_act, 0.01), mlp(x, 1, 1.0)[..., 0]


env = LogWrapper(jaxmarl.make("MPE_simple_spread_v3"))
agents, n_agents = env.agents, env.num_agents
A = n_agents * NUM_ENVS  # actors
net = AC(env.action_space(agents[0]).n)


def stack(d):
    return jnp.stack([d[a] for a in agents]).reshape(A, -1)


def unstack(x):
    x = x.reshape(n_agents, NUM_ENVS)
    return {a: x[i] for i, a in enumerate(agents)}


def init(rng):
    r1, r2 = jax.random.split(rng)
    params = net.init(r1, jnp.zeros(env.observation_space(agents[0]).shape))
    tx = optax.chain(optax.clip_by_global_norm(C["MAX_GRAD"]), optax.adam(C["LR"], eps=1e-5))
    ts = TrainState.create(apply_fn=net.apply, params=params, tx=tx)
    obs, st = jax.vmap(env.reset)(jax.random.split(r2, NUM_ENVS))
    return ts, st, obs


@jax.jit
def update(carry):
    ts, st, obs, rng = carry

    def step(c, _):
        ts, st, obs, rng = c
        rng, ra, rs = jax.random.split(rng, 3)
        ob = stack(obs)
        logits, v = net.apply(ts.params, ob)
        act = jax.random.categorical(ra, logits)
        logp = jax.nn.log_softmax(logits)[jnp.arange(A), act]
        obs2, st2, rew, done, info = jax.vmap(env.step)(
            jax.random.split(rs, NUM_ENVS), st, unstack(act)
        )
        tr = dict(
            done=stack(done)[:, 0],
            act=act,
            v=v,
            r=stack(rew)[:, 0],
            logp=logp,
            obs=ob,
            ret=info["returned_episode_returns"].reshape(-1),
            fin=info["returned_episode"].reshape(-1),
        )
        return (ts, st2, obs2, rng), tr

    (ts, st, obs, rng), traj = jax.lax.scan(step, (ts, st, obs, rng), None, C["NUM_STEPS"])
    _, last_v = net.apply(ts.params, stack(obs))

    def gae(c, t):
        g, nv = c
        delta = t["r"] + C["GAMMA"] * nv * (1 - t["done"]) - t["v"]
        g = delta + C["GAMMA"] * C["LAM"] * (1 - t["done"]) * g
        return (g, t["v"]), g

    _, adv = jax.lax.scan(gae, (jnp.zeros_like(last_v), last_v), traj, reverse=True)
    tgt = adv + traj["v"]

    def loss_fn(p, b):
        logits, v = net.apply(p, b["obs"])
        lsm = jax.nn.log_softmax(logits)
        logp = jnp.take_along_axis(lsm, b["act"][:, None], 1)[:, 0]
        vc = b["v"] + (v - b["v"]).clip(-C["CLIP"], C["CLIP"])
        vl = 0.5 * jnp.maximum((v - b["tgt"]) ** 2, (vc - b["tgt"]) ** 2).mean()
        ratio = jnp.exp(logp - b["logp"])
        a = (b["adv"] - b["adv"].mean()) / (b["adv"].std() + 1e-8)
        pl = -jnp.minimum(ratio * a, jnp.clip(ratio, 1 - C["CLIP"], 1 + C["CLIP"]) * a).mean()
        ent = -(jnp.exp(lsm) * lsm).sum(-1).mean()
        return pl + C["VF"] * vl - C["ENT"] * ent

    batch = dict(obs=traj["obs"], act=traj["act"], v=traj["v"], logp=traj["logp"], adv=adv, tgt=tgt)
    n = C["NUM_STEPS"] * A
    batch = jax.tree.map(lambda x: x.reshape((n,) + x.shape[2:]), batch)

    def epoch(c, _):
        ts, rng = c
        rng, rp = jax.random.split(rng)
        perm = jax.random.permutation(rp, n)
        mbs = jax.tree.map(lambda x: x[perm].reshape((C["MINIBATCHES"], -1) + x.shape[1:]), batch)

        def mb(ts, b):
            return ts.apply_gradients(grads=jax.grad(loss_fn)(ts.params, b)), None

        ts, _ = jax.lax.scan(mb, ts, mbs)
        return (ts, rng), None

    (ts, rng), _ = jax.lax.scan(epoch, (ts, rng), None, C["EPOCHS"])
    fin = traj["fin"]
    # LogWrapper's returned_episode_returns: per agent, the sum of its rewards over the episode.
    ret = jnp.where(fin, traj["ret"], 0).sum() / jnp.maximum(fin.sum(), 1)
    return (ts, st, obs, rng), ret


def main():
    rng = jax.random.PRNGKey(SEED)
    rng, r0 = jax.random.split(rng)
    ts, st, obs = init(r0)
    carry = (ts, st, obs, rng)
    carry, _ = update(carry)  # compile
    jax.block_until_ready(carry)
    t0, steps, k = time.perf_counter(), 0, 0
    while time.perf_counter() - t0 < SECONDS:
        carry, ret = update(carry)
        ret = float(ret)
        steps += C["NUM_STEPS"] * NUM_ENVS
        k += 1
        el = time.perf_counter() - t0
        if k % 20 == 0 or el >= SECONDS:
            print(
                json.dumps(
                    dict(
                        seconds=round(el, 1),
                        env_steps=steps,
                        env_steps_per_s=round(steps / el),
                        return_per_agent=round(ret, 2),
                    )
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
