"""How many files (and folders) one opens to change a task end to end, counted the same way on any visionkit tree.

A file counts for a task when it is reached from the task's entry points (its CLI module and its public verbs in
``visionkit/__init__.py``) by following imports (top-level and inside functions), and it holds the task's own code:
it is an entry point, or it defines at least one name that the code of this task alone refers to (no module reached
from another task's entry points refers to it). Shared plumbing that every task uses (``io.as_sources``, the
writers) does not count; a shared file holding one task's code (a results module with that task's classes, a viz
helper only detection calls) does. References are read with ``ast``: imports,
attributes of imported modules, the public-name table and ``"module:attribute"`` strings.

    python benchmarks/task_files.py                     # this tree
    git archive 03895e5 visionkit | tar -x -C /tmp/old && python benchmarks/task_files.py /tmp/old/visionkit
    python benchmarks/task_files.py --files             # also list the files
"""

from __future__ import annotations

import argparse
import ast
import re
from collections import defaultdict
from pathlib import Path

#: task -> (CLI module, public verbs).
TASKS = {
    "classify": ("cli.classify", ["classify"]),
    "finetune / evaluate / export": ("cli.train", ["finetune", "evaluate", "export"]),
    "detect": ("cli.detect", ["detect", "train_detector", "evaluate_detector", "detect_video", "detection_anchors",
                              "load_detector", "write_detections"]),
    "segment": ("cli.segment", ["segment", "train_segmenter", "evaluate_segmenter", "load_segmenter"]),
    "faces": ("cli.faces", ["verify", "embed", "detect_faces", "enroll_face", "identify_faces", "FaceDatabase",
                            "train_faces", "calibrate_faces", "load_encoder"]),
    "stylize": ("cli.stylize", ["stylize"]),
    "zoo (summary, cost)": ("cli.models_zoo", ["summarize_model", "conv_cost", "bottleneck_cost"]),
}
NOT_FOLLOWED = {"visionkit", "visionkit.cli", "visionkit._compat"}
DOTTED = re.compile(r"^(visionkit(?:\.\w+)+):(\w+)$")


class Tree:
    def __init__(self, root: Path):
        self.root = root
        self.paths = {self._name(p): p for p in root.rglob("*.py")}
        self.trees = {m: ast.parse(p.read_text(encoding="utf-8")) for m, p in self.paths.items()}
        self.moved = self._compat_table()
        self.verbs = self._verbs()
        self.defined = {m: self._definitions(t) for m, t in self.trees.items()}
        self.deps: dict[str, set[str]] = {}
        self.refs: dict[tuple[str, str], set[str]] = defaultdict(set)  # (module, name) -> referring modules
        for module in self.trees:
            self._scan(module)

    def _name(self, path: Path) -> str:
        parts = ("visionkit", *path.relative_to(self.root).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    def _compat_table(self) -> dict[str, tuple[str, ...]]:
        tree = self.trees.get("visionkit._compat")
        if tree is None:
            return {}
        for node in tree.body:
            if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "MOVED":
                table = ast.literal_eval(node.value)
                return {k: (v,) if isinstance(v, str) else tuple(v) for k, v in table.items()}
        return {}

    def _verbs(self) -> dict[str, tuple[str, str]]:
        for node in self.trees["visionkit"].body:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_VERBS":
                table = ast.literal_eval(node.value)
                return {k: tuple(v.split(":")) for k, v in table.items()}
        return {}

    @staticmethod
    def _definitions(tree) -> set[str]:
        names = set()
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
        return names

    def module(self, name: str) -> str | None:
        """The module ``name`` is now (an old path through the compat table), if it exists in this tree."""
        if name in self.trees:
            return name
        return next((t for t in self.moved.get(name, ()) if t in self.trees), None)

    def owner(self, module: str, name: str) -> str | None:
        """The module that defines ``name`` as seen from ``module`` (old paths: the first target that has it)."""
        candidates = [module] if module in self.trees else list(self.moved.get(module, ()))
        if module == "visionkit" and name in self.verbs:
            candidates = [self.verbs[name][0]]
            name = self.verbs[name][1]
        for candidate in candidates:
            if candidate in self.defined and name in self.defined[candidate]:
                return candidate
        return None

    def _refer(self, source: str, module: str, name: str) -> None:
        if module == "visionkit" and name in self.verbs:
            module, name = self.verbs[name]
        owner = self.owner(module, name)
        if owner is not None and owner != source:
            self.refs[(owner, name)].add(source)

    def _scan(self, source: str) -> None:
        deps, aliases = set(), {}
        for node in ast.walk(self.trees[source]):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = self.module(alias.name)
                    if target:
                        deps.add(target)
                        aliases[alias.asname or alias.name] = alias.name
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    child = self.module(f"{node.module}.{alias.name}")
                    if child and not self._defines(node.module, alias.name):
                        deps.add(child)
                        aliases[alias.asname or alias.name] = child
                    elif self.module(node.module) or node.module == "visionkit":
                        if node.module != "visionkit":
                            deps.add(self.module(node.module))
                        self._refer(source, node.module, alias.name)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                match = DOTTED.match(node.value)
                if match and self.module(match[1]):
                    self._refer(source, match[1], match[2])
        for node in ast.walk(self.trees[source]):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                self._refer(source, aliases[node.value.id], node.attr)
        self.deps[source] = {d for d in deps if d}

    def _defines(self, module: str, name: str) -> bool:
        return any(name in self.defined.get(m, set()) for m in ((module,) + self.moved.get(module, ())))

    def closure(self, starts) -> set[str]:
        seen, todo = set(), [s for s in starts if s in self.trees]
        while todo:
            module = todo.pop()
            if module in seen:
                continue
            seen.add(module)
            todo += [d for d in self.deps.get(module, ()) if d not in NOT_FOLLOWED and d not in seen]
        return seen


def count(root: Path, why: dict | None = None) -> dict[str, list[str]]:
    """task -> the files that count for it; ``why`` (if given) collects, per task and file, the names that did."""
    tree = Tree(root)
    entries = {task: [f"visionkit.{cli}", *{tree.verbs[v][0] for v in verbs if v in tree.verbs}]
               for task, (cli, verbs) in TASKS.items()}
    closures = {task: tree.closure(starts) for task, starts in entries.items()}
    own = {task: set(starts) for task, starts in entries.items()}
    for (owner, _), referrers in sorted(tree.refs.items()):
        users = [task for task, modules in closures.items() if referrers & modules]
        if len(users) == 1 and owner in closures[users[0]]:  # a name only one task's code refers to
            own[users[0]].add(owner)
            if why is not None:
                why.setdefault(users[0], {}).setdefault(str(tree.paths[owner].relative_to(root.parent)), []).append(_)
    return {task: sorted(str(tree.paths[m].relative_to(root.parent)) for m in modules if m in tree.paths)
            for task, modules in own.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=str(Path(__file__).resolve().parents[1] / "visionkit"),
                        help="a visionkit package folder [default: this tree's]")
    parser.add_argument("--files", action="store_true", help="also list the files of each task, and for a file of a "
                                                              "shared folder the names that made it count")
    args = parser.parse_args()
    root = Path(args.root).resolve()
    why: dict = {}
    counts = count(root, why)
    print(f"{'task':30} files  lines  folders  outside its folder")
    for task, files in counts.items():
        folders = sorted({str(Path(f).parent) for f in files})
        home = max(folders, key=lambda folder: sum(str(Path(f).parent) == folder for f in files))
        lines = sum(len((root.parent / f).read_text(encoding="utf-8").splitlines()) for f in files)
        outside = sum(str(Path(f).parent) != home for f in files)
        print(f"{task:30} {len(files):5}  {lines:5}  {len(folders):7}  {outside:5}   ({', '.join(folders)})")
        if args.files:
            for file in files:
                names = why.get(task, {}).get(file) if str(Path(file).parent) != home else None
                print(f"    {file}" + (f"   ({', '.join(sorted(names)[:6])})" if names else ""))


if __name__ == "__main__":
    main()
