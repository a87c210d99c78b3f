"""The import contracts of pyproject.toml ([tool.importlinter]: layers, no cycles, config
imports no feature, service never imports distributed, viz reads only the run directory,
the single-process path imports neither Ray nor the HTTP stack) hold."""

from __future__ import annotations

from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold(capsys):
    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "0 broken" in out


def test_every_top_level_module_has_a_layer():
    """A new module outside the layers would escape the contract."""
    import tomllib

    import grimp

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c["layers"] for c in contracts["contracts"] if c["type"] == "layers")
    listed = {name.strip() for layer in layers for name in layer.replace("|", ":").split(":")}
    graph = grimp.build_graph("predprey")
    tops = {".".join(m.split(".")[:2]) for m in graph.modules} - {"predprey"}
    assert tops == listed, (sorted(tops - listed), sorted(listed - tops))
