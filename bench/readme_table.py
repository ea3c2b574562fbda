"""README's results table and contrast sentence, printed from a finished default-study run folder,
so the figures README quotes come from a command:

    python bench/readme_table.py runs/default [--style answer]

Per group (one style): QA accuracy on held-out known people (mean [95% t interval] over training
seeds), the same people read by the base model's own cloze probe (stored knowledge), the group's
own taught facts asked in a held-back wording (acquisition, the positive control), and QA accuracy
on never-pretrained people; then the declared contrasts on the main set.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAMES = {
    "H": "H: known facts, gold targets",
    "S": "S: I's items, the model's own answers",
    "mix-0.75": "mix-0.75 (75% S targets)",
    "mix-0.25": "mix-0.25 (25% S targets)",
    "I": "I: confidently wrong, gold targets",
    "counterfactual": "counterfactual: known facts, false targets",
    "unknown-gold": "unknown-gold: never-pretrained people, true facts",
}


def _ci(cell: dict | None) -> str:
    if not cell:
        return "-"
    ci = cell.get("ci")
    inner = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and ci[0] is not None else ""
    return f"{cell['mean']:.3f}{inner}"


def table(s: dict, style: str) -> list[str]:
    """The markdown table: base row, then one row per group in NAMES order."""
    main = s["main_set"]
    base_qa = (s.get("base_qa") or {}).get(main, {}).get("accuracy")
    lines = [
        "| group | QA, held-out known people | same people, base's cloze probe | own taught facts, reworded "
        "| QA, never-pretrained people |",
        "| --- | --- | --- | --- | --- |",
        f"| base model | {base_qa:.3f} | {s['base'][main]['accuracy']:.3f} | - "
        f"| {s['base']['unknown']['accuracy']:.3f} |",
    ]
    for group, name in NAMES.items():
        row = s["table"].get(f"{group}/{style}")
        if not row:
            continue
        probe = row[main].get("probe_accuracy")
        acq = (s.get("acquisition") or {}).get(f"{group}/{style}", {}).get("reworded", {}).get("accuracy")
        lines.append(
            f"| {name} | {_ci(row[main]['accuracy'])} | {probe:.3f} | {_ci(acq)} "
            f"| {_ci(row.get('unknown', {}).get('accuracy'))} |"
        )
    return lines


def contrasts(s: dict, style: str) -> list[str]:
    """One line per declared contrast on the main set: difference [CI], p or Holm p."""
    out = []
    for t in s["paired_tests"]:
        if t["set"] != s["main_set"] or t["style"] != style or t["role"] not in ("primary", "secondary"):
            continue
        if t["p_value"] is None:  # fewer than 3 seeds: no seed-level inference
            out.append(f"- {t['a']} - {t['b']} ({t['role']}): {t['difference']:+.3f} ({t['seeds']} seed(s))")
            continue
        p = f"p = {t['p_value']:.2g}" if t.get("p_holm") is None else f"Holm p = {t['p_holm']:.2g}"
        out.append(f"- {t['a']} - {t['b']} ({t['role']}): {t['difference']:+.3f} "
                   f"[{t['ci_low']:+.3f}, {t['ci_high']:+.3f}], {p} over {t['seeds']} seeds")  # fmt: skip
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--style", default="answer")
    args = ap.parse_args()
    s = json.loads((args.run / "analysis" / "summary.json").read_text())
    manifest = json.loads((args.run / "manifest.json").read_text())
    print(f"run {args.run} trained at {manifest.get('git_commit')}, {s['stage_seconds']['total']:.0f} s\n")
    print("\n".join(table(s, args.style)))
    print()
    print("\n".join(contrasts(s, args.style)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
