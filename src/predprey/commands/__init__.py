"""The CLI's subcommands, one module each."""

import argparse
import ipaddress

from predprey.config import ConfigError


def add_world_overrides(p: argparse.ArgumentParser) -> None:
    """`--set env.KEY=V` of the commands that run a trained policy (evaluate, simulate,
    animate, view)."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="env.KEY=V",
                   help="run in another world, e.g. env.num_agents=80 (repeatable; shared "
                        "networks on obs local transfer to any number of agents)")  # fmt: skip


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_token_off_loopback(host: str, token: str | None, exposes: str) -> None:
    """The one rule of every command that serves HTTP (serve-buffer, view): binding an
    address other machines can reach needs a token. `exposes`: what anyone could do."""
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"--host {host} is not a loopback address: refusing to serve without --token "
            f"(anyone who can reach it could {exposes})"
        )
