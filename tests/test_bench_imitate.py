"""`predprey bench imitate`: networks fitted to a scripted controller's actions."""

import argparse
import json

import pytest

from predprey.bench import imitate
from predprey.config import ConfigError
from train_helpers import ROOT


def _args(*argv):
    p = argparse.ArgumentParser()
    imitate.add_arguments(p)
    return p.parse_args(list(argv))


def test_imitate_fits_the_greedy_controller_and_reports_each_network(capsys):
    args = _args("--config", str(ROOT / "configs" / "spread_scale.yaml"), "--controller",
                 "greedy", "--steps", "300", "--envs", "16", "--vector-steps", "40")  # fmt: skip
    assert imitate.run(args) == 0
    lines = {d["network"]: d for d in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(lines) == {"mlp", "attention"}
    # greedy steers for the nearest landmark, the view's first landmark slot: an MLP reads it
    assert lines["mlp"]["r2"] > 0.8
    assert lines["mlp"]["test_mse"] < lines["mlp"]["mean_mse"]
    assert lines["attention"]["params"] > lines["mlp"]["params"]
    assert all(d["mean_mse"] > 0 and d["train_rows"] == 16 * 40 for d in lines.values())


@pytest.mark.parametrize(
    ("config", "flag", "message"),
    [
        ("spread_scale.yaml", ["--controller", "nearest"], "--controller: 'nearest' is not one"),
        ("spread_scale.yaml", ["--team", "prey"], "--team: 'prey' is not one of"),
        ("tag.yaml", [], "entity slots of env.obs: local"),
    ],
)
def test_imitate_refuses_bad_input_in_one_line(config, flag, message):
    args = _args("--config", str(ROOT / "configs" / config), "--steps", "1", "--envs", "2",
                 "--vector-steps", "1", *flag)  # fmt: skip
    with pytest.raises(ConfigError, match=message):
        imitate.run(args)
