"""The static scan: the second line of defence, reading what a submission's own code does.

The first line is the pristine replay (:mod:`._pristine`): tests run in a fresh process that
no code of the submission ever runs in (a test's calls into it run back in its kernel and
answer in plain data). This scan is what the instructor reads beside the grades: it reads
every cell the learner wrote (answer cells, added cells, edited lab cells) and names what a
fair answer never needs: rebinding a builtin or
a name the tests read, reaching the IPython shell or the kernel, patching a library, editing
``sys.modules``, reading frames, loading ``ctypes``, customising pickling, running code built
at run time. Each finding is a plain sentence that ends up in the submission's ``flagged``
reason, for the instructor to look at.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field

from mlscale_lab.harness.grading._source import dotted_name, parse_cell

_BUILTIN_NAMES = frozenset(n for n in dir(builtins) if not n.startswith("__")) - {
    # Rebinding these changes nothing a test relies on.
    "copyright", "credits", "license", "exit", "quit", "help",
}
_SHELL_NAMES = frozenset({"get_ipython", "In", "Out", "_ih", "_oh", "_dh", "__IPYTHON__", "_i",
                          "_ii", "_iii"})
_HOOK_ATTRS = frozenset({
    "input_transformers_post", "input_transformers_cleanup", "input_transformer_manager",
    "ast_transformers", "do_execute", "run_cell", "run_cell_async", "run_ast_nodes", "run_code",
    "set_custom_exc", "showtraceback", "showsyntaxerror", "custom_exceptions", "events", "kernel",
    "shell", "user_ns", "user_global_ns", "displayhook", "display_pub", "excepthook",
    "settrace", "setprofile", "meta_path", "path_hooks", "_getframe", "f_globals", "f_locals",
    "f_back", "f_builtins", "tb_frame", "gi_frame", "cr_frame", "__globals__", "__code__",
    "__builtins__", "__closure__", "__subclasses__", "get_referrers", "get_referents",
    "get_objects", "__wrapped__", "__module__",
})
_DANGEROUS_MODULES = frozenset({"builtins", "__builtin__", "ctypes", "gc", "inspect", "importlib",
                                "IPython", "ipykernel", "atexit", "copyreg", "marshal", "cffi",
                                "_ctypes", "code", "codeop", "sys.modules",
                                # processes, signals, raw descriptors: ways to answer for the test
                                "subprocess", "signal", "socket", "mmap", "multiprocessing",
                                "threading", "_thread", "pty", "fcntl", "posix", "nt",
                                "resource", "faulthandler"})
#: ``os`` functions that act on processes and raw file descriptors: with them, code inside an
#: answer could write a verdict on the grader's channel or end the test's process early.
_OS_PROCESS_CALLS = frozenset({
    "_exit", "abort", "write", "writev", "pwrite", "dup", "dup2", "fdopen", "open", "close",
    "closerange", "pipe", "kill", "killpg", "fork", "forkpty", "system", "popen", "readlink",
    "setpgid", "setsid", "execv", "execve", "execl", "execle", "execlp", "execvp", "execvpe",
    "spawnv", "spawnve", "spawnl", "spawnle", "posix_spawn", "register_at_fork"})
#: Paths and variables that lead to the grader's own files and descriptors.
_GRADER_PATH_HINTS = ("/proc/", "/dev/fd", "MPLCONFIGDIR", "IPYTHONDIR", "snapshots")
_DYNAMIC_CALLS = frozenset({"exec", "eval", "compile", "__import__", "globals", "vars", "locals",
                            "setattr", "delattr"})
_PICKLE_HOOKS = frozenset({"__reduce__", "__reduce_ex__", "__setstate__", "__getstate__",
                           "__getnewargs__", "__getnewargs_ex__"})
#: Library settings a learner may change openly (display options, backends).
_ALLOWED_PATCH_PREFIXES = ("pd.options", "pandas.options", "plt.rcParams", "matplotlib.rcParams",
                           "torch.backends", "os.environ")
#: Comparisons and truth tests an answer could make always succeed.
_ALWAYS_DUNDERS = frozenset({"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__",
                             "__contains__", "__instancecheck__", "__subclasscheck__"})
#: Magics an IPython cell may use: IPython turns them into get_ipython() calls.
ALLOWED_MAGICS = frozenset({"time", "timeit", "matplotlib", "capture", "prun", "writefile",
                            "pip", "config", "load_ext", "memit"})


@dataclass
class LabNames:
    """What the lab's own (instructor) cells define, read from its source notebook."""

    instructor_sources: set[str] = field(default_factory=set)
    instructor_bound: set[str] = field(default_factory=set)
    modules: set[str] = field(default_factory=set)  # names bound by an import in the lab's cells
    answer_bound: set[str] = field(default_factory=set)  # names the reference answers bind
    test_reads: set[str] = field(default_factory=set)  # names any test cell reads


def top_level_bindings(tree: ast.Module) -> set[str]:
    """Names a cell binds in the notebook's namespace (not inside functions or classes)."""
    names: set[str] = set()

    def visit(node):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            return
        if isinstance(node, ast.Lambda):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for a in node.names:
                names.add(a.asname or a.name.split(".")[0])
        for child in ast.iter_child_nodes(node):
            visit(child)

    for stmt in tree.body:
        visit(stmt)
    return names


def import_bindings(tree: ast.Module) -> set[str]:
    """Names bound by import statements anywhere in a cell."""
    return {a.asname or a.name.split(".")[0] for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom) for a in node.names}


def free_names(tree: ast.Module) -> set[str]:
    """Every name a cell reads (a superset of what it needs from the notebook's namespace)."""
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _root(node) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _magic_call(node: ast.Call) -> bool:
    """``get_ipython().run_line_magic('timeit', ...)`` as IPython writes an allowed magic."""
    f = node.func
    if not (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Call)
            and isinstance(f.value.func, ast.Name) and f.value.func.id == "get_ipython"):
        return False
    if f.attr in ("system", "getoutput"):
        return True
    return (f.attr in ("run_line_magic", "run_cell_magic") and node.args
            and isinstance(node.args[0], ast.Constant) and node.args[0].value in ALLOWED_MAGICS)


def scan_cell(source: str, lab: LabNames) -> list[str]:
    """What one learner-written cell does that a fair answer never needs (plain sentences)."""
    tree = parse_cell(source)
    if tree is None:
        return []
    found: list[str] = []
    modules = set(lab.modules) | import_bindings(tree)
    # Aliases of modules (``t = np.testing``) count as modules.
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _root(node.value) in modules and isinstance(node.value, ast.Name | ast.Attribute):
            modules |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    protected = (lab.instructor_bound & lab.test_reads) - lab.answer_bound
    allowed_magic_nodes = {id(n.func.value) for n in ast.walk(tree) if isinstance(n, ast.Call) and _magic_call(n)}
    allowed_magic_nodes |= {id(n.func.value.func) for n in ast.walk(tree)
                            if isinstance(n, ast.Call) and _magic_call(n)}

    for name in sorted(top_level_bindings(tree)):
        if name in _BUILTIN_NAMES:
            found.append(f"rebinds the builtin `{name}`, which tests call")
        elif name in protected:
            found.append(f"rebinds `{name}`, which the lab's own cells define and its tests read")
        elif name in _SHELL_NAMES:
            found.append(f"rebinds the IPython name `{name}`")
    for node in ast.walk(tree):
        if isinstance(node, ast.Global | ast.Nonlocal):
            bad = [n for n in node.names if n in _BUILTIN_NAMES or n in protected]
            if bad:
                found.append(f"a function rebinds `{'`, `'.join(bad)}` in the notebook's namespace")
        elif isinstance(node, ast.Name) and node.id in _SHELL_NAMES and id(node) not in allowed_magic_nodes:
            found.append(f"reaches the IPython shell (`{node.id}`)")
        elif isinstance(node, ast.Name) and node.id in ("__builtins__", "__builtin__"):
            found.append("reaches `__builtins__`")
        elif isinstance(node, ast.Attribute) and node.attr in _HOOK_ATTRS and not (
                isinstance(node.value, ast.Call) and id(node.value) in allowed_magic_nodes):
            found.append(f"touches `.{node.attr}` (a hook of the shell, the kernel or the interpreter)")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.module == "sys":
                mods += [f"sys.{a.name}" for a in node.names]
            for m in mods:
                if m in _DANGEROUS_MODULES or m.split(".")[0] in _DANGEROUS_MODULES:
                    found.append(f"imports `{m}`")
        elif (isinstance(node, ast.Attribute) and node.attr in _OS_PROCESS_CALLS
              and dotted_name(node.value) in ({"os"} | {m for m in modules if _is_os_alias(tree, m)})):
            found.append(f"uses `os.{node.attr}` (processes or raw file descriptors: a fair answer "
                         "never needs them)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and any(
                h in node.value for h in _GRADER_PATH_HINTS):
            found.append(f"names {node.value[:40]!r} (the grader's own files or descriptors)")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
              and len(node.args) >= 2 and not isinstance(node.args[1], ast.Constant)):
            found.append("calls `getattr` with a name computed at run time (the scan cannot read it)")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _DYNAMIC_CALLS:
            target = node.args[0] if node.args else None
            if node.func.id in ("setattr", "delattr"):
                root = _root(target) if target is not None else None
                if root is None or root in modules or root in protected or root in _BUILTIN_NAMES:
                    found.append(f"calls `{node.func.id}` on `{dotted_name(target) or 'an object'}`")
            else:
                found.append(f"calls `{node.func.id}()` (code or namespaces the scan cannot read)")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in _PICKLE_HOOKS:
            found.append(f"defines `{node.name}` (runs code when the grader loads the answer)")
        elif _constant_dunder(node):
            found.append(f"defines `{_constant_dunder(node)}` returning a constant (an answer that "
                         "compares equal to anything)")
        elif isinstance(node, ast.Attribute) and node.attr == "modules" and dotted_name(node) == "sys.modules":
            found.append("touches `sys.modules`")
        elif isinstance(node, ast.Attribute) and node.attr == "__dict__":
            found.append("reaches an object's `__dict__`")
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            for t in targets:
                for sub in ast.walk(t):
                    if not isinstance(sub, ast.Attribute | ast.Subscript):
                        continue
                    path, root = dotted_name(sub if isinstance(sub, ast.Attribute) else sub.value), _root(sub)
                    if any(path == p or path.startswith(p + ".") for p in _ALLOWED_PATCH_PREFIXES):
                        continue
                    if isinstance(sub, ast.Attribute) and sub.attr.startswith("__") and sub.attr.endswith("__"):
                        found.append(f"assigns `{path}` (rewires an object's class or code)")
                    elif isinstance(sub, ast.Attribute) and root in modules:
                        found.append(f"patches `{path}` (a library's attribute)")
                    elif root in protected and _is_top_level(tree, node):
                        found.append(f"changes `{path or root}`, which the lab's own cells define and its tests read")
                    break
    return list(dict.fromkeys(found))


def _is_os_alias(tree: ast.Module, name: str) -> bool:
    """Whether ``name`` is bound by ``import os as name`` in this cell."""
    return any(isinstance(n, ast.Import) and any(a.name == "os" and a.asname == name for a in n.names)
               for n in ast.walk(tree))


def _constant_dunder(node) -> str | None:
    """The name of a comparison dunder defined to return a constant (def or lambda), else None."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in _ALWAYS_DUNDERS:
        returns = [n for n in ast.walk(node) if isinstance(n, ast.Return)]
        if returns and all(isinstance(r.value, ast.Constant) for r in returns):
            return node.name
    if isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda) and isinstance(node.value.body, ast.Constant):
        names = [t.id for t in node.targets if isinstance(t, ast.Name) and t.id in _ALWAYS_DUNDERS]
        return names[0] if names else None
    return None


def _is_top_level(tree: ast.Module, node) -> bool:
    return any(node is stmt or any(node is n for n in ast.walk(stmt))
               for stmt in tree.body if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef
                                                       | ast.ClassDef | ast.Lambda))


def lab_names(source_nb) -> LabNames:
    """What a lab's source notebook defines, for :func:`scan_cell` and the replay plan."""
    names = LabNames()
    for cell in source_nb.cells:
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        tree = parse_cell(cell.source)
        if tree is None:
            continue
        if meta.get("solution"):
            names.answer_bound |= top_level_bindings(tree)
            continue
        names.instructor_sources.add(normalise(cell.source))
        if meta.get("grade"):
            names.test_reads |= free_names(tree)
        else:
            names.instructor_bound |= top_level_bindings(tree)
            names.modules |= import_bindings(tree)
    return names


def normalise(source: str) -> str:
    """A cell's source with trailing spaces and blank ends removed (to compare cells)."""
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def scan_submission(nb, lab: LabNames) -> list[str]:
    """Findings for every cell of ``nb`` the learner wrote or changed, each naming its cell."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            continue  # test cells were restored from the lab's source
        if not meta.get("solution") and normalise(cell.source) in lab.instructor_sources:
            continue  # a lab cell, unchanged
        where = meta.get("grade_id") or f"cell {i}"
        found += [f"{where}: {f}" for f in scan_cell(cell.source, lab)]
    return found
