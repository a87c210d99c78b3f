"""MkDocs hook: `<!-- predprey-help: bench env -->` in a page becomes that command's
`--help` text, taken from the CLI's own parser when the docs are built."""

import argparse
import os
import re
import sys
from pathlib import Path

# Document the checkout being built, not whichever predprey happens to be installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from predprey.cli import build_parser  # noqa: E402

MARKER = re.compile(r"<!-- predprey-help:\s*([\w -]+?)\s*-->")


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:  # argparse keeps subcommands in a _SubParsersAction
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            return action.choices[name]
    raise KeyError(f"predprey has no subcommand {name!r}")


def _help(words: str) -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal width
    parser = build_parser()
    for name in words.split():
        parser = _subparser(parser, name)
    return parser.format_help()


def on_page_markdown(markdown, page, config, files):
    return MARKER.sub(lambda m: f"```text\n{_help(m.group(1))}```", markdown)
