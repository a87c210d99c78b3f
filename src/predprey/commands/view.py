"""Watch a run in the browser: recorded episodes on a canvas (choose the source, env index
and episode, play/pause/step; the address `?env=2&episode=200&source=train` keeps the
choice) and a chart per metric family the run logged, updating live while training runs.

Serves a small local web page (no internet needed) until interrupted with Ctrl-C.

  predprey view runs/tag                  -> prints http://127.0.0.1:PORT/
  predprey view runs/tag --port 8765 --open
  predprey view runs/tag --host 0.0.0.0 --token SECRET   -> prints http://0.0.0.0:PORT/?token=SECRET
  predprey view runs/spread_local --set env.num_agents=80 --set env.num_landmarks=80

With `--set env.KEY=V` the run's policy first plays a new episode in that world (recorded as
a `simulate` episode of env index 0, as `predprey simulate --set ...` does) to watch;
`--member K` (a population run) likewise plays one with member K's actors.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading

from predprey.commands import add_world_overrides, require_token_off_loopback

TOKEN_ENV = "PREDPREY_VIEW_TOKEN"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from predprey.policy import member_arg

    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: pick a free one)")
    p.add_argument("--token", default=os.environ.get(TOKEN_ENV) or None,
                   help=f"token every request needs (bearer header or ?token= in the address); "
                        f"required off loopback (default: ${TOKEN_ENV})")  # fmt: skip
    p.add_argument("--open", action="store_true", help="open the page in a web browser")
    p.add_argument("--member", type=member_arg, default=None, metavar="best|K",
                   help="population runs: first play a new episode with member K's latest "
                        "actors (best: per team the fittest at the latest evaluation)")  # fmt: skip
    add_world_overrides(p)


def run(args: argparse.Namespace) -> int:
    import webbrowser

    from predprey.viz.view import start_server

    require_token_off_loopback(args.host, args.token, "read the run directory")
    if args.overrides or args.member is not None:
        from predprey.commands.simulate import simulate

        sim = argparse.Namespace(run=args.run, policy="latest", seed=0, episodes=1, env_index=0,
                                 num_envs=1, overrides=args.overrides,
                                 member=args.member)  # fmt: skip
        print(f"predprey view: recorded {simulate(sim)['paths'][0]}", flush=True)
    try:
        server = start_server(args.run, args.host, args.port, args.token)
    except OSError as e:
        print(f"predprey view: error: cannot listen on {args.host}:{args.port}: {e}")
        return 2
    # Our own handlers, which only set an event: a process started in the background
    # (`nohup cmd &`) inherits SIGINT ignored, and then Python raises no KeyboardInterrupt.
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"predprey view: serving {args.run} at {server.url}  (Ctrl-C to stop)", flush=True)
        if args.open:
            webbrowser.open(server.url)
        while not stop.wait(0.5) and server.thread.is_alive():
            pass
    finally:
        server.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0
