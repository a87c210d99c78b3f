"""The docs: the generated config reference lists every key of every section with its
comment, and the README stays a guide."""

import dataclasses
from dataclasses import dataclass

from predprey import config_reference as ref
from predprey.config import AlgoConfig, TrainConfig


def _table_rows(page: str, title: str) -> list[str]:
    """The table rows of section `title` of the generated page."""
    body = page.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in body.splitlines() if line.startswith("| `")]


def test_every_field_of_every_section_is_listed():
    page = ref.markdown()
    sections = ref.sections()
    assert {"algo", "train", "buffer", "distributed", "population"} <= {t for t, _ in sections}
    for title, cls in sections:
        rows = _table_rows(page, title)
        names = [f.name for f in dataclasses.fields(cls)]
        assert [r.split("`")[1] for r in rows] == names, title


def test_comments_next_to_and_above_a_field_are_its_description():
    page = ref.markdown()
    algo = {r.split("`")[1]: r for r in _table_rows(page, "algo")}
    trailing = "weight of mean(pre-tanh action^2) in the actor loss"
    assert trailing in algo["actor_reg"]
    # a comment of several lines above the field, joined
    assert "MAPPO's value normalisation" in algo["value_norm"]
    assert "fit at one learning rate" in algo["value_norm"]
    train = {r.split("`")[1]: r for r in _table_rows(page, "train")}
    assert "env steps between evaluations" in train["eval_every"]
    assert f"| `{TrainConfig.eval_every}` |" in train["eval_every"]  # the default
    assert f"| `{AlgoConfig.gamma}` |" in algo["gamma"]


@dataclass(frozen=True)
class _Example:
    plain: int = 1
    # the first line of a comment above,
    # and its second line
    above: str = "x"  # and one beside it
    # --- a note about the fields below
    noted: tuple[int, ...] = (1, 2)  # its own comment

    unrelated: bool = False


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


def test_reference_sections_of_the_config_are_used_when_present(monkeypatch):
    from predprey import config

    monkeypatch.setattr(config, "reference_sections", lambda: [("only", _Example)], raising=False)
    assert ref.sections() == [("only", _Example)]
    page = ref.markdown()
    assert "## only" in page and "## algo" not in page


def test_readme_is_a_guide_not_a_notebook():
    from pathlib import Path

    readme = Path(__file__).resolve().parents[1] / "README.md"
    assert len(readme.read_text().splitlines()) <= 250  # results and logs live in docs/
