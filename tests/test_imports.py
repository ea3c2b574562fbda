"""The package's import contracts, checked on the source (lazy imports inside functions count):
no cycles; the stage cores never import the stage layer, the study or the CLI; the stage layer
never imports the study or the CLI; the report imports no stage."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "iftscope"
CORES = {"data", "microworld", "models", "probe", "intervene", "train", "evaluate", "analyse", "report"}
CORES |= {"types", "runs", "runfolder", "prompts"}
UPPER = {"stages", "study", "commands", "cli", "api"}


def _modules() -> dict[str, set[str]]:
    """module -> the iftscope modules it imports (as dotted names)."""
    graph = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("iftscope"):
                deps.add(node.module)
                deps |= {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("iftscope")}
        graph[name] = deps
    return {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _edges(graph, source: set[str], target: set[str]) -> list[str]:
    return sorted(
        f"{m} -> {d}"
        for m, deps in graph.items()
        if _top(m) in source
        for d in deps
        if _top(d) in target and _top(d) != _top(m)
    )


def test_no_import_cycles():
    assert _cycles(_modules()) == []


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize(
    ("source", "forbidden"),
    [
        (CORES, UPPER),  # stage cores never reach up to the stage layer, the study or the CLI
        ({"stages"}, {"study", "commands", "cli", "api"}),
        ({"study"}, {"commands", "cli", "api"}),
        ({"report"}, {"probe", "intervene", "train", "evaluate", "microworld", "models", "stages"}),
    ],
)
def test_layers(source, forbidden):
    assert _edges(_modules(), source, forbidden) == []


def test_the_graph_sees_lazy_imports():
    graph = _modules()
    assert (
        "iftscope.study.runner" in graph["iftscope.study.jobs"]
        or "iftscope.study.inputs" in graph["iftscope.study.jobs"]
    )
    assert "iftscope.microworld.stage" in graph["iftscope.study.inputs"]  # imported inside a function
