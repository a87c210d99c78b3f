"""Population training, the parts without a training run: the `population` config
section, and the math of selection, mutation, initial draws, sync schedule and pacing."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from predprey.config import ConfigError, OffPolicyConfig, config_from_dict, load_config
from predprey.config.population import HYPERPARAMETERS, PopulationConfig
from predprey.learn.rate_limiter import UpdateCredit
from predprey.population import evolution as evo
from predprey.population.member import MemberLimiter, MemberPace, changed_pace, member_budget
from train_helpers import ROOT


# -- config ---------------------------------------------------------------------------
def test_absent_population_is_one_learner_and_not_written():
    cfg = config_from_dict({})
    assert cfg.population is None
    assert "population" not in cfg.to_dict()


def test_population_section_round_trips_and_is_typed():
    cfg = config_from_dict({"population": {"size": 3, "mode": "genetic", "sync_every": "1e4",
                                           "init_actor_lr": [1e-5, 1e-2]}})  # fmt: skip
    assert cfg.population.size == 3 and cfg.population.sync_every == 10_000
    assert cfg.population.init_actor_lr == (1e-5, 1e-2)
    again = config_from_dict(cfg.to_dict())
    assert again.population == cfg.population


@pytest.mark.parametrize(
    "section, needle",
    [
        ({"sise": 3}, "unknown key 'population.sise' (did you mean 'size'?)"),
        ({"mode": "darwin"}, "mode: unknown mode 'darwin'"),
        ({"size": 0}, "size must be >= 1"),
        ({"size": 3, "tournament_size": 4}, "tournament_size must be in [1, size=3]"),
        ({"size": 3, "elitism": 3}, "elitism must be in [0, size - 1]"),
        ({"sync_decay": -0.5}, "sync_decay must be >= 0"),
        ({"evolve_every": 0}, "evolve_every must be >= 1"),
        ({"p_none": 0, "p_weights": 0, "p_hyperparameter": 0}, "not all 0"),
        ({"shrink": 1.2}, "0 < shrink <= 1 <= grow"),
        ({"mutate": ["gamma"]}, "mutate: unknown hyperparameter 'gamma'"),
        ({"mutate": []}, "set p_hyperparameter to 0"),
        ({"actor_lr_range": [1e-2, 1e-5]}, "actor_lr_range must be [low, high]"),
        ({"batch_size_range": [64]}, "batch_size_range must be [low, high]"),
        ({"init_critic_lr": [1e-2, 1e-5]}, "init_critic_lr must be [low, high]"),
        ({"init_batch_size": [64, 0]}, "init_batch_size values must be > 0"),
        ({"size": "four"}, "population.size: expected an integer"),
        ({"hidden_range": [64, 16]}, "hidden_range must be [low, high]"),
        ({"init_hidden": [0, 16]}, "init_hidden values must be > 0"),
        ({"init_hidden": ["wide"]}, "population.init_hidden"),
    ],
)
def test_bad_population_config_names_the_key(section, needle):
    with pytest.raises(ConfigError) as e:
        config_from_dict({"population": section})
    assert needle in str(e.value)


def test_hidden_mutation_needs_layers_of_one_width():
    section = {"mutate": ["hidden"]}
    with pytest.raises(ConfigError, match=r"algo.hidden \[64, 32\] has layers of different"):
        config_from_dict({"algo": {"hidden": [64, 32]}, "population": section})
    assert config_from_dict({"algo": {"hidden": [64, 32]}, "population": {}}).population


def test_tag_population_config_is_the_search_from_a_bad_start():
    cfg = load_config(ROOT / "configs" / "tag_population.yaml")
    pop = cfg.population
    assert (pop.size, pop.mode) == (4, "evolve")
    assert pop.init_actor_lr == (1e-5, 1e-2)
    assert min(pop.init_batch_size) == 64 and max(pop.init_batch_size) == 4096


# -- selection ------------------------------------------------------------------------
def test_elites_are_the_fittest_ties_to_the_lower_index():
    assert evo.elites([0.1, 0.9, 0.5, 0.9], 2) == [1, 3]
    assert evo.elites([0.1, 0.9, 0.5, 0.9], 0) == []


def test_tournament_winner_is_the_fittest_contestant_and_elites_keep_their_own():
    fitness = [0.1, 0.9, 0.5, 0.3]
    contestants = np.array([[1, 2], [0, 3], [0, 3], [2, 0]])
    # elite: member 1 keeps its own (though its row has no 1); others take their winner
    assert evo.tournament_parents(fitness, contestants, elitism=1) == [1, 1, 3, 2]
    assert evo.tournament_parents(fitness, contestants, elitism=0) == [1, 3, 3, 2]
    assert evo.tournament_parents(fitness, contestants, elitism=2) == [1, 1, 2, 2]


def test_seeded_tournaments_hold_their_invariants():
    rng = np.random.default_rng(0)
    for _ in range(200):
        P = int(rng.integers(2, 8))
        k = int(rng.integers(1, P + 1))
        elitism = int(rng.integers(0, P))
        fitness = list(rng.normal(size=P))
        contestants = evo.draw_contestants(P, k, rng)
        assert contestants.shape == (P, k)
        assert all(len(set(row)) == k for row in contestants)  # without replacement
        parents = evo.tournament_parents(fitness, contestants, elitism)
        elite = evo.elites(fitness, elitism)
        for i, p in enumerate(parents):
            if i in elite:
                assert p == i
            else:
                assert p in contestants[i] and fitness[p] == max(fitness[j] for j in contestants[i])
    # the same seed draws the same contestants
    a = evo.draw_contestants(5, 2, np.random.default_rng(3))
    b = evo.draw_contestants(5, 2, np.random.default_rng(3))
    assert (a == b).all()


def test_rank_sum_weighs_every_team_alike():
    # predators: member 2 best; prey (higher = better): member 0 best
    joint = evo.rank_sum({"predator": [0.0, 1.0, 100.0], "prey": [-0.1, -0.5, -0.9]})
    assert joint == [2.0, 2.0, 2.0]
    assert evo.rank_sum({"agent": [3.0, 1.0, 2.0]}) == [2.0, 0.0, 1.0]


# -- mutation and first draws ---------------------------------------------------------
def test_mutations_stay_inside_their_ranges():
    pop = PopulationConfig(size=4, batch_size_range=(64, 256), actor_lr_range=(1e-4, 1e-3),
                           env_steps_per_update_range=(10, 20), hidden_range=(16, 48),
                           mutate=tuple(HYPERPARAMETERS))  # fmt: skip
    rng = np.random.default_rng(1)
    hp = {"actor_lr": 1e-3, "critic_lr": 1e-3, "batch_size": 256,
          "exploration_noise": 0.1, "env_steps_per_update": 20, "hidden": 32}  # fmt: skip
    names = set()
    for _ in range(500):
        name, old, new = evo.mutate_hyperparameter(hp, pop, rng)
        lo, hi = getattr(pop, f"{name}_range")
        assert lo <= new <= hi and old == hp[name]
        if HYPERPARAMETERS[name] == "int":
            assert isinstance(new, int)
        elif lo < old * pop.shrink and old * pop.grow < hi:
            assert math.isclose(new, old * pop.shrink) or math.isclose(new, old * pop.grow)
        hp[name] = new
        names.add(name)
    assert names == set(HYPERPARAMETERS)
    only = PopulationConfig(size=2, mutate=("batch_size",))
    assert {evo.mutate_hyperparameter(hp, only, rng)[0] for _ in range(20)} == {"batch_size"}


def test_mutation_kind_follows_its_probabilities():
    rng = np.random.default_rng(2)
    pop = PopulationConfig(p_none=0.0, p_weights=1.0, p_hyperparameter=3.0)
    kinds = [evo.choose_mutation(pop, rng) for _ in range(4000)]
    assert "none" not in kinds
    assert 0.7 < kinds.count("hyperparameter") / len(kinds) < 0.8


def test_initial_draws_follow_the_init_ranges():
    pop = PopulationConfig(size=400, init_actor_lr=(1e-5, 1e-2), init_batch_size=(64, 4096),
                           init_exploration_noise=(0.2, 0.3))  # fmt: skip
    algo = OffPolicyConfig(critic_lr=3e-4, env_steps_per_update=50)
    hps = evo.initial_hyperparameters(algo, pop, np.random.default_rng(0))
    lrs = np.log10([h["actor_lr"] for h in hps])
    assert lrs.min() >= -5 and lrs.max() <= -2
    assert (lrs < -3.5).mean() == pytest.approx(0.5, abs=0.1)  # log-uniform: half below 10^-3.5
    assert {h["batch_size"] for h in hps} == {64, 4096}
    assert all(0.2 <= h["exploration_noise"] <= 0.3 for h in hps)
    assert {h["critic_lr"] for h in hps} == {3e-4} and {h["env_steps_per_update"] for h in hps} == {
        50
    }
    assert "hidden" not in pop.mutate and all("hidden" not in h for h in hps)  # opt-in


def test_hidden_width_is_a_hyperparameter_only_where_named():
    algo = OffPolicyConfig(hidden=(32, 32))
    rng = np.random.default_rng(0)
    drawn = PopulationConfig(size=50, init_hidden=(16, 64), mutate=("actor_lr",))
    assert {h["hidden"] for h in evo.initial_hyperparameters(algo, drawn, rng)} == {16, 64}
    mutated = PopulationConfig(size=2, mutate=("hidden",))
    assert [h["hidden"] for h in evo.initial_hyperparameters(algo, mutated, rng)] == [32, 32]
    name, old, new = evo.mutate_hyperparameter({"hidden": 32}, mutated, rng)
    assert name == "hidden" and old == 32 and new in (26, 40)  # x 0.8 or x 1.25, rounded


def test_sync_interval_grows_with_decay():
    assert [evo.sync_interval(n, 1000, 0.0) for n in range(3)] == [1000, 1000, 1000]
    assert [evo.sync_interval(n, 1000, 0.5) for n in range(3)] == [1000, 1500, 2250]


# -- pacing ---------------------------------------------------------------------------
def test_member_budgets_split_the_total():
    assert [member_budget(10, 3, k) for k in range(3)] == [4, 3, 3]
    assert sum(member_budget(1601, 4, k) for k in range(4)) == 1601


def test_member_pace_is_update_credit_until_a_change_then_pays_only_new_steps():
    cfg = config_from_dict({"env": {"num_envs": 4}, "algo": {"batch_size": 64,
                            "env_steps_per_update": 8}, "buffer": {"warmup": 200}})  # fmt: skip
    credit, pace = UpdateCredit(8, 64, 200, 4), MemberPace(cfg)
    for inserted in range(0, 2000, 4):
        for updates in (0, 10, 100):
            sampled = updates * 64
            assert pace.batches_allowed(inserted, sampled) == credit.batches_allowed(
                inserted, sampled
            )
    # after a change at 1000 env steps and 80 updates to 4 env steps per update
    cfg4 = cfg.replace(algo=cfg.algo.__class__(batch_size=128, env_steps_per_update=4))
    pace = MemberPace(cfg4, inserted0=1000, updates0=80)
    assert pace.batches_allowed(1000, 80 * 128) == 0
    assert pace.batches_allowed(1040, 80 * 128) == 10
    assert pace.batches_allowed(1040, 85 * 128) == 5


def test_a_change_of_pace_carries_the_updates_still_owed():
    """Rows a member inserted under its old ratio keep paying for updates after a change (on
    Ray a member may insert many rows while the population settles; before this carry a
    member changed at every selection never learned at all)."""
    cfg = config_from_dict({"env": {"num_envs": 4}, "algo": {"batch_size": 64,
                            "env_steps_per_update": 8}, "buffer": {"warmup": 200}})  # fmt: skip
    new = cfg.replace(algo=cfg.algo.__class__(batch_size=128, env_steps_per_update=4))
    old = MemberPace(cfg)
    owed = old.owed(1000, 80)  # (1000 - 200) / 8 = 100 earned, 80 done
    assert owed == 20
    pace = changed_pace(old, functools.partial(MemberPace, new), 1000, 80)
    assert pace.batches_allowed(1000, 80 * 128) == 20  # still owed
    assert pace.batches_allowed(1040, 90 * 128) == 20  # + 10 earned at the new ratio, 10 done
    fresh = changed_pace(MemberPace(cfg), functools.partial(MemberPace, new), 100, 0)
    assert (fresh.inserted0, fresh.updates0) == (0, 0)  # nothing learned yet: from the start
    limiter = MemberLimiter(cfg, slack=400)
    moved = changed_pace(limiter, functools.partial(MemberLimiter, new, 400), 1000, 0)
    assert moved.batches_allowed(1000, 0) == limiter.owed(1000, 0) > 0
