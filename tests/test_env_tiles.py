"""Tiled stepping (VecEnv's `tile`) gives bitwise the results of stepping all envs at once."""

import resource
import sys

import numpy as np
import pytest

from predprey.env import make_scenario
from predprey.env.vec import VecEnv, keep_freed_memory

E = 37  # tiles of 8: four full ones and a short last one


def _run(name, params, tile, fused=True, steps=60):
    env = VecEnv(make_scenario(name, **params), num_envs=E, seed=3, fused=fused, tile=tile)
    rng = np.random.default_rng(7)
    out = [env.reset()]
    for _ in range(steps):
        acts = {t: rng.uniform(-1.3, 1.3, (E, n, 2)) for t, n in env.team_sizes.items()}
        res = env.step(acts)
        info = {k: v for k, v in res.info.items() if k != "metrics"}
        out.append((res.obs, res.reward, res.done, info, res.info["metrics"]))
    s = env.state
    out.append((s.pos, s.vel, s.landmark_pos, s.t, s.alive))
    return env, out


def _flat(x, path="out"):
    """Every array in a nest of tuples, lists and dicts, with where it lies."""
    if isinstance(x, dict):
        return [p for k in sorted(x) for p in _flat(x[k], f"{path}.{k}")]
    if isinstance(x, tuple | list):
        return [p for i, v in enumerate(x) for p in _flat(v, f"{path}[{i}]")]
    return [(path, np.asarray(x))]


@pytest.mark.parametrize(
    "name,params,fused",
    [
        ("tag", dict(preset="mpe"), True),  # the fused kernel
        ("tag", dict(preset="mpe"), False),  # the same scenario on the generic path
        ("tag", dict(preset="seed", episode_length=30, remove_caught=True), True),
        ("tag", dict(preset="seed", obs="local"), True),
        ("spread", dict(num_agents=3), True),
        ("spread", dict(num_agents=5, obs="local", target_rule="matched", density=1.0), True),
    ],
)
def test_tiled_steps_equal_untiled_bitwise(name, params, fused):
    tiled_env, tiled = _run(name, params, tile=8, fused=fused)
    whole_env, whole = _run(name, params, tile=E, fused=fused)
    assert tiled_env.fused == whole_env.fused == (fused and params.get("preset") == "mpe")
    a, b = _flat(tiled), _flat(whole)
    assert [p for p, _ in a] == [p for p, _ in b]
    for (path, x), (_, y) in zip(a, b, strict=True):
        assert x.shape == y.shape and x.dtype == y.dtype, path
        assert np.array_equal(x, y, equal_nan=True), path
    assert np.any(whole[-1][3] < 60)  # episodes ended and restarted along the way


def test_tile_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="tile must be a positive integer"):
        VecEnv(make_scenario("tag"), num_envs=4, tile=0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc, getrusage")
def test_large_batches_step_without_page_faults():
    """A step's megabytes of outputs reuse freed heap memory instead of faulting in fresh
    pages (`vec.keep_freed_memory`). Untuned, stepping 1,024 and 8,192 envs in turns (as
    `bench env --rounds` does) costs ~40 minor faults per 8,192-env step."""
    envs = [VecEnv(make_scenario("tag"), num_envs=n, seed=0) for n in (1024, 8192)]
    assert keep_freed_memory()
    rng = np.random.default_rng(0)
    faults = 0
    for turn in range(4):
        for env in envs:
            before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
            for _ in range(30):  # a reset of every env among them
                env.step({t: rng.uniform(-1, 1, (env.num_envs, n, 2))
                          for t, n in env.team_sizes.items()})  # fmt: skip
            if env.num_envs == 8192 and turn > 0:  # the first turn grows the heap
                faults += resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before
    assert faults < 90, f"{faults} minor page faults in 90 steps of 8,192 envs"
