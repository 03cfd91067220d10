"""The architecture as a test: layers import only downward, computation never imports plotting, only io
touches the network, and nothing happens at import (docs/DESIGN.md draws the same map)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "liqlab"
ORDER = ("io", "engine", "sim", "stats", "viz", "app")  # bottom to top
SHARED = {"errors", "_util", "_jit"}  # the foundation every layer may use
NETWORK = {"ccxt", "websockets", "aiohttp", "requests", "urllib3", "httpx", "socket", "urllib.request"}
PLOTTING = {"bokeh", "jupyter_bokeh", "ipywidgets", "matplotlib"}


def _modules() -> list[tuple[str, Path]]:
    out = []
    for p in sorted(PKG.rglob("*.py")):
        rel = p.relative_to(PKG)
        layer = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        out.append((layer, p))
    return out


def _imports(path: Path) -> set[str]:
    """Every module name an ``import`` or ``from ... import`` names, at any depth (functions included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import; liqlab uses absolute imports"
            if node.module == "liqlab":
                names.update(f"liqlab.{a.name}" for a in node.names)
            elif node.module:
                names.add(node.module)
                if node.module.startswith("liqlab."):  # from liqlab.io import dataset -> liqlab.io.dataset too
                    names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _liqlab_layer(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] != "liqlab" or len(parts) < 2 or parts[1].startswith("__"):  # liqlab.__version__ is no layer
        return None
    return parts[1]


def test_the_folder_list_shows_the_layers():
    top = {p.name for p in PKG.iterdir() if p.is_dir() and not p.name.startswith("__")} - {"data"}
    assert top == set(ORDER)
    flat = {p.stem for p in PKG.glob("*.py")}
    assert flat <= {"__init__", "__main__"} | SHARED, f"modules outside the layers: {sorted(flat - SHARED)}"
    for layer in ORDER:  # each layer says its job and what it may import
        doc = ast.get_docstring(ast.parse((PKG / layer / "__init__.py").read_text()))
        assert doc and "import" in doc, f"liqlab/{layer}/__init__.py needs a docstring with its import rule"


@pytest.mark.parametrize("layer,path", _modules(), ids=lambda x: str(x.relative_to(PKG)) if isinstance(x, Path) else x)
def test_layers_import_only_downward(layer, path):
    imports = _imports(path)
    if layer in ORDER:
        allowed = set(ORDER[: ORDER.index(layer) + 1]) | SHARED
        bad = sorted(n for n in imports if _liqlab_layer(n) and _liqlab_layer(n) not in allowed)
        assert not bad, f"{path.relative_to(PKG)} (layer {layer}) imports a higher layer: {bad}"
    if layer in SHARED:  # the foundation imports no layer
        bad = sorted(n for n in imports if _liqlab_layer(n) and _liqlab_layer(n) not in SHARED)
        assert not bad, f"{path.name} must not import liqlab layers: {bad}"
    if layer in {"io", "engine", "sim", "stats"} | SHARED:
        plots = sorted(n for n in imports if n.split(".")[0] in PLOTTING)
        assert not plots, f"{path.relative_to(PKG)}: computation imports plotting {plots}"
    if layer != "io":
        net = sorted(n for n in imports if n in NETWORK or n.split(".")[0] in NETWORK - {"urllib.request"})
        assert not net, f"{path.relative_to(PKG)}: only liqlab.io touches the network, found {net}"


def test_engine_never_imports_statistics():
    for layer, path in _modules():
        if layer == "engine":
            assert not any(_liqlab_layer(n) in {"stats", "sim"} for n in _imports(path)), path


def test_nothing_happens_at_import():
    """Importing every module loads no plotting, numba or exchange library below viz, opens no socket and
    starts no thread."""
    mods = [".".join(("liqlab",) + p.relative_to(PKG).with_suffix("").parts) for layer, p in _modules()
            if layer in {"io", "engine", "sim", "stats"} | SHARED and p.name != "__main__.py"]
    mods = [m[: -len(".__init__")] if m.endswith(".__init__") else m for m in mods]
    code = (
        "import socket, sys, threading\n"
        "def refuse(*a, **k): raise SystemExit('network at import')\n"
        "socket.socket.connect = refuse; socket.getaddrinfo = refuse\n"
        "n = threading.active_count()\n"
        f"import importlib\nfor m in {mods!r}: importlib.import_module(m)\n"
        "heavy = sorted(m for m in ('bokeh', 'numba', 'ccxt', 'ipywidgets', 'tqdm', 'dask') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "assert threading.active_count() == n, 'a thread started at import'\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]
