"""n-step rows: the window against returns summed by hand, through the runner and a resume."""

import numpy as np
import pytest

from predprey.config import ConfigError, load_config
from predprey.learn.nstep import NStepWindow
from predprey.runner import Runner


def _reference(rew, nxt, term, done, n, gamma):
    """Row t of env e by definition: sum_{j<k} gamma^j r_{t+j}, k = n or up to the episode end."""
    S, E = rew.shape
    out = []
    for t in range(S - n + 1):
        for e in range(E):
            R, k = 0.0, 0
            while True:
                R += gamma**k * rew[t + k, e]
                k += 1
                if done[t + k - 1, e] or k == n:
                    break
            out.append((t, e, R, nxt[t + k - 1, e], term[t + k - 1, e], gamma**k))
    return out


@pytest.mark.parametrize("n", [1, 2, 5])
def test_window_matches_returns_by_definition(n):
    rng = np.random.default_rng(n)
    S, E, gamma = 40, 3, 0.9
    rew = rng.normal(size=(S, E)).astype(np.float32)
    nxt = rng.normal(size=(S, E)).astype(np.float32)
    done = rng.random((S, E)) < 0.2
    term = (done & (rng.random((S, E)) < 0.5)).astype(np.float32)
    gamma_b = 0.5  # team b's own discount factor (algo.team_gamma)
    w = NStepWindow(n, {"a": gamma, "b": gamma_b})
    rows = []
    for s in range(S):
        r = w.push(
            {"rew/a": rew[s][:, None].copy(), "rew/b": -rew[s][:, None],
             "next_obs/a": nxt[s][:, None, None].copy(), "terminated": term[s].copy(),
             "obs/a": np.full((E, 1, 1), s, np.float32)},
            done[s],
        )  # fmt: skip
        assert (r is None) == (s < n - 1)  # E rows a step once the window is full
        if r is not None:
            rows += [(int(r["obs/a"][e, 0, 0]), e, r) for e in range(E)]
    ref = _reference(rew, nxt, term, done, n, gamma)
    ref_b = _reference(-rew, nxt, term, done, n, gamma_b)
    assert len(rows) == len(ref)
    for (t, e, r), (t2, e2, R, x, te, disc), (*_, R_b, _, _, disc_b) in zip(
        rows, ref, ref_b, strict=True
    ):
        assert (t, e) == (t2, e2)
        assert r["rew/a"][e, 0] == pytest.approx(R, rel=1e-5, abs=1e-5)
        assert r["rew/b"][e, 0] == pytest.approx(R_b, rel=1e-5, abs=1e-5)
        assert r["next_obs/a"][e, 0, 0] == x
        assert r["terminated"][e] == te
        assert r["discount/a"][e] == pytest.approx(disc, rel=1e-6)
        assert r["discount/b"][e] == pytest.approx(disc_b, rel=1e-6)


def test_one_discount_field_when_teams_share_gamma():
    w = NStepWindow(2, {"a": 0.9, "b": 0.9})
    step = {"rew/a": np.ones((1, 1)), "rew/b": np.ones((1, 1)), "terminated": np.zeros(1)}
    w.push({k: v.copy() for k, v in step.items()}, np.zeros(1, bool))
    row = w.push(step, np.zeros(1, bool))
    assert set(row) == {"rew/a", "rew/b", "terminated", "discount"}
    assert row["rew/b"][0, 0] == pytest.approx(1.9) and row["discount"][0] == pytest.approx(0.81)


def test_runner_rows_and_resume():
    """Through the tag runner: rows arrive n - 1 steps late, carry gamma^k, and a runner
    restored from a state dict continues with the same rows as the one it came from."""
    cfg = load_config("configs/tag.yaml", ["algo.n_step=3", "env.num_envs=4"])
    a, b = Runner(cfg, seed=1), Runner(cfg, seed=1)
    rng = np.random.default_rng(0)
    assert len(a.collect(2, 0.1, rng, random_actions=True).transitions["terminated"]) == 0
    first = a.collect(1, 0.1, rng, random_actions=True)
    assert len(first.transitions["terminated"]) == 4  # step 0's rows, once step 2 is in
    assert np.allclose(first.transitions["discount"], 0.95**3)
    b.load_state_dict(a.state_dict())
    discounts = set()
    for _ in range(30):  # past an episode end (25 steps): shorter rows at the end
        s = rng.bit_generator.state
        ra = a.collect(1, 0.1, rng, random_actions=True).transitions
        rng.bit_generator.state = s
        rb = b.collect(1, 0.1, rng, random_actions=True).transitions
        for k in ra:
            np.testing.assert_array_equal(ra[k], rb[k])
        discounts |= {round(float(d), 6) for d in ra["discount"]}
    assert discounts == {round(0.95**k, 6) for k in (1, 2, 3)}


def test_runner_rows_with_a_team_gamma():
    cfg = load_config("configs/tag.yaml", ["algo.n_step=3", "env.num_envs=4",
                                           "algo.team_gamma={prey: 0.5}"])  # fmt: skip
    runner, rng = Runner(cfg, seed=1), np.random.default_rng(0)
    rows = runner.collect(3, 0.1, rng, random_actions=True).transitions
    assert "discount" not in rows
    assert np.allclose(rows["discount/prey"], 0.5**3)
    assert np.allclose(rows["discount/predator"], 0.95**3)


def test_n_step_refused_with_ray_runners():
    with pytest.raises(ConfigError, match="n_step"):
        load_config("configs/tag.yaml", ["algo.n_step=3", "distributed.runners=2"])
