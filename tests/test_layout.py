"""The package's shape, checked statically over every import statement (function-level ones too):

* the import-linter contracts of ``pyproject.toml`` (layers, inference never imports training or
  evaluation, computation never imports matplotlib) hold -- and fail on a deliberately added
  forbidden import, so the check can see what it guards;
* no import cycle between any two modules of ``lowlight``;
* no private name (leading underscore) imported across subpackages;
* no module longer than 500 lines, no function longer than 80.

A runtime check completes it: ``lowlight.predict`` on a real photo loads neither training code nor
matplotlib."""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import lowlight
from lowlight import config

PACKAGE = Path(lowlight.__file__).resolve().parent
MAX_LINES = 500
MAX_FUNCTION_LINES = 80


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` over the package under ``root`` with the contracts of ``root/pyproject.toml``."""
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                           "sys.exit(lint_imports_command())", "--no-cache", "--config", str(root / "pyproject.toml")],
                          capture_output=True, text=True, env=env, cwd=root, timeout=300)


def test_import_contracts_hold():
    r = _lint_imports(config.ROOT)
    assert r.returncode == 0, f"import contracts broken (lint-imports exit {r.returncode}):\n{r.stdout[-4000:]}{r.stderr[-2000:]}"
    assert "Contracts: 4 kept, 0 broken." in r.stdout, r.stdout[-2000:]


def test_import_contracts_fail_on_a_forbidden_import(tmp_path):
    """A copy of the package with two forbidden function-level imports added: predict -> training,
    data -> matplotlib. The contracts must report both."""
    shutil.copytree(PACKAGE, tmp_path / "lowlight", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(config.ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for rel, line in (("predict.py", "from .training import trainer"), ("data/photos.py", "import matplotlib.pyplot")):
        path = tmp_path / "lowlight" / rel
        path.write_text(path.read_text(encoding="utf-8") + f"\n\ndef _probe():\n    {line}\n", encoding="utf-8")
    r = _lint_imports(tmp_path)
    assert r.returncode != 0, f"lint-imports passed a package with forbidden imports:\n{r.stdout[-3000:]}"
    assert "lowlight.predict -> lowlight.training" in r.stdout, r.stdout[-3000:]
    assert "lowlight.data.photos -> matplotlib" in r.stdout, r.stdout[-3000:]


def _module_graph() -> dict[str, set[str]]:
    import grimp

    graph = grimp.build_graph("lowlight", cache_dir=None)
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_known_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_package():
    graph = _module_graph()
    assert len(graph) > 40 and sum(map(len, graph.values())) > 150      # grimp saw the package
    cycles = _cycles(graph)
    assert not cycles, "import cycles (every import statement counted, function-level too):\n  " + "\n  ".join(
        " <-> ".join(c) for c in cycles)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        yield path, ".".join(parts), is_package


def test_no_private_name_is_imported_across_subpackages():
    """``from lowlight.x._y import z`` or ``from lowlight.x.y import _z`` is allowed only inside
    ``lowlight.x`` (a private helper is its subpackage's business)."""
    offenders = []
    for path, module, is_package in _sources():
        home = ".".join(module.split(".")[:2])
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            src = _resolve(module, is_package, node)
            if not src.startswith("lowlight"):
                continue
            names = [a.name for a in node.names]
            if any(_private(p) for p in src.split(".")) or any(_private(n) for n in names):
                src_home = ".".join(src.split(".")[:2])
                if src_home != home or src_home == src == module:
                    offenders.append(f"{module}:{node.lineno} imports {src} {names}")
    assert not offenders, "private names imported across subpackages:\n  " + "\n  ".join(offenders)


def test_no_module_or_function_is_longer_than_the_limit():
    long_modules, long_functions = [], []
    n_modules = 0
    for path, module, _ in _sources():
        text = path.read_text(encoding="utf-8")
        n_modules += 1
        if len(text.splitlines()) > MAX_LINES:
            long_modules.append(f"{module} ({len(text.splitlines())} lines)")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long_functions.append(f"{module}.{node.name} ({n} lines)")
    assert n_modules > 40                 # the walk found the package
    assert not long_modules, f"modules over {MAX_LINES} lines (split them by concept): {long_modules}"
    assert not long_functions, f"functions over {MAX_FUNCTION_LINES} lines: {long_functions}"


def _child(code: str, timeout: float = 300) -> dict:
    """Run ``code`` in a fresh interpreter (one thread, smoke profile); its last stdout line is JSON."""
    env = dict(os.environ, LOWLIGHT_PROFILE="smoke", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                       cwd=config.ROOT, timeout=timeout)
    assert r.returncode == 0, f"child failed (exit {r.returncode}):\n{r.stderr[-3000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_predict_never_loads_training_evaluation_nor_matplotlib(tmp_path):
    """The batch CLI, run on a real photo with the default model, stays on the inference side at
    run time too (what the static contract says of its imports)."""
    res = _child(f"""
        import json, os, sys
        import cv2
        from skimage import data
        img = cv2.resize(data.astronaut(), (64, 64), interpolation=cv2.INTER_AREA)
        inp = {str(tmp_path / "in")!r}
        os.makedirs(inp)
        cv2.imwrite(os.path.join(inp, "astronaut.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        watched = lambda: sorted(m for m in sys.modules
                                 if m.startswith(("matplotlib", "lowlight.training", "lowlight.evaluation")))
        after_setup = watched()
        import lowlight.predict as predict
        after_import = watched()
        rc = predict.main(["--input", inp, "--output", {str(tmp_path / "out")!r}, "--no-progress",
                           "--device", "cpu"])
        print(json.dumps({{"rc": rc, "setup": after_setup, "import": after_import, "main": watched()}}))
        """)
    assert res["setup"] == [], f"the test's own set-up imported {res['setup']} (skimage/cv2 should not)"
    assert res["rc"] == 0
    assert (tmp_path / "out" / "astronaut_alpha.png").is_file() and (tmp_path / "out" / "astronaut_rgba.png").is_file()
    assert res["import"] == [], f"`import lowlight.predict` imported {res['import']}"
    assert res["main"] == [], f"predict.main() on a folder imported {res['main']}"
