"""Project-level guarantees: one dependency list, no import side effects, thin clean notebooks."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_environment_yml_installs_the_project_not_a_second_list():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    deps = env["dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict)]
    assert any(d.startswith("python") and ">=3.11" in d for d in conda)
    assert "pip" in conda
    # nothing else from conda: every dependency comes from pyproject.toml through the project install
    assert sorted(conda) == sorted(d for d in conda if d.startswith("python") or d == "pip")
    assert pip_sections == [["-e .[dev]"]]


def test_pyproject_is_the_source_of_truth():
    pp = tomllib.loads((REPO / "pyproject.toml").read_text())
    names = {d.split(">")[0].split("=")[0].split("[")[0].strip().lower() for d in pp["project"]["dependencies"]}
    for core in ["jupyterlab", "ipywidgets", "bokeh", "pandas", "numpy", "ccxt", "papermill", "nbval", "jupyter_bokeh"]:
        assert core in names, core
    assert pp["project"]["requires-python"] == ">=3.11"
    assert pp["project"]["scripts"]["liqlab"] == "liqlab.app.cli:main"
    assert "dev" in pp["project"]["optional-dependencies"]


def test_import_has_no_side_effects():
    code = (
        "import sys, liqlab, liqlab.io.dataset, liqlab.app.cli;"
        "heavy={'numba','bokeh','ccxt','dask','distributed','requests','ipywidgets','papermill','aiohttp'};"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stdout


def test_network_only_in_fetcher_and_recorder():
    allowed = {"fetch.py", "record.py"}  # the command wrappers
    packages = {("io", "fetch"), ("io", "record")}  # the fetcher and the recorder
    net = {"requests", "urllib", "socket", "http", "ccxt", "aiohttp", "websockets"}
    offenders = []
    for path in (REPO / "liqlab").rglob("*.py"):
        if path.name in allowed or path.relative_to(REPO / "liqlab").parts[:2] in packages:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods = [node.module]
            offenders += [f"{path.relative_to(REPO)}: {m}" for m in mods if m.split(".")[0] in net]
    # the command wrappers of fetch/record may import their library module only
    assert offenders == []


def test_cli_lists_every_subcommand_and_each_has_a_function():
    from liqlab.app.cli import COMMANDS, build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    missing = [c for c in COMMANDS if c not in sub.choices]
    assert missing == [], f"subcommands without a module: {missing}"
    for name, p in sub.choices.items():
        assert callable(p.get_default("_run")), name


def test_cli_unknown_and_missing_args_are_one_line():
    res = subprocess.run([sys.executable, "-m", "liqlab", "info"], capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr


NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_notebooks_exist():
    names = [p.name for p in NOTEBOOKS]
    assert "01_data.ipynb" in names


def test_notebooks_have_parameters_and_no_outputs():
    for nb_path in NOTEBOOKS:
        nb = json.loads(nb_path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{nb_path.name}: needs exactly one cell tagged 'parameters'"
        for c in code:
            assert not c.get("outputs") and c.get("execution_count") is None, f"{nb_path.name} committed with outputs"
        assert nb["metadata"].get("kernelspec", {}).get("name") == "python3", nb_path.name


def test_public_api_resolves_and_keeps_its_meaning():
    """Every advertised name resolves; functions stay functions after their module is imported."""
    import importlib
    import types

    import liqlab

    for name in liqlab.__all__:
        obj = getattr(liqlab, name)
        assert obj is not None, name
        if liqlab._API[name] is None:
            assert isinstance(obj, types.ModuleType), name
    importlib.import_module("liqlab.sim.simulation")
    importlib.import_module("liqlab.viz.widgets")
    assert callable(liqlab.simulate) and not isinstance(liqlab.simulate, types.ModuleType)
    assert callable(liqlab.explore) and not isinstance(liqlab.explore, types.ModuleType)
    assert callable(liqlab.io.fetch.fetch) and callable(liqlab.stats.score.score)


def test_docs_and_notebooks_cite_no_outside_documents_or_issue_numbers():
    """The repository stands alone: it cites no outside method document and no issue number ("issue" or
    "(#" followed by a number) that a reader of it does not have; the package's sources included."""
    import re

    pattern = re.compile(r"METHOD\.md|\bissue #?\d+|\(#\d+\)", re.I)
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *NOTEBOOKS,
             *sorted((REPO / "liqlab" / "data" / "tiers").glob("*.json")), *sorted((REPO / "liqlab").rglob("*.py"))]
    hits = [f"{f.relative_to(REPO)}:{i}" for f in files for i, line in enumerate(f.read_text().splitlines(), 1)
            if pattern.search(line)]
    assert hits == []
