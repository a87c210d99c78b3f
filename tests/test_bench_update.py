"""`bench update`'s matmul floor: the products are captured from the step itself (forward and
backward), replayed with the same shapes and layouts, and reported beside the step."""

import json

import torch

from predprey.bench.floor import MatmulFloor, capture
from train_helpers import predprey


def test_capture_records_forward_and_backward_products():
    w = torch.randn(3, 5, 7, requires_grad=True)  # 3 heads, 5 -> 7
    b = torch.randn(3, 7, 1, requires_grad=True)
    x = torch.randn(3, 5, 11)  # [heads, in, rows]

    def step():
        y = torch.baddbmm(b, w.transpose(1, 2), x)  # [3, 7, 11]
        (y * y).sum().backward()

    products = capture(step)
    # forward baddbmm; backward: grad of w (bmm), no grad of x (a constant)
    assert [p.op for p in products] == ["baddbmm", "bmm"]
    fwd = products[0]
    assert [s for s, _ in fwd.operands] == [(3, 7, 1), (3, 7, 5), (3, 5, 11)]
    assert fwd.operands[1][1] == tuple(w.transpose(1, 2).stride())  # the transposed layout
    assert fwd.flop == 2 * 3 * 7 * 5 * 11
    floor = MatmulFloor(products)
    assert floor.flop == 2 * (2 * 3 * 7 * 5 * 11)
    floor.run()  # replays with out= on the preallocated operands
    assert floor.calls[0][3].shape == (3, 7, 11)


def test_bench_update_reports_both_learners_against_their_floor():
    proc = predprey("bench", "update", "--updates", "4", "--batch", "32", "--threads", "1",
                    "--hidden", "16", "16", "--ppo-rows", "64", "--twin", timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    assert [x["algo"] for x in lines] == ["matd3", "ppo"]
    for x in lines:
        assert x["floor_ms"] > 0 and x["matmuls_per_update"] > 0
        assert x["update_over_floor"] == round(x["ms_per_update"] / x["floor_ms"], 2)
    assert "learner" in proc.stderr and "largest products" in proc.stderr  # the table


def test_bench_env_reports_tiles_and_bytes_per_env():
    proc = predprey("bench", "env", "--num-envs", "8,5", "--seconds", "0.4", "--tile", "3",
                    "--rounds", "2", timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [x["num_envs"] for x in lines] == [8, 5] and {x["rounds"] for x in lines} == {2}
    line = lines[0]
    assert line["tile_envs"] == 3
    # tag mpe, 4 agents, 2 obstacles: pos, vel 2 x 64, landmarks 32, t 8, alive 4
    assert line["state_bytes_per_env"] == 172
    assert line["scratch_bytes_per_env"] == 96  # force [4, 2] float64, touches [4] int64
    assert line["env_steps_per_cpu_s"] > 0


def test_bench_update_takes_a_config_and_compares_networks():
    proc = predprey("bench", "update", "--updates", "3", "--batch", "16", "--threads", "1",
                    "--config", "configs/spread_attention.yaml", "--set", "algo.attention_dim=8",
                    "--hidden", "16", "--ppo-rows", "0", "--versus", "mlp",
                    timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    assert [x["bench"] for x in lines] == ["update", "update_versus"]
    assert lines[0]["network"] == "attention" and lines[0]["hidden"] == [16]
    split = lines[0]["split_ms_median"]  # the attention learner's phases are timed too
    assert split["clip"] > 0 and split["optimizer"] > 0 and split["backward"] > 0
    cpu = lines[1]["cpu_ms_per_update"]
    assert set(cpu) == {"attention", "mlp"}
    assert lines[1]["ratio"] == round(cpu["attention"] / cpu["mlp"], 2)


def test_bench_update_set_needs_a_config():
    proc = predprey("bench", "update", "--set", "algo.network=attention", timeout=120)
    assert proc.returncode != 0
    assert "--set and --versus need --config" in proc.stderr
