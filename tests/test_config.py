"""Config files and overrides: shipped configs load, mistakes are errors that name the key."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest
import yaml

from predprey.cli import main
from predprey.config import (
    BufferConfig,
    ConfigError,
    DistributedConfig,
    OffPolicyConfig,
    PopulationConfig,
    PPOConfig,
    TrainConfig,
    config_from_dict,
    dump_config,
    load_config,
    reference_sections,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_the_four_configs_are_shipped():
    assert {p.name for p in CONFIGS} >= {"tag.yaml", "tag_matd3.yaml", "seed.yaml", "spread.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_loads_builds_and_spells_out_every_key(path, tmp_path):
    cfg = load_config(path)
    env = cfg.env.make(num_envs=2)
    assert env.num_envs == 2
    data = yaml.safe_load(path.read_text())
    ppo = cfg.algo.name == "ppo"
    sections = {"algo": type(cfg.algo), "train": TrainConfig, "distributed": DistributedConfig}
    if not ppo:  # ppo keeps no replay buffer
        sections["buffer"] = BufferConfig
    optional = {"population": PopulationConfig}
    assert {"env", *sections} <= set(data) <= {"env", *sections, *optional}  # every section
    sections |= {k: v for k, v in optional.items() if k in data}
    for name, cls in sections.items():  # every key (distributed: the ones it needs)
        fields = {f.name for f in dataclasses.fields(cls)}
        assert (set(data[name]) <= fields) if name == "distributed" else (
            set(data[name]) == fields
        ), (path.name, name)  # fmt: skip
    dump_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == cfg  # the resolved config round-trips


def test_tag_config_is_the_issue_baseline():
    cfg = load_config(CONFIGS[0].with_name("tag.yaml"))
    a = cfg.algo
    assert (cfg.env.num_envs, a.hidden, a.actor_lr, a.critic_lr, a.gamma, a.tau) == (
        32, (64, 64), 1e-3, 1e-3, 0.95, 0.01
    )  # fmt: skip
    assert (a.batch_size, a.env_steps_per_update, a.exploration_noise, a.grad_clip) == (
        256,
        25,
        0.1,
        0.5,
    )  # fmt: skip  (small frequent updates: README, "Learning results")
    t = cfg.train  # a quarter of the envs with random prey (README)
    assert (t.scripted_team, t.scripted_policy, t.scripted_fraction) == ("prey", "random", 0.25)
    assert cfg.buffer.warmup == 25_600 and not a.twin_critics
    assert a.share_params  # one network per team: learns faster than per-agent (README)
    assert a.actor_reg == 1e-4  # predators take off reliably and saturate less (README)
    matd3 = load_config(CONFIGS[0].with_name("tag_matd3.yaml")).algo
    assert matd3.twin_critics and matd3.policy_delay == 2 and matd3.target_noise > 0


def _write(tmp_path, data) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_unknown_key_is_named_with_a_suggestion(tmp_path):
    with pytest.raises(ConfigError, match=r"algo\.lernrate") as e:
        load_config(_write(tmp_path, {"algo": {"lernrate": 0.1}}))
    with pytest.raises(ConfigError, match=r"unknown key 'train\.eval_evry'.*eval_every"):
        load_config(_write(tmp_path, {"train": {"eval_evry": 5}}))
    with pytest.raises(ConfigError, match=r"unknown section 'algos'.*'algo'"):
        load_config(_write(tmp_path, {"algos": {}}))
    with pytest.raises(ConfigError, match="num_predatorz"):
        load_config(_write(tmp_path, {"env": {"num_predatorz": 2}}))
    assert "lernrate" in str(e.value)


def test_bad_types_and_values_are_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"algo\.batch_size: expected an integer"):
        load_config(_write(tmp_path, {"algo": {"batch_size": "big"}}))
    with pytest.raises(ConfigError, match=r"algo\.twin_critics: expected true/false"):
        load_config(_write(tmp_path, {"algo": {"twin_critics": "yes please"}}))
    with pytest.raises(ConfigError, match="gamma"):
        load_config(_write(tmp_path, {"algo": {"gamma": 1.5}}))
    with pytest.raises(ConfigError, match=r"algo\.actor_reg must be >= 0"):
        load_config(_write(tmp_path, {"algo": {"actor_reg": -1e-3}}))
    with pytest.raises(ConfigError, match="num_predators"):
        load_config(_write(tmp_path, {"env": {"num_predators": 0}}))
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_set_overrides_are_parsed_and_type_checked():
    cfg = load_config(
        CONFIGS[0].with_name("tag.yaml"),
        ["algo.batch_size=512", "algo.hidden=[32, 32]", "env.num_predators=4", "train.seed=9"],
    )
    assert cfg.algo.batch_size == 512 and cfg.algo.hidden == (32, 32) and cfg.train.seed == 9
    assert cfg.env.make(num_envs=1).team_sizes["predator"] == 4
    with pytest.raises(ConfigError, match=r"algo\.batch_size"):
        load_config(None, ["algo.batch_size=lots"])
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(None, ["batch_size=5"])
    with pytest.raises(ConfigError, match=r"algo\.batch_sise.*batch_size"):
        load_config(None, ["algo.batch_sise=5"])


def test_exponent_numbers_without_a_dot_are_numbers(tmp_path):
    # PyYAML reads `1e-4` and `2e5` as strings (YAML 1.1 wants a dot); they mean numbers.
    cfg = load_config(None, ["algo.actor_reg=1e-4", "train.total_env_steps=2e5"])
    assert cfg.algo.actor_reg == 1e-4 and cfg.train.total_env_steps == 200_000
    path = tmp_path / "c.yaml"
    path.write_text("algo:\n  actor_lr: 5E-4\n")
    assert load_config(path).algo.actor_lr == 5e-4
    for bad in ["algo.actor_reg=1e400", "algo.actor_reg=one", "train.total_env_steps=1.5e0"]:
        with pytest.raises(ConfigError, match=bad.split("=")[0].replace(".", r"\.")):
            load_config(None, [bad])


def test_cli_prints_config_errors_without_traceback(tmp_path, capsys):
    bad = _write(tmp_path, {"algo": {"lernrate": 0.1}})
    code = main(["train", "--config", str(bad), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "algo.lernrate" in err
    assert not (tmp_path / "run").exists()


def test_critic_is_central_or_local(tmp_path):
    assert load_config(None, ["algo.critic=local"]).algo.critic == "local"
    with pytest.raises(ConfigError, match=r"algo\.critic: unknown critic 'global'"):
        load_config(_write(tmp_path, {"algo": {"critic": "global"}}))


def test_local_configs_scale_with_num_agents_alone():
    """spread_local / tag_local: changing the numbers of agents (and landmarks) grows the arena
    with the density, and the observation size stays."""
    root = CONFIGS[0].parent
    spread = [load_config(root / "spread_local.yaml", [f"env.num_agents={n}",
              f"env.num_landmarks={n}"]).env.make(1) for n in (4, 80)]  # fmt: skip
    assert spread[0].bodies.arena == (0.0, 2.0, 0.0, 2.0)
    assert spread[1].bodies.arena[1] == pytest.approx(80**0.5)
    assert spread[0].obs_dims == spread[1].obs_dims
    sizes = [[f"env.num_predators={3 * k}", f"env.num_prey={k}", f"env.num_obstacles={2 * k}"]
             for k in (1, 10)]  # fmt: skip
    tag = [load_config(root / "tag_local.yaml", s).env.make(1) for s in sizes]
    assert tag[0].bodies.arena[1] == pytest.approx(2.0)
    assert tag[1].bodies.arena[1] == pytest.approx(40**0.5)
    assert tag[0].obs_dims == tag[1].obs_dims


def test_a_population_of_ppo_learners_is_refused():
    path = CONFIGS[0].with_name("tag_population.yaml")
    with pytest.raises(ConfigError, match="population: members are off-policy"):
        load_config(path, ["algo.name=ppo"])


def _field_comment(cls, name: str) -> str | None:
    """The one-line comment of dataclass field `name`: at the end of its line, or the comment
    line right above it (in the class of the MRO that declares it)."""
    owner = next(c for c in cls.__mro__ if name in c.__dict__.get("__annotations__", {}))
    lines, _ = inspect.getsourcelines(owner)
    for i, line in enumerate(lines):
        if re.match(rf"\s+{name}\s*:", line):
            if "#" in line:
                return line.split("#", 1)[1].strip()
            above = lines[i - 1].strip()
            return above[1:].strip() if above.startswith("#") else None
    return None


def test_every_key_of_every_section_has_a_comment():
    titles = [t for t, _ in reference_sections()]
    assert {"env", "buffer", "train", "distributed", "population"} <= set(titles)
    assert sum(t.startswith("algo") for t in titles) == 3  # shared, off-policy, ppo
    assert sum(t.startswith("env (scenario") for t in titles) == 3  # tag, spread, pettingzoo
    missing = [f"{title}: {f.name}" for title, cls in reference_sections()
               for f in dataclasses.fields(cls) if not _field_comment(cls, f.name)]  # fmt: skip
    assert not missing, missing


def test_comments_hold_no_measurements():
    """Results belong in the docs: no README references or measured ratios in comments."""
    for title, cls in reference_sections():
        for f in dataclasses.fields(cls):
            text = _field_comment(cls, f.name) or ""
            assert "README" not in text and not re.search(r"\d\.\d+x\b", text), (title, text)
    for path in CONFIGS:
        comments = [line.split("#", 1)[1] for line in path.read_text().splitlines() if "#" in line]
        bad = [c for c in comments if "README" in c or re.search(r"\d\.\d+x\b", c)]
        assert not bad, (path.name, bad)


@pytest.mark.parametrize("name", ["spread_local", "spread_local_ppo"])
def test_a_run_directory_written_before_the_split_still_loads(name, capsys):
    """tests/data/pre_split_*.yaml: config.yaml as the flat `algo` class wrote it (every key
    of both learners, train.spare_fraction, spread's landmark_target and cover_bonus)."""
    old = load_config(DATA / f"pre_split_{name}.yaml")
    assert old == load_config(ROOT / "configs" / f"{name}.yaml")
    err = capsys.readouterr().err
    assert err.count("\n") == (name == "spread_local")  # one notice: landmark_target
    data = yaml.safe_load((DATA / f"pre_split_{name}.yaml").read_text())
    other = "tau" if name.endswith("ppo") else "epochs"
    data["algo"][other] = 99  # a changed key of the other learner is still an error
    with pytest.raises(ConfigError, match=f"unknown key 'algo.{other}'"):
        config_from_dict(data)


def test_landmark_target_maps_to_target_rule(capsys):
    env = {"scenario": "spread", "obs": "local"}
    for old, new in [({"landmark_target": True}, "free"),
                     ({"landmark_target": True, "target_rule": "matched"}, "matched"),
                     ({"landmark_target": False}, "none")]:  # fmt: skip
        cfg = config_from_dict({"env": {**env, **old}})
        assert (
            dict(cfg.env.params)["target_rule"] == new and "landmark_target" not in cfg.env.params
        )
        assert capsys.readouterr().err.count("\n") == 1
    assert load_config(CONFIGS[0].with_name("spread_local.yaml")).env.make(1).scenario.target == 2
    assert not capsys.readouterr().err  # the shipped config uses the new key


def test_each_algorithm_has_its_own_class():
    assert type(load_config(None, ["algo.name=matd3"]).algo) is OffPolicyConfig
    ppo = load_config(None, ["algo.name=ppo"]).algo
    assert type(ppo) is PPOConfig and not hasattr(ppo, "batch_size")
    assert not hasattr(load_config(None).algo, "epochs")
    with pytest.raises(ConfigError, match="algo.name: 'ppo' is not one of"):
        OffPolicyConfig(name="ppo")
