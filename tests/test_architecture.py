"""The package's import graph keeps the pipeline's shape (read from the source with ``ast``).

Rules: only ``embed/`` (and ``cli/``) import ``backbone/``; the light stages (``store``,
``prepare``, ``dataset``, ``alignments``) and ``embedhead --help`` do not import torch; no import
cycle among embedhead modules; imports sit at module top inside the library (``cli/`` command
bodies may import lazily). ``if TYPE_CHECKING:`` imports never run, so they are not edges.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "embedhead"
# Deferred imports of optional extras (a missing extra degrades gracefully): file -> modules.
OPTIONAL_EXTRAS = {"embedhead/report/render.py": {"matplotlib", "matplotlib.pyplot"}}
LIGHT_MODULES = (
    "embedhead.store",
    "embedhead.prepare",
    "embedhead.dataset",
    "embedhead.alignments",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported (not inside functions/classes/TYPE_CHECKING)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.append(node)
            elif isinstance(node, ast.If):
                if not _is_type_checking(node):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.With):
                visit(node.body)

    visit(tree.body)
    return found


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The embedhead modules an import statement loads (``from pkg import sub`` -> ``pkg.sub``)."""
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    else:
        base = node.module or ""
        if node.level:
            package = module.split(".")
            if MODULES[module].name != "__init__.py":
                package = package[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join([*package, base] if base else package)
        names = {base} | {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in names if name in MODULES}


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges: set[str] = set()
        for node in _module_level_imports(tree):
            edges |= _targets(module, node)
        # importing a.b.c runs a/__init__ and a/b/__init__ first
        for target in list(edges):
            parts = target.split(".")
            edges |= {".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i])}
        edges.discard(module)
        graph[module] = {e for e in edges if not module.startswith(e + ".")}
    return graph


GRAPH = _graph()


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_graph_sees_the_package():
    # guards against a graph builder that finds nothing (and so passes every rule below)
    assert "embedhead.embed.run" in GRAPH
    assert "embedhead.backbone" in GRAPH["embedhead.embed.run"]
    assert "embedhead.store" in GRAPH["embedhead.heads.train"]


def test_cycle_finder_reports_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_only_embed_and_cli_import_the_backbone():
    allowed = ("embedhead.backbone", "embedhead.embed", "embedhead.cli")
    offenders = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if not any(module == a or module.startswith(a + ".") for a in allowed)
        for target in targets
        if target == "embedhead.backbone" or target.startswith("embedhead.backbone.")
    )
    assert offenders == []


def test_no_import_cycle():
    cycle = _find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_function_local_imports_in_the_library():
    offenders = []
    for module, path in MODULES.items():
        if module == "embedhead.cli" or module.startswith("embedhead.cli."):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        extras = OPTIONAL_EXTRAS.get(str(path.relative_to(ROOT)), set())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                offenders += [
                    f"{path.relative_to(ROOT)}:{inner.lineno}"
                    for inner in ast.walk(node)
                    if isinstance(inner, ast.Import | ast.ImportFrom)
                    and not (
                        isinstance(inner, ast.Import) and {a.name for a in inner.names} <= extras
                    )
                ]
    assert offenders == []


def _run(code: str | None = None, args: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, *(("-c", code) if code else args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_light_stages_do_not_import_torch(module):
    result = _run(f"import sys, {module}; print('torch' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False", f"{module} imports torch"


def test_help_does_not_import_torch():
    code = (
        "import sys, runpy\n"
        "sys.argv = ['embedhead', '--help']\n"
        "try:\n"
        "    runpy.run_module('embedhead', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        "print('TORCH' if 'torch' in sys.modules else 'LIGHT')\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
    assert result.stdout.strip().endswith("LIGHT"), "`embedhead --help` imports torch"
