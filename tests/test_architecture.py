"""The package's tree tells its architecture, and these tests keep it that way.

Layers, from the bottom: the foundation (recording, validation, prices, exercises, queueing,
capacity, the evidence core, and the private plumbing in ``_core``, which every layer may import
and which itself stands on nothing but the standard library, psutil and validation); the course's
sections (constraints, complexity, deployment, scaling), which notebooks import;
views (plots and widgets) on top of them; and the harness, which runs notebooks and which
nothing imports. Imports only point down (a section may use another section's public names
inside a function, never at import time in a cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlscale_lab"
MAX_LINES = 400
FOUNDATION = {"recording", "validation", "prices", "exercises", "queueing", "capacity", "evidence",
              "_core"}
SECTIONS = {"constraints", "complexity", "deployment", "scaling"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "_labs" not in p.parts}


def _layer(module: str) -> str:
    top = module.split(".")[1] if "." in module else ""
    if top == "__main__":
        return "root"
    if top == "" or top in FOUNDATION:  # the package's __init__ re-exports the foundation
        return "foundation"
    if top in SECTIONS:
        return "section"
    return top  # views, harness


RANK = {"foundation": 0, "section": 1, "views": 2, "harness": 3, "root": 4}


def _imports(module: str, path: Path, *, top_level_only: bool = False):
    """(imported module, names, line) for every import of mlscale_lab in ``module``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else ast.walk(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mlscale_lab"):
                    yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("mlscale_lab"):
                continue
            names = [a.name for a in node.names]
            # `from mlscale_lab.scaling import serving` imports the module scaling.serving
            for name in names:
                if f"{target}.{name}" in MODULES:
                    yield f"{target}.{name}", [], node.lineno
            yield target, [n for n in names if f"{target}.{n}" not in MODULES], node.lineno


def test_imports_only_point_down():
    wrong = []
    for module, path in MODULES.items():
        for target, _, line in _imports(module, path):
            if target not in MODULES:
                wrong.append(f"{module}:{line} imports {target}, which does not exist")
                continue
            here, there = _layer(module), _layer(target)
            if RANK[there] > RANK[here]:
                wrong.append(f"{module}:{line} ({here}) imports {target} ({there})")
            if target == "mlscale_lab.harness.cli" and module not in ("mlscale_lab.__main__",):
                wrong.append(f"{module}:{line} imports the CLI")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_at_import_time():
    graph = {m: {t for t, _, _ in _imports(m, p, top_level_only=True) if t in MODULES and t != m}
             for m, p in MODULES.items()}
    # a package's __init__ importing its own private modules is not a cycle of ideas, but a
    # module importing back the package that imports it is one
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_private_name_is_imported_from_another_module():
    wrong = [f"{m}:{line} imports {n} from {t}"
             for m, p in MODULES.items() for t, names, line in _imports(m, p)
             for n in names if n.startswith("_") and not n.startswith("__")]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_is_small_enough_to_read_in_one_sitting(module):
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines; split it by idea (at most {MAX_LINES})"


def _public_definitions(tree):
    for node in tree.body:
        if (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and not node.name.startswith("_")):
            yield node.name, node
            if isinstance(node, ast.ClassDef):
                for sub in node.body:
                    if (isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef)
                            and not sub.name.startswith("_")):
                        yield f"{node.name}.{sub.name}", sub


def test_every_public_name_has_a_docstring():
    missing = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if not ast.get_docstring(tree):
            missing.append(f"{module} (module)")
        missing += [f"{module}.{name}" for name, node in _public_definitions(tree)
                    if not ast.get_docstring(node)]
    assert not missing, f"{len(missing)} public names without a docstring:\n" + "\n".join(missing)


def test_sections_and_views_never_import_the_harness_or_notebook_runner():
    # the rule the tree is built on, said once more in the words a reviewer would use
    for module, path in MODULES.items():
        if _layer(module) in ("section", "views", "foundation"):
            for target, _, line in _imports(module, path):
                assert not target.startswith("mlscale_lab.harness"), f"{module}:{line} -> {target}"


def test_core_is_the_bottom_and_speaks_in_public_names():
    # Everyone may import _core; _core imports only itself and the argument checker, each of
    # its modules says what it offers in __all__, and nothing in it is private to another.
    wrong = []
    for module, path in MODULES.items():
        if not module.startswith("mlscale_lab._core"):
            continue
        for target, _, line in _imports(module, path):
            if not (target.startswith("mlscale_lab._core") or target == "mlscale_lab.validation"):
                wrong.append(f"{module}:{line} imports {target}: _core stands on nothing above it")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        exported = next((ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                         and any(getattr(t, "id", "") == "__all__" for t in node.targets)), None)
        if path.name != "__init__.py" and not exported:
            wrong.append(f"{module} has no __all__")
        wrong += [f"{module} exports the private {n}" for n in exported or [] if n.startswith("_")]
    assert not wrong, "\n".join(wrong)


def test_notebooks_never_import_the_private_foundation():
    import json

    labs = PACKAGE.parent / "labs"
    found = [f"{nb.name} cell {i}" for nb in sorted(labs.glob("*.ipynb"))
             for i, cell in enumerate(json.loads(nb.read_text(encoding="utf-8"))["cells"])
             if cell["cell_type"] == "code" and "mlscale_lab._core" in "".join(cell["source"])]
    assert not found, f"notebooks import the sections' public names, not _core: {found}"


#: Test files that are about the whole suite or product rather than one section's module.
SUITE_WIDE = {"architecture", "binder", "browser", "exercise_trials", "exercises", "import",
              "lab_runs", "labs", "notebooks", "portability", "temporary_files"}


def test_test_files_mirror_the_package():
    """``tests/test_<section>_<topic>.py`` (or a top-level module's name, or suite-wide)."""
    tests = Path(__file__).parent
    package = tests.parent / "mlscale_lab"
    sections = {p.name.lstrip("_") for p in package.iterdir() if (p / "__init__.py").exists()}
    sections |= {"grading"}  # harness/grading/ is a section of its own
    modules = {p.stem for p in package.glob("*.py") if not p.stem.startswith("_")}
    wrong = []
    for f in sorted(tests.glob("test_*.py")):
        name = f.stem[len("test_"):]
        if name in SUITE_WIDE or name in modules or name in sections:
            continue
        if not any(name.startswith(s + "_") for s in sections):
            wrong.append(f.name)
    assert not wrong, f"name these tests test_<section>_<topic>.py (sections: {sorted(sections)}): {wrong}"
