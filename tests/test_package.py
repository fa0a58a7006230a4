"""Packaging promises: a light import, a working command line, and a layout that keeps one job per module."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

import tinyminilm


def test_import_is_light():
    code = ("import sys, tinyminilm; heavy = ['torch', 'onnxruntime', 'scipy', 'transformers', 'huggingface_hub', "
            "'tqdm', 'ray']; print([m for m in heavy if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_embed_prints_one_json_array_per_text(model_dir, model):
    run = subprocess.run([sys.executable, "-m", "tinyminilm", "embed", "--model", str(model_dir),
                          "hello world", "a second text"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(rows) == 2 and len(rows[0]) == 384
    np.testing.assert_allclose(np.array(rows), model.encode(["hello world", "a second text"]), atol=1e-7)


def test_cli_error_is_one_line(tmp_path):
    run = subprocess.run([sys.executable, "-m", "tinyminilm", "embed", "--model", str(tmp_path / "none"), "x"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr.startswith("tinyminilm: error:") and "Traceback" not in run.stderr


# --------------------------------------------------------------------------------------------------------------
# The layout: no module over 400 lines, no import cycle, the CLI the only code that prints
# --------------------------------------------------------------------------------------------------------------

MAX_LINES = 400
PACKAGE = Path(tinyminilm.__file__).resolve().parent


def _modules(root: Path) -> dict[str, Path]:
    """{dotted name: file} for every module of the package in `root` (a package's own name for its __init__)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = (root.name, *path.relative_to(root).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `name` imports anywhere — at the top, or lazily inside a function — except
    under `if TYPE_CHECKING:`, which never runs."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(n) for block in ast.walk(tree) if _type_checking_only(block)
               for stmt in block.body for n in ast.walk(stmt)}
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]  # the package relative imports start in
    targets = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = here.split(".")[:len(here.split(".")) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            for alias in node.names:  # `from . import hub` imports the module hub; `from .hub import x`, hub
                targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {t for t in targets if t in modules and t != name}


def _cycles(modules: dict[str, Path]) -> list[list[str]]:
    """The import cycles among `modules`: each strongly connected set of two or more modules, sorted."""
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def _long_modules(modules: dict[str, Path]) -> dict[str, int]:
    lengths = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules.items()}
    return {name: n for name, n in lengths.items() if n > MAX_LINES}


def _prints(modules: dict[str, Path], allowed: str) -> list[str]:
    """file:line of every print() call and sys.stdout / sys.stderr write outside the package `allowed`."""
    found = []
    for name, path in modules.items():
        if name == allowed or name.startswith(allowed + "."):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            if (isinstance(f, ast.Name) and f.id == "print") or (
                    isinstance(f, ast.Attribute) and f.attr == "write" and ast.unparse(f.value) in ("sys.stdout",
                                                                                                   "sys.stderr")):
                found.append(f"{path}:{node.lineno}")
    return found


def test_no_module_is_over_400_lines():
    assert _long_modules(_modules(PACKAGE)) == {}, f"split these modules by job (at most {MAX_LINES} lines each)"


def test_no_import_cycle_and_no_library_module_imports_the_cli():
    modules = _modules(PACKAGE)
    assert _cycles(modules) == [], "these modules import each other (top-level or lazy imports)"
    front = "tinyminilm.cli"
    into_cli = [name for name, path in modules.items() if not (name == front or name.startswith(front + "."))
                and name != "tinyminilm.__main__" and any(t == front or t.startswith(front + ".")
                                                          for t in _imports(name, path, modules))]
    assert into_cli == [], "library modules must not import the command line"


# fast.py is model.py's twin: it computes GELU with the textbook's own fitted constants (one home for them).
TWINS = {("fast", "model")}


def _private_imports(modules: dict[str, Path]) -> list[str]:
    """`file:line name` for each private name (one leading underscore) a module imports from another module of the
    package: each helper has one home, and a helper used elsewhere is public there."""
    found = []
    for path in modules.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or (path.stem, node.module) in TWINS:
                continue
            if node.level or (node.module or "").startswith(PACKAGE.name):
                found += [f"{path}:{node.lineno} {a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    return found


def test_no_module_imports_another_ones_private_names():
    assert _private_imports(_modules(PACKAGE)) == [], "make a helper public where it lives, or keep it private"


def test_only_the_cli_prints():
    assert _prints(_modules(PACKAGE), "tinyminilm.cli") == [], "library code logs; only tinyminilm/cli/ prints"


def test_the_layout_checks_find_what_they_look_for(tmp_path):
    """The three checks above, on a made-up package that breaks each rule (so they can fail)."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import a\n")
    (pkg / "a.py").write_text("import sys\n\ndef f():\n    from .sub import b\n    sys.stderr.write('x')\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .. import c\n"
                                      "from ..a import f\n" + "x = 1\n" * MAX_LINES)
    (pkg / "c.py").write_text("from .sub.b import x\nprint(x)\n")
    (pkg / "cli.py").write_text("print('the command line may')\n")
    modules = _modules(pkg)
    assert set(modules) == {"pkg", "pkg.a", "pkg.sub", "pkg.sub.b", "pkg.c", "pkg.cli"}
    assert _imports("pkg.sub.b", modules["pkg.sub.b"], modules) == {"pkg.a"}  # TYPE_CHECKING's `c` never runs
    assert _cycles(modules) == [["pkg.a", "pkg.sub.b"]]  # through a lazy import inside a function
    assert _long_modules(modules) == {"pkg.sub.b": MAX_LINES + 4}
    assert _prints(modules, "pkg.cli") == [f"{pkg / 'a.py'}:5", f"{pkg / 'c.py'}:2"]
    (pkg / "d.py").write_text("from .a import _helper, __doc__\n")
    assert _private_imports(_modules(pkg)) == [f"{pkg / 'd.py'}:1 _helper"]
