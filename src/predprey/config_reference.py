"""The config reference page, generated from the typed config so it cannot drift.

Per section a table of key, type, default and the comment written next to the field in
the source: a trailing `# ...` on the field's line(s), after the comment lines directly
above it (no blank line between), which belong to it too. A comment block that starts
with `---` above a field is a note about the fields below it, not that field's comment.
The docs build calls `markdown()` (docs/hooks/config_reference.py).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import textwrap
import tokenize
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class FieldDoc:
    name: str
    type: str
    default: str
    comment: str


def sections() -> list[tuple[str, type]]:
    """(title, dataclass) per section: `predprey.config.reference_sections()`."""
    from predprey.config import reference_sections

    return reference_sections()


def _comments(cls: type) -> tuple[dict[str, str], dict[str, str]]:
    """(field -> its comment, field -> the `---` note above it) from `cls`'s own source."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (built in C, or defined interactively)
        return {}, {}
    lines = source.splitlines()
    alone: dict[int, str] = {}  # line number -> text of a comment on a line of its own
    trailing: dict[int, str] = {}  # line number -> text of a comment after code
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            text = tok.string.lstrip("#").strip()
            (alone if not lines[row - 1][:col].strip() else trailing)[row] = text
    body = ast.parse(source).body[0]
    comments, notes = {}, {}
    for node in getattr(body, "body", []):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above, row = [], node.lineno - 1
        while row in alone:  # the contiguous comment lines right above the field
            above.insert(0, alone[row])
            row -= 1
        after = [trailing[r] for r in range(node.lineno, node.end_lineno + 1) if r in trailing]
        name = node.target.id
        if above and above[0].startswith("---"):
            notes[name] = " ".join(above).lstrip("- ").strip()
            above = []
        comments[name] = "; ".join(t for t in (" ".join(above), " ".join(after)) if t)
    return comments, notes


def _type_name(tp: Any) -> str:
    if isinstance(tp, str):  # `from __future__ import annotations`: the source spelling
        return tp
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")


def _value(v: Any) -> str:
    """A default as it is written in a YAML config."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"' if v == "" else v
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k}: {_value(x)}" for k, x in v.items()) + "}"
    return repr(v)


def fields(cls: type) -> tuple[list[FieldDoc], dict[str, str]]:
    """The documented fields of dataclass `cls` (inherited ones too) and its `---` notes."""
    comments: dict[str, str] = {}
    notes: dict[str, str] = {}
    for base in reversed(cls.__mro__):  # a subclass's comment wins over its base's
        if dataclasses.is_dataclass(base):
            c, n = _comments(base)
            comments.update({k: v for k, v in c.items() if v})
            notes.update(n)
    out = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = _value(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = _value(f.default_factory())
        else:
            default = "required"
        out.append(FieldDoc(f.name, _type_name(f.type), default, comments.get(f.name, "")))
    return out, notes


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _docstring(cls: type) -> str:
    doc = cls.__dict__.get("__doc__") or ""
    if doc.startswith(cls.__name__ + "("):  # the signature dataclasses writes, not prose
        return ""
    return inspect.cleandoc(doc)


def markdown() -> str:
    parts = [
        "# Config reference",
        "",
        "Generated from the typed config classes when the docs are built "
        "(`predprey.config_reference`), so it always matches the code. Every key below is "
        "written `section.key` on the command line (`--set algo.batch_size=512`) and under "
        "its section in a YAML file; an unknown or misspelled key is an error that names it. "
        "The `env` section's scenario parameters sit directly under `env:` next to "
        "`scenario` and `num_envs`; which ones apply depends on `env.scenario`.",
    ]
    listed: list[tuple[str, type]] = []
    anchors: set[str] = set()
    for title, cls in sections():
        docs, notes = fields(cls)
        # the first section of each config section gets its name as anchor (#algo, #train),
        # so links into this page hold however the titles are worded
        key = title.split()[0].rstrip(":")
        anchor = "" if key in anchors else f" {{#{key}}}"
        anchors.add(key)
        parts += ["", f"## {title}{anchor}", "", f"`{cls.__module__}.{cls.__qualname__}`"]
        if doc := _docstring(cls):
            parts += ["", doc]
        # a section extending another listed one (each learner's `algo` class) shows only the
        # keys it adds or gives another default, and says where the rest are
        for base_title, base in listed:
            if issubclass(cls, base):
                inherited = {(d.name, d.default) for d in fields(base)[0]}
                docs = [d for d in docs if (d.name, d.default) not in inherited]
                parts += ["", f"Also every key of *{base_title}* above."]
        listed.append((title, cls))
        parts += ["", "| key | type | default | description |", "|---|---|---|---|"]
        for d in docs:
            parts.append(
                f"| `{d.name}` | {_cell(d.type)} | `{_cell(d.default)}` | {_cell(d.comment)} |"
            )
        for name, note in notes.items():
            parts += ["", f"From `{name}` on: {note}"]
    return "\n".join(parts) + "\n"
