"""Do the study's conclusions depend on the training budget? Two finished run folders of the same
study at two budgets, compared on the seeds they share and on all of the second's:

    python bench/budget_compare.py OLD_RUN NEW_RUN [--out bench/results/budget_compare.json]

For each folder the analysis is recomputed from its stored evaluations (stages.analyse.
compute_summary, writing nothing), once on the seeds both folders trained and once, for NEW_RUN,
on all its seeds; the tested contrasts (difference, 95% interval, seed-level p, Holm p) and the
headline accuracies are put side by side, with each group's QA curve in NEW_RUN (the early-stopping
view). Prints a markdown report and writes it with the figures to --out (.json) and .md beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from iftscope.runfolder import RunFolder
from iftscope.stages.analyse import compute_summary, finished_runs
from iftscope.study.recipe import load_recipe

OUT = Path(__file__).parent / "results" / "budget_compare.json"


def analysed(root: Path, seeds: set[int] | None) -> dict:
    """The run folder's summary recomputed on `seeds` (None: all), and its recipe's budget."""
    run = RunFolder(root)
    cfg, _ = load_recipe(run.recipe)
    runs = [r for r in finished_runs(run) if seeds is None or r["seed"] in seeds]
    summary, _ = compute_summary(run, runs, cfg.render.styles[0], cfg.contrasts)
    return {
        "folder": root.name,
        "steps": cfg.train.steps,
        "batch_size": cfg.train.batch_size,
        "seeds": sorted({r["seed"] for r in runs}),
        "summary": summary,
    }


def contrast_rows(views: dict[str, dict]) -> list[str]:
    """One markdown row per tested contrast (primary and secondary), one column block per view."""
    names = list(views)
    head = "| contrast | " + " | ".join(f"{n}: diff [95% CI], p (Holm)" for n in names) + " |"
    lines = [head, "| --- |" + " --- |" * len(names)]
    first = views[names[0]]["summary"]["paired_tests"]
    for test in first:
        if test["role"] not in ("primary", "secondary"):
            continue
        key = (test["a"], test["b"], test["set"], test["style"])
        cells = []
        for n in names:
            match = [
                t
                for t in views[n]["summary"]["paired_tests"]
                if (t["a"], t["b"], t["set"], t["style"]) == key
            ]
            cells.append(_cell(match[0]) if match else "-")
        lines.append(
            f"| {test['a']} - {test['b']} ({test['set']}, {test['style']}) | " + " | ".join(cells) + " |"
        )
    return lines


def _cell(t: dict) -> str:
    ci = "" if t["ci_low"] is None else f" [{t['ci_low']:+.3f}, {t['ci_high']:+.3f}]"
    p = "" if t["p_value"] is None else f", p {t['p_value']:.2g}"
    holm = "" if t.get("p_holm") is None else f" ({t['p_holm']:.2g})"
    return f"{t['difference']:+.3f}{ci}{p}{holm}"


def accuracy_rows(views: dict[str, dict], main_set: str) -> list[str]:
    """Each group/style's mean QA accuracy on the main set [95% CI over seeds], per view."""
    names = list(views)
    lines = ["| group/style | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
    for key in views[names[0]]["summary"]["table"]:
        cells = []
        for n in names:
            acc = views[n]["summary"]["table"].get(key, {}).get(main_set, {}).get("accuracy")
            cells.append(_mean_ci(acc) if acc else "-")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return lines


def _mean_ci(cell: dict) -> str:
    ci = cell.get("ci")
    return f"{cell['mean']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and ci[0] is not None else "")


def curve_rows(summary: dict) -> list[str]:
    """The QA curve of every group/style (mean over seeds) at each curve step, and the end value."""
    curves = summary.get("curves") or {}
    steps = sorted({s for row in curves.values() for s in row["steps"]})
    lines = [
        "| group/style | " + " | ".join(f"step {s}" for s in steps) + " | end (main set) |",
        "| --- |" + " ---: |" * (len(steps) + 1),
    ]
    for key, row in curves.items():
        at = dict(zip(row["steps"], row["accuracy"], strict=True))
        cells = [f"{at[s]['mean']:.3f}" if s in at else "-" for s in steps]
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {_mean_ci(row['end'])} |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    old, new_all = analysed(args.old, None), analysed(args.new, None)
    shared = set(old["seeds"]) & set(new_all["seeds"])
    if set(old["seeds"]) != shared:  # the old folder has seeds the new one lacks
        old = analysed(args.old, shared)
    new_shared = analysed(args.new, shared)
    label = {
        f"{old['steps']} steps, seeds {old['seeds']}": old,
        f"{new_shared['steps']} steps, seeds {new_shared['seeds']}": new_shared,
        f"{new_all['steps']} steps, seeds {new_all['seeds']}": new_all,
    }
    main_set = old["summary"]["main_set"]
    md = [
        f"## Contrasts on {main_set} at both budgets", "", *contrast_rows(label), "",
        f"## QA accuracy on {main_set} (mean over seeds)", "", *accuracy_rows(label, main_set), "",
        "## Verdicts", "", *(f"- **{k}**: {v['summary']['verdict']}" for k, v in label.items()), "",
        *(line for k in (next(iter(label)), list(label)[-1]) for line in
          (f"## QA curve, {k} (early-stopping view)", "", *curve_rows(label[k]["summary"]), "")),
    ]  # fmt: skip
    text = "\n".join(md) + "\n"
    figures = {k: {x: v[x] for x in ("folder", "steps", "batch_size", "seeds")} for k, v in label.items()}
    for k, v in label.items():
        figures[k]["paired_tests"] = v["summary"]["paired_tests"]
        figures[k]["table"] = v["summary"]["table"]
        figures[k]["curves"] = v["summary"].get("curves")
    args.out.write_text(json.dumps({"views": figures, "markdown": text}, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
