"""The docs: the generated config reference lists every key of every section with its
comment, and the README stays a guide."""

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from predprey import config_reference as ref


def _tables(page: str) -> dict[str, dict[str, str]]:
    """section title -> key -> its table row, parsed from the generated page."""
    out: dict[str, dict[str, str]] = {}
    for part in page.split("\n## ")[1:]:
        heading, body = part.split("\n", 1)
        title = heading.split(" {#")[0]  # without its anchor
        rows = [line for line in body.splitlines() if line.startswith("| `")]
        out[title] = {row.split("`")[1]: row for row in rows}
    return out


def test_every_field_of_every_section_is_listed():
    sections = ref.sections()
    tables = _tables(ref.markdown())
    assert [t for t, _ in sections] == list(tables)
    page = ref.markdown()
    for name in ("env", "algo", "buffer", "train", "distributed", "population"):
        assert f" {{#{name}}}\n" in page, name  # the anchor docs pages link to
    for title, cls in sections:
        shown = set(tables[title])  # a subclass section lists what its base section does not
        shown |= {k for t, base in sections if base is not cls and issubclass(cls, base)
                  for k in tables[t]}  # fmt: skip
        assert shown == {f.name for f in dataclasses.fields(cls)}, title


def _row_of(key: str) -> str:
    """The table row of `key` in the first section that lists it."""
    for rows in _tables(ref.markdown()).values():
        if key in rows:
            return rows[key]
    raise AssertionError(f"{key} is in no section")


def _comment_in_source(cls: type, key: str) -> str:
    """The text of the `# ...` comment written on `key`'s line in `cls`'s source."""
    import inspect

    for base in cls.__mro__:
        if dataclasses.is_dataclass(base):
            for line in inspect.getsource(base).splitlines():
                if line.strip().startswith(f"{key}:") and "#" in line:
                    return line.split("#", 1)[1].strip()
    raise AssertionError(f"no comment beside {key}")


def test_a_fields_comment_and_default_are_in_its_row():
    sections = dict((cls, t) for t, cls in ref.sections())
    checked = 0
    for cls in sections:
        for f in dataclasses.fields(cls):
            if f.name not in ("actor_reg", "eval_every", "warmup"):
                continue
            row = _row_of(f.name)
            assert _comment_in_source(cls, f.name) in row
            assert f"| `{ref._value(f.default)}` |" in row
            checked += 1
    assert checked >= 3


@dataclass(frozen=True)
class _Example:
    plain: int = 1
    # the first line of a comment above,
    # and its second line
    above: str = "x"  # and one beside it
    # --- a note about the fields below
    noted: tuple[int, ...] = (1, 2)  # its own comment

    unrelated: bool = False


@dataclass(frozen=True)
class _Extended(_Example):
    plain: int = 2  # another default
    extra: float = 0.5  # a key of its own


def test_comment_parsing_rules():
    docs, notes = ref.fields(_Example)
    by_name = {d.name: d for d in docs}
    assert by_name["plain"].comment == ""
    assert by_name["above"].comment == (
        "the first line of a comment above, and its second line; and one beside it"
    )
    assert by_name["noted"].comment == "its own comment"
    assert by_name["noted"].default == "[1, 2]"
    assert by_name["noted"].type == "tuple[int, ...]"
    assert by_name["unrelated"].comment == ""  # a blank line ends a comment block
    assert notes == {"noted": "a note about the fields below"}
    extended = {d.name: d for d in ref.fields(_Extended)[0]}
    assert extended["above"].comment == by_name["above"].comment  # inherited with its comment
    assert extended["plain"].comment == "another default"


def test_reference_sections_of_the_config_are_used_when_present(monkeypatch):
    from predprey import config

    sections = [("base", _Example), ("extended", _Extended)]
    monkeypatch.setattr(config, "reference_sections", lambda: sections, raising=False)
    assert ref.sections() == sections
    tables = _tables(ref.markdown())
    assert list(tables) == ["base", "extended"]
    assert set(tables["extended"]) == {"plain", "extra"}  # the rest: see the base section
    assert "Also every key of *base* above." in ref.markdown()


def test_readme_is_a_guide_not_a_notebook():
    readme = Path(__file__).resolve().parents[1] / "README.md"
    assert len(readme.read_text().splitlines()) <= 250  # results and logs live in docs/
