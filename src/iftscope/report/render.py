"""One self-contained HTML report (figures embedded, every dataset string escaped) and a Markdown
summary, from the analysis of a run folder."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import jinja2

from iftscope.analyse.acquisition import acquisition_markdown
from iftscope.analyse.consistency import kl
from iftscope.report import figures, sections
from iftscope.runfolder import RunFolder
from iftscope.runs import atomic_write_text, read_json, read_jsonl
from iftscope.types import LETTERS

TEMPLATE = Path(__file__).with_name("report.html.j2")


def _fmt_acc(cell: dict[str, Any] | None) -> str:
    if not cell:
        return "–"
    ci = cell.get("ci")
    return f"{cell['mean']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def drilldown(run: RunFolder, result: dict[str, Any], group: str = "I", top: int = 10) -> dict[str, Any]:
    """The questions whose option distribution moved most (KL base -> tuned) in one tuned model."""
    s, style = result["main_set"], result["main_style"]
    runs = sorted(k for k in result["training"] if k.startswith(f"{group}/{style}/"))
    if not runs:
        return {"run": None, "set": s, "rows": []}
    tuned_path, base_path = run.eval_records(runs[0], s), run.eval_records("base", s)
    if not tuned_path.exists() or not base_path.exists():
        return {"run": None, "set": s, "rows": []}
    base = {r["question_id"]: r for r in read_jsonl(base_path)}
    questions = _questions(run)
    rows = []
    for t in read_jsonl(tuned_path):
        b = base[t["question_id"]]
        q = questions.get(t["question_id"], {})
        rows.append({
            "id": t["question_id"], "question": q.get("question", ""), "choices": q.get("choices", []),
            "gold": LETTERS[t["gold"]], "base": [round(x, 3) for x in b["distribution"]],
            "tuned": [round(x, 3) for x in t["distribution"]], "kl": kl(b["distribution"], t["distribution"]),
        })  # fmt: skip
    return {"run": runs[0], "set": s, "rows": sorted(rows, key=lambda r: -r["kl"])[:top]}


def _questions(run: RunFolder) -> dict[str, dict[str, Any]]:
    """Every test set's questions as the run stored them."""
    found = {}
    for path in sorted(run.tests.glob("*.jsonl")):
        found.update({q["id"]: q for q in read_jsonl(path)})
    return found


def write_report(run: RunFolder | str | Path) -> dict[str, Path]:
    """report/report.html and report/summary.md from the run folder's analysis."""
    run = run if isinstance(run, RunFolder) else RunFolder(Path(run))
    result = read_json(run.summary)
    rows = list(csv.DictReader(run.runs_csv.open()))
    for r in rows:
        for k, v in r.items():
            if k not in ("group", "style", "set"):
                r[k] = float(v) if v not in ("", "None") else None
    table = {k: result["table"][k] for k in sorted(result["table"], key=figures.row_order)}
    sets = sorted({s for k, v in table.items() for s in v})
    context = {
        "result": result,
        "sets": sets,
        "table_rows": [(k, [_fmt_acc(table[k].get(s, {}).get("accuracy")) for s in sets]) for k in table],
        "generation_rows": [
            (k, table[k][result["main_set"]])
            for k in table
            if k != "base" and table[k].get(result["main_set"], {}).get("gen_accuracy") is not None
        ],
        "consistency_rows": [
            (k, s, table[k][s]) for k in table if k != "base" for s in sets if s in table[k]
        ],
        "figures": {
            "accuracy": figures.accuracy_bars(result),
            "consistency": figures.consistency_scatter(result, rows),
            "loss": figures.loss_curves(result),
            "coverage": figures.coverage_bars(result["probe"]),
            "shift": figures.token_shift(result),
            "dose": figures.dose_response(result),
        },
        "drilldown": drilldown(run, result),
        "instrument_head": sections.INSTRUMENT_HEAD,
        "instrument_rows": sections.instrument_rows(result),
        "makeup_head": sections.MAKEUP_HEAD,
        "makeup_rows": sections.makeup_rows(result),
        "matching_text": sections.matching_text(result),
        "curve_table": sections.curve_table(result),
        "conditions_head": sections.CONDITIONS_HEAD,
        "conditions_rows": sections.conditions_rows(result),
        "time_head": sections.TIME_HEAD,
        "time_rows": sections.time_rows(result),
        "manifest": read_json(run.manifest),
        "recipe": run.recipe.read_text(encoding="utf-8"),
    }
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    html = env.from_string(TEMPLATE.read_text(encoding="utf-8")).render(**context)
    paths = {"html": run.report / "report.html", "markdown": run.report / "summary.md"}
    atomic_write_text(paths["html"], html)
    atomic_write_text(paths["markdown"], markdown(result, sets))
    return paths


def _p(p: float | None) -> str:
    return "–" if p is None else f"{p:.3g}"


def _ci(t: dict[str, Any]) -> str:
    """The interval over seeds, or (in parentheses) the question-level one when seeds are too few."""
    if t["ci_low"] is not None:
        return f"[{t['ci_low']:+.3f}, {t['ci_high']:+.3f}]"
    return f"({t['question_ci_low']:+.3f}, {t['question_ci_high']:+.3f}) questions only"


def markdown(result: dict[str, Any], sets: list[str]) -> str:
    table = {k: result["table"][k] for k in sorted(result["table"], key=figures.row_order)}
    lines = [
        "# iftscope study",
        "",
        f"**Verdict.** {result['verdict']}",
        "",
        "## Accuracy (mean [95% CI] over seeds)",
        "",
    ]
    lines += ["| group/style | " + " | ".join(sets) + " |", "| --- |" + " --- |" * len(sets)]
    for k in table:
        lines.append(
            f"| {k} | " + " | ".join(_fmt_acc(table[k].get(s, {}).get("accuracy")) for s in sets) + " |"
        )
    lines += sections.markdown_sections(result)
    lines += ["", "## Group contrasts (within seeds, inferred over seeds; secondaries Holm-adjusted)", ""]
    lines += ["| role | set | style | contrast | seeds | difference | 95% CI | p | Holm p |"]
    lines += ["| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for t in result["paired_tests"]:
        lines.append(
            f"| {t['role']} | {t['set']} | {t['style']} | {t['a']} - {t['b']} | {t['seeds']} | "
            f"{t['difference']:+.3f} | {_ci(t)} | {_p(t['p_value'])} | {_p(t.get('p_holm'))} |"
        )
    dr = result.get("dose_response")
    if dr:
        accs = ", ".join(f"{g} {a['mean']:.3f}" for g, a in zip(dr["groups"], dr["accuracy"], strict=True))
        lines += ["", f"Dose-response on {dr['set']} ({accs}): slope {dr['slope']:+.3f} per unit of r, "
                  f"p = {_p(dr['p_value'])} over {dr['seeds']} seed(s)."]  # fmt: skip
    pc, bw = result.get("partial_correlation"), result.get("base_wrong_correlation")
    if pc:
        per = "; ".join(f"{k} {v['r']:.3f} (n {v['n']})" for k, v in pc["per_stratum"].items())
        lines += [
            "",
            f"Consistency ({pc['x']} with the base) vs tuned QA accuracy within test sets: "
            f"r = {pc['r']:.3f}, p = {pc['p_value']:.3g} (n = {pc['n']}; per set: {per}; "
            f"the paper's pooled form: {pc['paper_spearman']:.3f}).",
        ]
    if bw:
        r, p, n = bw["r"], bw["p_value"], bw["n"]
        lines.append(f"On the questions the base model got wrong: r = {r:.3f}, p = {p:.3g} (n = {n}).")
    lines += acquisition_markdown(result.get("acquisition", {}), result["table"], result["main_set"])
    if times := sections.time_rows(result):
        lines += ["", "## Where the time went", "", *sections.markdown_table(sections.TIME_HEAD, times)]
    return "\n".join(lines) + "\n"
