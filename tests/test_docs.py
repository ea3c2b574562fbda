"""The docs say what the code does: the CLI reference is current, every summary.json key a run writes
is documented (and nothing else), and every relative link in README.md and docs/ resolves."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from test_study import TINY

from iftscope.study.recipe import load_recipe
from iftscope.study.runner import Study

DOCS = REPO / "docs"


def _gen_cli():
    spec = importlib.util.spec_from_file_location("gen_cli", DOCS / "gen_cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the CLI reference ----------------------------------------------------------------------------


def test_cli_reference_is_current():
    current = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert current == _gen_cli().generate(), "docs/cli.md is stale: run `python docs/gen_cli.py`"


def test_cli_reference_walks_every_subcommand():
    from iftscope.cli import build_parser

    gen = _gen_cli()
    progs = [prog for prog, _ in gen.walk(build_parser())]
    assert progs[0] == "iftscope" and "iftscope data check" in progs  # nested subcommands too
    assert len(progs) == len(set(progs))
    text = gen.generate()
    for prog in progs:
        assert f"## `{prog}`" in text


def test_cli_reference_does_not_depend_on_the_terminal(monkeypatch):
    gen = _gen_cli()
    wide = gen.generate()
    monkeypatch.setenv("COLUMNS", "40")
    assert gen.generate() == wide


def test_cli_check_exits_1_when_stale(tmp_path, capsys):
    gen = _gen_cli()
    stale = tmp_path / "cli.md"
    stale.write_text(gen.generate() + "an edit by hand\n", encoding="utf-8")
    assert gen.main(["--check", "--out", str(stale)]) == 1
    assert "python docs/gen_cli.py" in capsys.readouterr().err
    assert gen.main(["--out", str(stale)]) == 0 and gen.main(["--check", "--out", str(stale)]) == 0


# -- summary.json keys ----------------------------------------------------------------------------


def documented_keys(text: str, table: str = "summary-keys") -> dict[str, bool]:
    """Documented key path -> required, from the key table between `<!-- {table}:start -->` and
    `<!-- {table}:end -->` in docs/run-folder.md: rows `| `path` | when | what |`; a `when` other
    than "always" makes the key optional."""
    start, end = f"<!-- {table}:start -->", f"<!-- {table}:end -->"
    assert start in text and end in text, f"docs/run-folder.md lost its {start} ... {end} markers"
    section = text.split(start, 1)[1].split(end, 1)[0]
    keys = {}
    for line in section.splitlines():
        m = re.match(r"\|\s*`([^`]+)`\s*\|\s*([^|]*?)\s*\|", line)
        if m:
            assert m.group(1) not in keys, f"{m.group(1)} documented twice"
            keys[m.group(1)] = m.group(2).strip() == "always"
    return keys


def _tree(keys: dict[str, bool]) -> dict[str, Any]:
    """Key paths as a tree: node = {"required": bool, "children": {segment: node}}."""
    root: dict[str, Any] = {"required": True, "children": {}}
    for path, required in keys.items():
        node = root
        for seg in path.split("."):
            node = node["children"].setdefault(seg, {"required": True, "children": {}})
        node["required"] = required
    return root


def compare(value: Any, node: dict[str, Any], path: str = "") -> list[str]:
    """Differences between a written value and the documented tree below it. A `<name>` segment
    stands for every key of a dict (or item of a list) that no literal segment names."""
    children = node["children"]
    if not children or value is None:
        return []
    placeholders = [k for k in children if k.startswith("<")]
    literal = {k: v for k, v in children.items() if not k.startswith("<")}
    assert len(placeholders) <= 1, f"{path}: more than one placeholder"
    where = path or "top level"
    if isinstance(value, list):
        if not placeholders:
            return [f"{where}: a list, documented as keys {sorted(literal)}"]
        return [e for i, x in enumerate(value) for e in compare(x, children[placeholders[0]], f"{path}.{i}")]
    if not isinstance(value, dict):
        return [f"{where}: written as {type(value).__name__}, documented with keys {sorted(children)}"]
    problems = [
        f"{path + '.' if path else ''}{k}: documented (always present) but not written"
        for k, sub in literal.items()
        if k not in value and sub["required"]
    ]
    for k, x in value.items():
        sub = literal.get(k) or (children[placeholders[0]] if placeholders else None)
        if sub is None:
            problems.append(f"{path + '.' if path else ''}{k}: written but not documented")
        else:
            problems += compare(x, sub, f"{path + '.' if path else ''}{k}")
    return problems


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """The run folder of test_study.py's tiny study, one seed and one style (a few seconds on 2
    cores; seeds and styles add rows, not keys)."""
    import torch

    cfg, _ = load_recipe(None, [*TINY, "seeds=[0]", "render.styles=[answer]"])
    out = tmp_path_factory.mktemp("docs-study")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: on a busy 2-core host, 2 spinning threads run ~30x slower
    try:
        Study(cfg, out, progress=False).run()
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="module")
def tiny_summary(tiny_run) -> dict[str, Any]:
    return json.loads((tiny_run / "analysis" / "summary.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "written, table",
    [("analysis/summary.json", "summary-keys"), ("world/summary.json", "world-summary-keys")],
)
def test_documented_summary_keys_are_the_written_keys(tiny_run, written, table):
    summary = json.loads((tiny_run / written).read_text(encoding="utf-8"))
    keys = documented_keys((DOCS / "run-folder.md").read_text(encoding="utf-8"), table)
    top = {k for k in keys if "." not in k}
    assert top == set(summary), (
        f"{written} top-level keys: written {sorted(summary)}, documented {sorted(top)}; "
        f"update the {table} table in docs/run-folder.md"
    )
    problems = compare(summary, _tree(keys))
    assert not problems, f"docs/run-folder.md's {table} table differs from {written}:\n" + "\n".join(problems)


def test_key_comparison_catches_an_added_or_removed_key(tiny_summary):
    tree = _tree(documented_keys((DOCS / "run-folder.md").read_text(encoding="utf-8")))
    added = {**tiny_summary, "new_key": 1}
    assert "new_key: written but not documented" in compare(added, tree)
    removed = {k: v for k, v in tiny_summary.items() if k != "verdict"}
    assert any(p.startswith("verdict: documented") for p in compare(removed, tree))
    nested = json.loads(json.dumps(tiny_summary))
    del nested["partial_correlation"]["r"]
    nested["paired_tests"][0]["extra"] = 0
    problems = compare(nested, tree)
    assert any(p.startswith("partial_correlation.r:") for p in problems)
    assert any(p.startswith("paired_tests.0.extra:") for p in problems)


# -- links ----------------------------------------------------------------------------------------

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")  # [text](target "title"), images too
FENCED = re.compile(r"^(```|~~~).*?^\1", flags=re.S | re.M)


def _markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.glob("*.md"))]


def _without_code(text: str) -> str:
    return re.sub(r"`[^`\n]*`", "", FENCED.sub("", text))  # fenced blocks, then inline code


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -1 for repeats."""
    seen: dict[str, int] = {}
    out = set()
    for line in FENCED.sub("", path.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def relative_links(path: Path) -> list[str]:
    found = []
    for m in LINK.finditer(_without_code(path.read_text(encoding="utf-8"))):
        target = m.group(1)
        if re.match(r"[a-z][a-z0-9+.-]*:", target, flags=re.I):  # http:, https:, mailto: ...
            continue
        found.append(target)
    return found


def broken_links(path: Path) -> list[str]:
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path.name
    broken = []
    for target in relative_links(path):
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            broken.append(f"{shown}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{shown}: {target} (no such heading in {dest.name})")
    return broken


def test_every_relative_link_resolves():
    files = _markdown_files()
    assert (DOCS / "index.md") in files
    assert sum(len(relative_links(f)) for f in files) > 20  # the parser finds the links at all
    broken = [b for f in files for b in broken_links(f)]
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_a_broken_link_is_caught(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\nsee [there](missing.md), [here](#title), [gone](#nowhere)\n")
    assert relative_links(page) == ["missing.md", "#title", "#nowhere"]
    assert [b.split(": ", 1)[1] for b in broken_links(page)] == [
        "missing.md (no such file)",
        "#nowhere (no such heading in page.md)",
    ]
