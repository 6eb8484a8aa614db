"""The layout's rules, checked on the import graph of every module (``ast``: top-level and function-level imports).

Layers, bottom to top; a module may import its own layer's package and the layers below, never above:

1. ``visionkit.core`` — errors, config, io, registry, weights, the model handle, training, results base, writers, viz;
2. ``visionkit.convert`` — readers of foreign weight files (they use the core);
3. ``visionkit.zoo`` — architectures shared as backbones, and their cost tables;
4. the tasks: ``classification``, ``train``, ``detection``, ``segmentation``, ``faces``, ``style``, ``explanation`` — each
   may use the core, convert and zoo, and never another task (what two tasks share goes through the core);
5. ``visionkit`` (the lazy table of public names) and ``visionkit.cli``, which imports only the public API
   (``visionkit``), the light core modules it renders with, and each task's ``config`` (its defaults).

``visionkit._compat`` (old import paths) imports nothing of visionkit and may be used anywhere; ``__version__`` may
be read from ``visionkit`` anywhere. There are no import cycles. Old module paths (``visionkit.ops.nms`` …) are
resolved through the compat table for user code; no visionkit module uses them.
"""

from __future__ import annotations

import ast
from pathlib import Path

from visionkit._compat import MOVED, OLD_PACKAGES

ROOT = Path(__file__).resolve().parents[1] / "visionkit"
TASKS = ("classification", "train", "detection", "segmentation", "faces", "style", "explanation")
LAYER = {"core": 1, "convert": 2, "zoo": 3, **{task: 4 for task in TASKS}, "cli": 5}
#: light core modules the CLI renders with (none imports numpy or TensorFlow at import time).
CLI_CORE = {"visionkit.core.errors", "visionkit.core.config", "visionkit.core.writers", "visionkit.core.training"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in ROOT.rglob("*.py")}


def resolve(name: str) -> str:
    """A module name as it exists now: old paths through the compat table (first target), packages as they are."""
    target = MOVED.get(name, name)
    return target if isinstance(target, str) else target[0]


def imports(name: str) -> list[tuple[str, str, int]]:
    """(imported module as written, resolved module, line) for every visionkit import in module ``name``."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            written = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            written = []
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                written.append(candidate if resolve(candidate) in MODULES or candidate in MOVED else node.module)
        else:
            continue
        found += [(w, resolve(w), node.lineno) for w in written if w == "visionkit" or w.startswith("visionkit.")]
    return found


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYER else None


def test_every_module_is_in_a_layer():
    outside = sorted(m for m in MODULES if layer(m) is None
                     and m not in ("visionkit", "visionkit.__main__", "visionkit._compat"))
    assert outside == [], f"modules outside the layers: {outside}"


def test_arrows_point_down_and_tasks_do_not_import_each_other():
    wrong = []
    for module in MODULES:
        own = layer(module)
        if own is None or own == "cli":
            continue
        for written, target, line in imports(module):
            if target in ("visionkit._compat",) or (target == "visionkit" and written == "visionkit"
                                                    and _only_version(module, line)):
                continue
            other = layer(target)
            if other is None or (other != own and LAYER[other] >= LAYER[own]):
                wrong.append(f"{module}:{line} imports {written}")
    assert wrong == [], "imports that point up or sideways:\n" + "\n".join(wrong)


def _only_version(module: str, line: int) -> bool:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    return any(isinstance(node, ast.ImportFrom) and node.lineno == line and [a.name for a in node.names] ==
               ["__version__"] for node in ast.walk(tree))


def test_the_cli_imports_only_the_public_api_and_defaults():
    allowed = CLI_CORE | {f"visionkit.{package}.config" for package in (*TASKS, "zoo")} | {"visionkit"}
    wrong = [f"{module}:{line} imports {written}" for module in MODULES if layer(module) == "cli"
             for written, target, line in imports(module)
             if target not in allowed and layer(target) != "cli"]
    assert wrong == [], "the CLI reaches past the public API:\n" + "\n".join(wrong)


def test_the_core_never_imports_a_task():
    wrong = [f"{module}:{line} imports {written}" for module in MODULES if layer(module) == "core"
             for written, target, line in imports(module) if layer(target) not in ("core", None)]
    assert wrong == []


def test_no_import_cycles():
    graph = {m: {t for _, t, _ in imports(m) if t in MODULES and t != m and not _is_package(t)} for m in MODULES}
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(node):  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    assert cycles == [], f"import cycles: {cycles}"


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def test_no_module_uses_old_import_paths():
    old = set(MOVED) | set(OLD_PACKAGES)
    wrong = [f"{module}:{line} imports {written}" for module in MODULES
             for written, _, line in imports(module) if written in old]
    assert wrong == [], "old import paths (use the new module):\n" + "\n".join(wrong)


def test_registry_builders_and_converters_point_at_the_new_modules():
    from visionkit.core.registry import list_specs

    old = [f"{spec.name}: {path}" for spec in list_specs() for path in (spec.builder, spec.weights.converter)
           if path.partition(":")[0] in MOVED]
    assert old == []
    for spec in list_specs():
        module = spec.builder.partition(":")[0]
        assert module.startswith("keras.") or module in MODULES, f"{spec.name}: builder {spec.builder} not found"


def test_custom_objects_are_registered_from_modules_that_exist():
    from visionkit.core.model import CUSTOM_OBJECT_MODULES

    assert [m for m in CUSTOM_OBJECT_MODULES if m not in MODULES] == []


def test_files_stay_small():
    long = {module: n for module, path in MODULES.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 420}
    assert long == {}, f"split these (over ~400 lines): {long}"
