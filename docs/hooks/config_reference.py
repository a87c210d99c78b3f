"""MkDocs hook: adds reference/config.md, generated from the typed config at build time."""

import sys
from pathlib import Path

from mkdocs.structure.files import File

# Document the checkout being built, not whichever predprey happens to be installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from predprey.config_reference import markdown  # noqa: E402

PAGE = "reference/config.md"


def on_files(files, config):
    files.append(File.generated(config, PAGE, content=markdown()))
    return files
