"""How well each actor network can imitate a scripted controller from the config's view.

A probe of what a policy network can represent, apart from reinforcement learning: states are
visited by the scripted controller with a share of random actions (`--random`), and each
network (the MLP and entity attention, the config's sizes) is fitted to the controller's
actions by regression (Adam, minibatches of 256) for `--steps` steps. The test
error on states of other episodes, against predicting the mean action, gives R^2 per network
(one JSON line each). E.g. whether entity attention reads spread's `target` controller (the
nearest landmark no other agent is nearer to) from the original document's view:

    predprey bench imitate --config configs/spread_scale.yaml --controller target
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="world, view and network sizes")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=V",
                   help="override a key of --config")  # fmt: skip
    p.add_argument(
        "--controller", default="target", help="scripted policy to imitate (default target)"
    )
    p.add_argument("--team", default=None, help="the imitating team (default: the first)")
    p.add_argument("--steps", type=int, default=2000, help="regression steps per network")
    p.add_argument("--envs", type=int, default=256, help="envs stepped to collect states")
    p.add_argument("--vector-steps", type=int, default=200, help="collection steps (training)")
    p.add_argument("--random", type=float, default=0.3,
                   help="share of agents acting randomly each step (state coverage)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")


def collect(env, team: str, controller: str, vector_steps: int, random: float, rng):
    """(obs [R, n, D], the controller's actions [R, n, K]) over `vector_steps` steps of every
    env; each agent acts randomly with probability `random` (the other teams: their
    controller too, where the world has others)."""
    import numpy as np

    from predprey.env import scripted

    obs_rows, act_rows = [], []
    obs = env.reset()
    for _ in range(vector_steps):
        actions = {}
        for t in env.teams:
            a = scripted.act(controller if t == team else "random", env, t, rng)
            if t == team:
                obs_rows.append(obs[t].copy())
                act_rows.append(a.astype(np.float32))
                noise = rng.uniform(-1, 1, a.shape)
                a = np.where(rng.random((*a.shape[:2], 1)) < random, noise, a)
            actions[t] = a.astype(np.float32)
        obs = env.step(actions).obs
    return np.concatenate(obs_rows), np.concatenate(act_rows)


def fit(net, x, y, x_test, y_test, steps: int, seed: int) -> dict:
    """Regress net(x) on y; test MSE, the mean-prediction MSE and R^2, and the CPU seconds."""
    import torch

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    c0 = time.process_time()
    for _ in range(steps):
        rows = torch.randint(0, x.shape[0], (256,), generator=g)
        loss = (net(x[rows]) - y[rows]).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        mse = float((net(x_test) - y_test).pow(2).mean())
    base = float((y_test - y.mean((0, 1))).pow(2).mean())
    return {
        "test_mse": round(mse, 5),
        "mean_mse": round(base, 5),
        "r2": round(1 - mse / base, 3),
        "cpu_s": round(time.process_time() - c0, 1),
    }


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from predprey.config import ConfigError, load_config
    from predprey.env.scripted import SCRIPTED
    from predprey.learn.attention import AttentionActor
    from predprey.learn.networks import Actor
    from predprey.learn.spec import team_specs
    from predprey.threads import limit_threads

    limit_threads(args.threads)
    cfg = load_config(args.config, args.overrides)
    env = cfg.env.make(num_envs=args.envs, seed=args.seed)
    teams = {t.name: t for t in team_specs(env)}
    name = args.team or next(iter(teams))
    if name not in teams:
        raise ConfigError(f"bench imitate --team: {name!r} is not one of {list(teams)}")
    if args.controller not in SCRIPTED:
        raise ConfigError(f"bench imitate --controller: {args.controller!r} is not one of "
                          f"{list(SCRIPTED)}")  # fmt: skip
    if not teams[name].entities:
        raise ConfigError("bench imitate fits an attention network too, which reads the "
                          "entity slots of env.obs: local; this config's team "
                          f"{name!r} has none")  # fmt: skip
    rng = np.random.default_rng(args.seed)
    x, y = collect(env, name, args.controller, args.vector_steps, args.random, rng)
    x_test, y_test = collect(env, name, args.controller, max(1, args.vector_steps // 10),
                             args.random, rng)  # fmt: skip
    x, y, x_test, y_test = (torch.from_numpy(a) for a in (x, y, x_test, y_test))
    algo = dataclasses.replace(cfg.algo, share_params=True)
    mlp = dataclasses.replace(algo, network="mlp")
    attention = dataclasses.replace(algo, network="attention")
    nets = {
        "mlp": lambda g: Actor(teams[name], mlp, g),
        "attention": lambda g: AttentionActor(teams[name], attention, g),
    }
    for label, build in nets.items():
        net = build(torch.Generator().manual_seed(args.seed))
        res = fit(net, x, y, x_test, y_test, args.steps, args.seed)
        print(json.dumps({
            "bench": "imitate",
            "network": label,
            "controller": args.controller,
            "team": name,
            **res,
            "params": sum(p.numel() for p in net.parameters()),
            "train_rows": int(x.shape[0]),
            "steps": args.steps,
            "config": args.config,
        }), flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    raise SystemExit(run(parser.parse_args()))
