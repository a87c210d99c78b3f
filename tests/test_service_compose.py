"""compose.yaml cannot run here (no Docker): check that it drives the real CLI."""

from __future__ import annotations

import yaml

from predprey.cli import build_parser
from predprey.commands.serve_buffer import TOKEN_ENV
from train_helpers import ROOT


def test_every_compose_command_parses_with_the_real_cli():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    parser = build_parser()
    args = {name: parser.parse_args(svc["command"]) for name, svc in services.items()}
    assert args["buffer"].command == "serve-buffer" and args["buffer"].host == "0.0.0.0"
    learner, env = args["learner"], args["env"]
    assert learner.command == "train" and env.command == "run-env"
    assert learner.buffer_url == env.buffer_url == "http://buffer:8000"
    assert args["buffer"].port == 8000
    for a in (learner, env):
        assert (ROOT / a.config).is_file() and a.token is None  # the token comes from TOKEN_ENV
    assert env.seed is None  # replicas draw their own seeds
    assert "replicas" in services["env"]["deploy"]
    assert TOKEN_ENV in compose["x-predprey"]["environment"]
