"""Config mistakes are one line: every type or range mistake in a file or a `--set` is a
`ConfigError` naming the key, which `predprey` prints as one line on stderr (exit 2), never
a traceback."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from predprey.cli import main
from predprey.config import Config, ConfigError, config_from_dict, load_yaml, reference_sections

ROOT = Path(__file__).resolve().parents[1]
TAG = load_yaml(ROOT / "configs" / "tag.yaml")
PPO = load_yaml(ROOT / "configs" / "spread_local_ppo.yaml")

# (what the config file holds, the key the one-line error must name)
BAD_FILES = [
    ({"algo": 5}, "algo"),
    ({"algo": [1, 2]}, "algo"),
    ({"env": "tag"}, "env"),
    ({"train": True}, "train"),
    ({"population": 3}, "population"),
    ({"algo": {"batch_size": math.inf}}, "algo.batch_size"),
    ({"algo": {"batch_size": math.nan}}, "algo.batch_size"),
    ({"train": {"total_env_steps": -math.inf}}, "train.total_env_steps"),
    ({"env": {"num_envs": math.inf}}, "env.num_envs"),
    ({"env": {"num_predators": math.inf}}, "num_predators"),
    ({"algo": {"actor_lr": math.nan}}, "algo.actor_lr"),
    ({"algo": {"critic_lr": math.inf}}, "algo.critic_lr"),
    ({"algo": {"gamma": math.nan}}, "algo.gamma"),
    ({"train": {"time_budget": math.inf}}, "train.time_budget"),
    ({"env": {"scenario": "spread", "local_ratio": math.nan}}, "local_ratio"),
    ({"algo": {"hidden": 64.5}}, "algo.hidden"),
    ({"algo": {"hidden": [[64, 64]]}}, "algo.hidden"),
    ({"algo": {"hidden": {"width": 64}}}, "algo.hidden"),
    ({"algo": {"batch_size": [256]}}, "algo.batch_size"),
    ({"algo": {"gamma": {"value": 0.9}}}, "algo.gamma"),
    ({"algo": {"team_gamma": 0.8}}, "algo.team_gamma"),
    ({"algo": {"team_gamma": {"prey": 1.5}}}, "algo.team_gamma.prey"),
    ({"algo": {"team_gamma": {"prey": "high"}}}, "algo.team_gamma.prey"),
    ({"algo": {"team_gamma": {"wolf": 0.8}}}, "algo.team_gamma"),
    ({"algo": {"share_params": "yes"}}, "algo.share_params"),
    ({"algo": {"share_params": 1}}, "algo.share_params"),
    ({"algo": {"name": ["ppo"]}}, "algo.name"),
    ({"algo": {"name": "sac"}}, "algo.name"),
    ({"env": {"scenario": 7}}, "env.scenario"),
    ({"env": {"scenario": "chess"}}, "env.scenario"),
    ({"algo": {"actor_lr": 0}}, "algo.actor_lr"),
    ({"algo": {"critic_lr": -1e-3}}, "algo.critic_lr"),
    ({"algo": {"gamma": 0}}, "algo.gamma"),
    ({"algo": {"tau": 2.0}}, "algo.tau"),
    ({"algo": {"grad_clip": -1}}, "algo.grad_clip"),
    ({"algo": {"exploration_noise": -0.1}}, "algo.exploration_noise"),
    ({"algo": {"hidden": [64, -1]}}, "algo.hidden"),
    ({"algo": {"name": "ppo", "clip": 0}}, "algo.clip"),
    ({"algo": {"name": "ppo", "log_std_init": 50}}, "algo.log_std_init"),
    ({"algo": {"name": "ppo", "epochs": -1}}, "algo.epochs"),
    ({"algo": {"epochs": 3}}, "algo.epochs"),  # a ppo key under maddpg
    ({"algo": {"name": "ppo", "batch_size": 64}}, "algo.batch_size"),  # and the other way
    ({"algo": {"teams": ["wolf"]}}, "algo.teams"),
    ({"train": {"scripted_fraction": 0.5, "scripted_team": "wolf"}}, "train.scripted_team"),
    ({"buffer": {"capacity": -5}}, "buffer.capacity"),
    ({"buffer": {"warmup": -1}}, "buffer.warmup"),
    ({"train": {"seed": -1}}, "train.seed"),
    ({"train": {"eval_every": 0}}, "train.eval_every"),
    ({"train": {"checkpoint_every": 0}}, "train.checkpoint_every"),
    ({"train": {"eval_prey": "ghost"}}, "train.eval_prey"),
    ({"train": {"record_envs": [0, -1]}}, "train.record_envs"),
    ({"distributed": {"runners": -2}}, "distributed.runners"),
    ({"distributed": {"samples_per_insert": math.nan}}, "distributed.samples_per_insert"),
    ({"distributed": {"wal": "off"}}, "distributed.wal"),
    ({"population": {"size": math.inf}}, "population.size"),
    ({"population": {"actor_lr_range": [0, math.inf]}}, "population.actor_lr_range"),
    ({"train": {"spare_fraction": 0.5}}, "train.spare_fraction"),  # removed
    ({"env": {"scenario": "spread", "cover_bonus": 0.1}}, "env.cover_bonus"),  # removed
    ({"env": {"scenario": "spread", "obs": "local", "landmark_target": "yes"}}, "landmark_target"),
    ({7: {}}, "7"),
]


def _one_error_line(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("predprey train: error: "), err
    return err


@pytest.mark.parametrize("data, key", BAD_FILES, ids=[k for _, k in BAD_FILES])
def test_a_bad_config_file_is_one_line_naming_the_key(tmp_path, capsys, data, key):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    err = _one_error_line(capsys, ["train", "--config", str(path), "--out", str(tmp_path / "r")])
    assert key in err
    assert not (tmp_path / "r").exists()


BAD_SETS = [
    ("algo.batch_size=.inf", "algo.batch_size"),
    ("algo.batch_size=.nan", "algo.batch_size"),
    ("algo.actor_lr=.nan", "algo.actor_lr"),
    ("algo.gamma=-.inf", "algo.gamma"),
    ("algo.hidden=[64, [1]]", "algo.hidden"),
    ("algo.hidden={a: 1}", "algo.hidden"),
    ("algo.share_params=maybe", "algo.share_params"),
    ("env.num_envs=[1, 2]", "env.num_envs"),
    ("env.num_envs=-3", "env.num_envs"),
    ("env.num_predators=1e400", "num_predators"),
    ("train.total_env_steps=1e999", "train.total_env_steps"),
    ("train.seed=1.5", "train.seed"),
    ("algo.tau=0", "algo.tau"),
    ("algo.rollout_steps=8", "algo.rollout_steps"),
    ("algo.hidden=[64, 64", "algo.hidden"),  # not YAML
    ("algo.x.y=1", "algo.x.y"),
]


@pytest.mark.parametrize("override, key", BAD_SETS, ids=[s for s, _ in BAD_SETS])
def test_a_bad_set_is_one_line_naming_the_key(tmp_path, capsys, override, key):
    argv = ["train", "--config", str(ROOT / "configs" / "tag.yaml"), "--out", str(tmp_path / "r")]
    err = _one_error_line(capsys, [*argv, "--set", override])
    assert key in err


def test_a_section_that_is_not_a_mapping_with_a_set_is_one_error(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("algo: 5\n")
    argv = ["train", "--config", str(path), "--out", str(tmp_path / "r")]
    assert "algo" in _one_error_line(capsys, [*argv, "--set", "algo.gamma=0.9"])


# -- random mistakes: only ConfigError, never another exception --------------------------
KEYS: dict[str, list[str]] = {}
for _title, _cls in reference_sections():  # "env (scenario tag)" -> env
    KEYS.setdefault(_title.split()[0], []).extend(f.name for f in dataclasses.fields(_cls))
KEYS["env"] += ["landmark_target", "cover_bonus", "credit"]  # renamed or removed
KEYS["train"] += ["spare_fraction"]
KEYS = {k: sorted(set(v) - {"params"}) for k, v in KEYS.items()}

ODD = [None, True, 0, -1, 1.5, -0.5, 10**30, math.inf, -math.inf, math.nan, "", "x", [], [1],
       [[1]], {}, {"a": 1}]  # fmt: skip
scalars = st.one_of(
    st.sampled_from(ODD),
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["ppo", "maddpg", "matd3", "spread", "tag", "local", "mpe", "1e-3", "inf"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),  # fmt: skip
    max_leaves=8,
)
section_names = st.sampled_from(sorted(KEYS))


@st.composite
def mistakes(draw):
    data = {k: dict(v) for k, v in draw(st.sampled_from([TAG, PPO, {}])).items()}
    for _ in range(draw(st.integers(1, 3))):
        section = draw(section_names)
        if draw(st.integers(0, 9)) == 0:  # the whole section
            data[section] = draw(values)
            continue
        key = draw(st.sampled_from(KEYS[section]) | st.text(max_size=8))
        if not isinstance(data.get(section), dict):
            data[section] = {}
        data[section][key] = draw(values)
    return data


def test_every_key_with_every_odd_value_is_a_config_error_or_loads():
    for base in (TAG, PPO):
        for section, keys in KEYS.items():
            for key in keys:
                for value in ODD:
                    data = {k: dict(v) for k, v in base.items()}
                    data.setdefault(section, {})[key] = value
                    try:
                        config_from_dict(data)
                    except ConfigError as e:
                        assert "\n" not in str(e)
                    except Exception as e:  # the point: nothing else escapes
                        raise AssertionError(f"{section}.{key}={value!r}: {e!r}") from e


@settings(max_examples=300, deadline=None)
@given(mistakes())
def test_random_values_at_random_keys_are_config_errors_only(data):
    try:
        cfg = config_from_dict(data)
    except ConfigError as e:
        assert "\n" not in str(e)
        return
    assert isinstance(cfg, Config)
    assert config_from_dict(cfg.to_dict()) == cfg  # what loads, round-trips


@settings(max_examples=200, deadline=None)
@given(section_names.flatmap(lambda s: st.tuples(st.just(s), st.sampled_from(KEYS[s]))),
       st.text(max_size=16))  # fmt: skip
def test_random_set_texts_are_config_errors_only(section_key, text):
    from predprey.config import load_config

    section, key = section_key
    try:
        load_config(ROOT / "configs" / "tag.yaml", [f"{section}.{key}={text}"])
    except ConfigError as e:
        assert "\n" not in str(e)
