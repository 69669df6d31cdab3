"""The project's import graph and DVC lineage, read statically (AST), so a test can hold dvc.yaml to the code.

Every `import` and `from ... import` of a project module counts, wherever it stands (deferred imports in function
bodies too): a stage imports a module when any path of its command can. Readers the source registry names
(`module:Class` in curation/sources/registry.csv) count as imported by `curation.sources`, which loads them.
"""

from __future__ import annotations

import ast
import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("curation", "training", "app")
REGISTRY = ROOT / "curation" / "sources" / "registry.csv"

# Data files a module reads: a stage importing it depends on them (`${...}`: a path from params.yaml).
DATA_READS: dict[str, tuple[str, ...]] = {
    "curation.core.registry": ("curation/sources/registry.csv",),
    "curation.core.legends": ("${shared.legends_dir}/target.csv", "${shared.legends_dir}/sources.csv"),
}


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Every project module name -> its file."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imports_of(name: str, path: Path, modules: Mapping[str, Path], *, parents: bool = True) -> set[str]:
    """Project modules `name` imports anywhere in its file (and, with `parents`, the packages they sit in)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            submodules = {f"{base}.{alias.name}" for alias in node.names} & set(modules)
            targets |= submodules if len(submodules) == len(node.names) else {base, *submodules}
    found = {t for t in targets if t in modules}
    if parents:  # importing a module runs its packages' __init__ first
        found |= {p for t in found for p in _parents(t) if p in modules}
    if name == "curation.sources":
        found |= reader_modules()
    found.discard(name)
    return found


def reader_modules() -> set[str]:
    """The reader modules the source registry names."""
    with REGISTRY.open(encoding="utf-8", newline="") as handle:
        return {row["reader"].partition(":")[0] for row in csv.DictReader(handle)}


def import_graph(root: Path = ROOT, *, parents: bool = True) -> dict[str, set[str]]:
    """Module -> the project modules it imports (with `parents`, also the packages those sit in: what runs)."""
    modules = module_files(root)
    return {name: imports_of(name, path, modules, parents=parents) for name, path in modules.items()}


def closure(start: Iterable[str], graph: Mapping[str, set[str]]) -> set[str]:
    """Every module reachable from `start` (their parent packages included)."""
    seen: set[str] = set()
    todo = [m for s in start for m in (*_parents(s), s) if m in graph]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name] - seen)
    return seen


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                group.append(item)
                if item == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def package_of(module: str) -> str:
    """The architectural unit of a module: a curation sub-package (core, sources, a stage ...), training or app."""
    parts = module.split(".")
    if parts[0] == "curation" and len(parts) > 1:
        return ".".join(parts[:2])
    return parts[0]


def package_graph(graph: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """Unit -> the units it imports (edges inside one unit dropped; the bare `curation` package is no unit)."""
    units: dict[str, set[str]] = {}
    for module, targets in graph.items():
        source = package_of(module)
        units.setdefault(source, set())
        units[source] |= {package_of(t) for t in targets if package_of(t) not in (source, "curation")}
    units.pop("curation", None)
    return units


# --- dvc.yaml -------------------------------------------------------------------------------------------------


def _lookup(params: Mapping[str, Any], dotted: str) -> Any:  # noqa: ANN401 - a params value
    value: Any = params
    for part in dotted.split("."):
        value = value[part]
    return value


def interpolate(text: str, params: Mapping[str, Any]) -> str:
    """dvc.yaml's `${a.b}` templating, against params.yaml (matrix `${item.*}` left as it is)."""
    return re.sub(
        r"\$\{([a-z_.]+)\}",
        lambda m: m.group(0) if m.group(1).startswith("item.") else str(_lookup(params, m.group(1))),
        text,
    )


@dataclass(frozen=True)
class DvcStage:
    """One stage of dvc.yaml, interpolated."""

    name: str
    cmd: str
    deps: tuple[str, ...]
    params: tuple[str, ...]

    @property
    def module(self) -> str:
        """The module its command runs (`python -m <module>`)."""
        match = re.search(r"python -m ([\w.]+)", self.cmd)
        assert match, f"stage {self.name}: cmd {self.cmd!r} is not `python -m <module>`"
        return match.group(1)


def dvc_stages(dvc_yaml: Path = ROOT / "dvc.yaml", params_yaml: Path = ROOT / "params.yaml") -> dict[str, DvcStage]:
    """The stages of dvc.yaml with their deps and params interpolated from params.yaml."""
    params = yaml.safe_load(params_yaml.read_text(encoding="utf-8"))
    stages = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))["stages"]
    return {
        name: DvcStage(
            name,
            " ".join(str(body["cmd"]).split()),
            tuple(interpolate(str(d), params) for d in body.get("deps", ())),
            tuple(str(p) for p in body.get("params", ())),
        )
        for name, body in stages.items()
    }


def stage_files(
    stage: DvcStage,
    graph: Mapping[str, set[str]],
    modules: Mapping[str, Path],
    params_yaml: Path = ROOT / "params.yaml",
) -> set[str]:
    """Project files (relative paths) the stage's command imports, and the data files those modules read."""
    entry = stage.module
    start = [entry, f"{entry}.__main__"] if f"{entry}.__main__" in modules else [entry]
    reached = closure(start, graph)
    files = {modules[m].relative_to(ROOT).as_posix() for m in reached}
    params = yaml.safe_load(params_yaml.read_text(encoding="utf-8"))
    files |= {interpolate(data, params) for m in reached for data in DATA_READS.get(m, ())}
    return files


def uncovered(files: Iterable[str], deps: Iterable[str]) -> list[str]:
    """Files no dep covers (a dep covers itself and everything under it, when it is a folder)."""
    prefixes = [d.rstrip("/") for d in deps]
    return sorted(f for f in files if not any(f == p or f.startswith(f"{p}/") for p in prefixes))
