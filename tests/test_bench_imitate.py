"""`predprey bench imitate`: networks fitted to a scripted controller's actions."""

import argparse
import json

from predprey.bench import imitate
from train_helpers import ROOT


def test_imitate_fits_the_greedy_controller_and_reports_each_network(capsys):
    p = argparse.ArgumentParser()
    imitate.add_arguments(p)
    args = p.parse_args(
        ["--config", str(ROOT / "configs" / "spread_scale.yaml"), "--controller", "greedy",
         "--steps", "300", "--envs", "16", "--vector-steps", "40"]
    )  # fmt: skip
    assert imitate.run(args) == 0
    lines = {d["network"]: d for d in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(lines) == {"mlp", "attention"}
    # greedy steers for the nearest landmark, the view's first landmark slot: an MLP reads it
    assert lines["mlp"]["r2"] > 0.8
    assert lines["mlp"]["test_mse"] < lines["mlp"]["mean_mse"]
    assert lines["attention"]["params"] > lines["mlp"]["params"]
    assert all(d["mean_mse"] > 0 and d["train_rows"] == 16 * 40 for d in lines.values())
