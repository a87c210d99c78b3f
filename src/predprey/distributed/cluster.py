"""Start a private local Ray instance, or join an existing Ray cluster.

Local (`address=""`): Ray is started inside this process with the dashboard off, usage
stats off and every Ray server bound to 127.0.0.1 (Ray does that when
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, which must be set before `ray` is first imported).
Cluster (`address="HOST:PORT"`): connect to the head started with `ray start --head`.
A Ray cluster executes whatever its members send it: run one only on a trusted network.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import NamedTuple

LOOPBACK = "127.0.0.1"


class RayInfo(NamedTuple):
    started_here: bool  # this process started Ray (and shuts it down)
    node_id: str  # the driver's node
    node_ip: str
    num_nodes: int


def init_ray(address: str = "", num_cpus: int | None = None) -> RayInfo:
    """Start or join Ray (a no-op if this process is already connected)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not address:
        if "ray" not in sys.modules:
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        elif os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "0":
            warnings.warn(
                "ray was imported before predprey could bind it to 127.0.0.1; set "
                "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 in the environment to keep it local",
                stacklevel=2,
            )
    import ray

    started = False
    if not ray.is_initialized():
        common = dict(logging_level=logging.WARNING, log_to_driver=False)
        if address:
            ray.init(address=address, **common)
        else:
            ray.init(
                address="local",  # a private instance, even if `ray start` runs on this machine
                num_cpus=num_cpus,
                object_store_memory=local_object_store_bytes(num_cpus),
                include_dashboard=False,
                _node_ip_address=LOOPBACK,
                **common,
            )
            started = True
    ctx = ray.get_runtime_context()
    alive = [n for n in ray.nodes() if n.get("Alive")]
    return RayInfo(started, ctx.get_node_id(), ray.util.get_node_ip_address(), len(alive))


def local_cpus(runners: int, learners: int = 1) -> int:
    """Logical CPUs for a local instance: one per runner and one per learner (Ray
    schedules by these numbers; the OS shares the real cores)."""
    return max(os.cpu_count() or 1, runners + learners)


def local_object_store_bytes(num_cpus: int | None) -> int:
    """Object store size of a local instance: what is in flight (a few 1.8 MB transition
    chunks per runner, weights, learner batches) with room to spare. Ray keeps freed objects
    until the store is full, so its default (30% of RAM) hands out fresh pages for every put,
    and each fresh page costs the putting runner a page fault (~2.7 v 1.9 ms per chunk)."""
    return (256 + 32 * (num_cpus or os.cpu_count() or 1)) * 2**20
