"""The `hidden` mutation (predprey.population.resize): a member's networks change width
(overlapping weights kept, Adam moments reset where shapes changed), it trains and acts on;
a clone takes its parent's width; checkpoints, --resume and `policy.load(run, member=K)`
handle members of different widths."""

from __future__ import annotations

import numpy as np
import torch

from predprey import policy
from predprey.learn.widths import widths, with_hidden
from predprey.population.member import ALL_PARTS
from predprey.population.resize import resized
from test_population_train import TEAMS, evals, make, pop_data, same, weights


def width_data(total=1200, **population):
    return pop_data(total, size=2, elitism=1, mutate=["hidden"], hidden_range=[8, 64],
                    **population)  # fmt: skip


def actor_widths(actor_set) -> dict[str, tuple[int, ...]]:
    return {t: widths(a.state_dict()) for t, a in actor_set.actors.items()}


def test_resized_learner_keeps_the_overlap_and_unchanged_moments(tmp_path):
    trainer = make(tmp_path, width_data(total=600, mode="independent"))
    trainer.run()  # Adam has moments now
    old = trainer.source.members[0].learner
    new = resized(old, with_hidden(old.algo, (24, 24)))
    assert actor_widths(new.actors) == {t: (24, 24) for t in TEAMS} and new.version == old.version
    for t in TEAMS:
        w_old, w_new = (weights(x, t, "actors")["mlp.weights.0"] for x in (old, new))
        assert torch.equal(w_new[..., :16], w_old)  # [models, obs, 16] -> [models, obs, 24]
        assert not torch.equal(w_new[..., 16:], torch.zeros_like(w_new[..., 16:]))  # fresh
    old_state = [old.actor_opt.state[p] for p in old.actors.parameters()]
    new_params = list(new.actors.parameters())
    for p_new, st in zip(new_params, old_state, strict=True):
        if p_new.shape == st["exp_avg"].shape:  # the last layer's biases: moments kept
            assert torch.equal(new.actor_opt.state[p_new]["exp_avg"], st["exp_avg"])
        else:
            assert p_new not in new.actor_opt.state


def test_hidden_mutation_resizes_the_clone_which_trains_and_acts(tmp_path):
    data = width_data(total=2000, p_none=0.0, p_weights=0.0, p_hyperparameter=1.0,
                      evolve_every=10**9)  # fmt: skip
    trainer = make(tmp_path, data)
    pop = trainer.source
    pop.set_fitness([evals(0.9, 0.5), evals(0.1, 2.0)])  # member 0 best for both teams
    rows = pop.evolve(800)
    mut = next(r for r in rows if r["event"] == "mutation")
    assert (mut["member"], mut["name"], mut["old"]) == (1, "hidden", 16)
    assert mut["new"] in (13, 20) and "hidden 16 -> " in mut["detail"]
    child = pop.members[1]
    assert child.hp["hidden"] == mut["new"] and child.config.algo.hidden == (mut["new"],) * 2
    assert actor_widths(child.learner.actors) == {t: (mut["new"],) * 2 for t in TEAMS}
    assert child.source.runner.actors is child.learner  # its runner acts with the new one
    updates = child.source.updates
    trainer.run()
    assert child.source.updates > updates  # and it learns on
    obs = {t: np.zeros((2, n, d), np.float32) for t, n, d in [("predator", 3, 16), ("prey", 1, 14)]}
    assert child.learner.act(obs)["predator"].shape == (2, 3, 2)


def test_a_clone_takes_its_parents_width(tmp_path):
    data = width_data(p_none=1.0, p_weights=0.0, p_hyperparameter=0.0)
    pop = make(tmp_path, data).source
    pop.members[1].set_hp({**pop.members[1].hp, "hidden": 24})
    parent = {(t, p): weights(pop.members[0].learner, t, p) for t in TEAMS for p in ALL_PARTS}
    pop.set_fitness([evals(0.9, 0.5), evals(0.1, 2.0)])  # member 0 best for both teams
    pop.evolve(800)
    child = pop.members[1]
    assert child.hp["hidden"] == 16
    for t in TEAMS:
        for part in ALL_PARTS:  # an exact clone, architecture and all
            assert same(weights(child.learner, t, part), parent[t, part])


def test_members_of_different_widths_checkpoint_resume_and_load(tmp_path):
    data = width_data(total=800, mode="independent")
    first = make(tmp_path, data)
    first.source.members[1].set_hp({**first.source.members[1].hp, "hidden": 24})
    first.run()
    member = first.source.members[1]
    loaded = policy.load(first.run_dir.path, member=1)  # its width is not the config's 16
    assert actor_widths(loaded.actors) == {t: (24, 24) for t in TEAMS}
    for t in TEAMS:
        assert same(loaded.actors.actor_state()[t], member.learner.actor_state()[t])
    more = {**data, "train": {**data["train"], "total_env_steps": 1600}}
    resumed = make(tmp_path, more, resume=True)
    members = resumed.source.members
    assert [m.hp["hidden"] for m in members] == [16, 24]
    assert actor_widths(members[1].learner.actors) == {t: (24, 24) for t in TEAMS}
    for t in TEAMS:
        assert same(
            weights(members[1].learner, t, "critics"), weights(member.learner, t, "critics")
        )
    resumed.run()
    assert members[1].source.updates > member.source.updates


def test_genetic_sync_between_widths_fits_the_critics_in(tmp_path):
    trainer = make(tmp_path, width_data(total=600, mode="genetic", sync_every=400))
    trainer.run()  # Adam has moments now
    pop = trainer.source
    wide = pop.members[1]
    wide.set_hp({**wide.hp, "hidden": 24})
    pop.set_fitness([evals(0.9, 0.5), evals(0.1, 2.0)])  # member 0 (width 16) best
    pop.sync(600)
    for t in TEAMS:
        best = weights(pop.members[0].learner, t, "critics")
        mine = weights(wide.learner, t, "critics")
        first = "mlp.weights.0"  # [models, in, 16] into [models, in, 24]
        assert torch.equal(mine[first][..., :16], best[first])
        params, state = list(wide.learner.critics[t].parameters()), wide.learner.critic_opt.state
        assert params[0] not in state  # fitted in: its moments reset
        assert params[-1] in state  # the output bias, the same shape: the best's moments
    assert actor_widths(wide.learner.actors) == {t: (24, 24) for t in TEAMS}  # never synced
