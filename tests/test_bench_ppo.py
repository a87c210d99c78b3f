"""Throughput tooling around PPO: one thread limit for torch and NumPy's BLAS, `bench train`
naming PPO's recipe, and `bench jaxmarl` (the side-by-side with JaxMARL's IPPO) driven by a
stand-in peer script, since JAX is not a dependency."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import yaml

from train_helpers import json_line, predprey


def test_limit_threads_limits_torch_and_numpy_blas():
    code = textwrap.dedent("""
        import json, numpy, torch
        from threadpoolctl import threadpool_info
        from predprey.threads import limit_threads
        limit_threads(1)
        blas = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
        print(json.dumps({"torch": torch.get_num_threads(), "blas": blas}))
    """)  # a fresh process: the limits are process-wide
    env_threads = {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "PATH": ""}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env_threads, timeout=120)  # fmt: skip
    out = json.loads(proc.stdout)
    assert out["torch"] == 1
    assert out["blas"] and set(out["blas"]) == {1}  # numpy's BLAS is found and limited


def _ppo_config(tmp_path):
    """Episodes as long as one rollout: the first iteration, which a run always takes
    however slow the machine, ends episodes (the bench reads their returns)."""
    data = {
        "env": {"scenario": "spread", "num_envs": 16, "num_agents": 3, "num_landmarks": 3,
                "episode_length": 8},
        "algo": {"name": "ppo", "hidden": [16, 16], "rollout_steps": 8, "epochs": 1,
                 "minibatches": 2},
        "train": {"seed": 0, "total_env_steps": 100000, "eval_every": 100000,
                  "eval_episodes": 4, "log_every": 128, "checkpoint_every": 1000.0,
                  "record_envs": [], "torch_threads": 1},
    }  # fmt: skip
    path = tmp_path / "ppo.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _discrete_spread_config(tmp_path):
    """The peer's world (spread-3, Discrete(5), 25 steps) with rollouts of one episode."""
    data = yaml.safe_load(_ppo_config(tmp_path).read_text())
    data["env"].update(episode_length=25, discrete_actions=True)
    data["algo"]["rollout_steps"] = 25
    path = tmp_path / "ppo_discrete.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_bench_train_names_ppo_recipe(tmp_path):
    line = json_line(predprey("bench", "train", "--config", str(_ppo_config(tmp_path)),
                              "--seconds", "3"))  # fmt: skip
    assert line["algo"] == "ppo"
    assert (line["rollout_steps"], line["epochs"], line["minibatches"]) == (8, 1, 2)
    assert "batch_size" not in line and "warmup_env_steps" not in line  # maddpg's keys
    assert line["env_steps"] > 0 and line["updates"] > 0


FAKE_PEER = """
import json, sys
seconds = float(sys.argv[1])
for k in range(1, 11):  # ten updates over the budget, return improving
    print(json.dumps({"seconds": seconds * k / 10, "env_steps": 1000 * k,
                      "env_steps_per_s": round(1000 * k / (seconds * k / 10)),
                      "return_per_agent": -30.0 + k}))
"""


def test_bench_jaxmarl_side_by_side(tmp_path):
    peer = tmp_path / "peer.py"
    peer.write_text(FAKE_PEER)
    out = tmp_path / "cmp"
    proc = predprey("bench", "jaxmarl", "--script", str(peer), "--seconds", "4", "--out",
                    str(out), "--config", str(_discrete_spread_config(tmp_path)),
                    "--num-envs", "8", timeout=300)  # fmt: skip
    line = json_line(proc)
    assert line["num_envs"] == 8 and "env.num_envs=8" in line["overrides"]
    cfg = yaml.safe_load((out / "predprey" / "config.yaml").read_text())
    assert cfg["env"]["num_envs"] == 8 and cfg["env"]["discrete_actions"] is True
    assert line["jaxmarl_env_steps_per_s"] == 2500  # 10k steps in 4 s
    assert line["jaxmarl_final_return_per_agent"] == -20.5  # the last tenth: rows at 3.6, 4 s
    assert line["predprey_env_steps"] > 0
    assert line["env_steps_per_s_ratio"] == round(line["predprey_env_steps_per_s"] / 2500, 2)
    assert (out / "compare.png").stat().st_size > 10_000
    assert json.loads((out / "summary.json").read_text()) == line
    assert (out / "predprey" / "metrics.jsonl").exists()
    again = predprey("bench", "jaxmarl", "--python", sys.executable, "--script", str(peer),
                     "--seconds", "1", "--out", str(out))  # fmt: skip
    assert again.returncode != 0 and "pick a new --out" in again.stderr


def test_bench_jaxmarl_refuses_another_action_space(tmp_path):
    """The peer acts in Discrete(5): a config of forces (spread_ppo.yaml's) is refused."""
    peer = tmp_path / "peer.py"
    peer.write_text(FAKE_PEER)
    proc = predprey("bench", "jaxmarl", "--script", str(peer), "--seconds", "1", "--out",
                    str(tmp_path / "o"), "--config", str(_ppo_config(tmp_path)))  # fmt: skip
    assert proc.returncode != 0 and "discrete_actions" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_bench_ablation_table_and_plot(tmp_path):
    out = tmp_path / "abl"
    proc = predprey("bench", "ablation", "--config", str(_ppo_config(tmp_path)), "--levels",
                    "agent,team", "--seeds", "0", "--seconds", "3", "--smooth", "1", "--out",
                    str(out), timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [x["level"] for x in lines] == ["agent", "team"]
    summary = json.loads((out / "summary.json").read_text())
    team = summary["levels"][1]
    assert summary["bar"] == pytest.approx(team["median_final"], abs=1e-3)  # its final score
    for row in summary["levels"]:
        steps = row["env_steps_to_bar"]["0"]
        assert steps is None or steps > 0
    assert (out / "ablation.png").stat().st_size > 10_000
    for level in ("agent", "team"):
        cfg = yaml.safe_load((out / f"{level}-s0" / "config.yaml").read_text())
        assert cfg["algo"]["separation"] in (level, [level], [level] * 3)
    bad = predprey("bench", "ablation", "--config", str(_ppo_config(tmp_path)), "--levels",
                   "agent,brain", "--out", str(tmp_path / "bad"))  # fmt: skip
    assert bad.returncode != 0 and "brain" in bad.stderr


def test_bench_jaxmarl_runs_the_shipped_peer_script_by_default(tmp_path):
    """No script outside the package: without --script the shipped copy is run with the
    --python given (here a stand-in interpreter that reports what it was asked to run)."""
    import argparse
    import py_compile

    from predprey.bench import jaxmarl
    from predprey.cli import build_parser

    assert jaxmarl.PEER_SCRIPT.is_file()
    py_compile.compile(str(jaxmarl.PEER_SCRIPT), cfile=str(tmp_path / "peer.pyc"), doraise=True)
    args = build_parser().parse_args(["bench", "jaxmarl", "--out", "o"])
    assert args.script == str(jaxmarl.PEER_SCRIPT) and args.python == sys.executable
    assert args.config == "configs/spread_ppo_discrete.yaml" and args.num_envs is None
    fake = tmp_path / "python"
    fake.write_text(
        "#!/bin/sh\n"
        'echo "{\\"seconds\\": $2, \\"env_steps\\": 100, \\"env_steps_per_s\\": 50, '
        '\\"return_per_agent\\": -20.0, \\"script\\": \\"$1\\", \\"envs\\": $3}"\n'
    )
    fake.chmod(0o755)
    run = argparse.Namespace(python=str(fake), script=args.script, seconds=2.0, num_envs=16,
                             seed=0)  # fmt: skip
    rows = jaxmarl.run_jaxmarl(run, tmp_path / "jaxmarl.jsonl")
    assert rows == [{"time": 2.0, "env_steps": 100, "score": -20.0}]
    raw = json.loads((tmp_path / "jaxmarl.jsonl").read_text())
    assert raw["script"] == str(jaxmarl.PEER_SCRIPT) and raw["envs"] == 16
