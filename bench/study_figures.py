"""The figures the docs quote from a finished study, in one small JSON: the headline table, the
declared contrasts, the dose-response and the correlations of consistency with accuracy, with the
commit that trained the run (its manifest) and the one that analysed it (this checkout).

    iftscope run --out runs/default            # or reuse a finished run folder
    iftscope analyse runs/default              # today's analysis of its stored evaluations
    python bench/study_figures.py runs/default --out bench/results/default_study.json

`--old SUMMARY` adds the paired tests of an earlier analysis of the same folder (its
analysis/summary.json saved before `iftscope analyse`), so old and new intervals sit side by side.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path


def _commit() -> str | None:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or None


def figures(run: Path, old: Path | None) -> dict:
    s = json.loads((run / "analysis" / "summary.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    main, style = s["main_set"], s["main_style"]
    table = {k: {t: round(c["accuracy"]["mean"], 3) for t, c in v.items()} for k, v in s["table"].items()}
    ci = {k: {t: c["accuracy"].get("ci") for t, c in v.items()} for k, v in s["table"].items()}
    keep = ("a", "b", "role", "set", "style", "seeds", "difference", "ci_low", "ci_high", "p_value", "p_holm",
            "t_ci_low", "t_ci_high", "question_ci_low", "question_ci_high")  # fmt: skip
    tests = [
        {k: t.get(k) for k in keep} for t in s["paired_tests"] if (t["set"], t["style"]) == (main, style)
    ]
    corr = {k: {x: s[k][x] for x in ("r", "p_value", "n", "per_stratum") if s[k]} if s[k] else None
            for k in ("partial_correlation", "base_wrong_correlation")}  # fmt: skip
    if s["partial_correlation"]:
        corr["paper_form"] = {"paper_spearman": s["partial_correlation"]["paper_spearman"],
                              "pooled": s["partial_correlation"]["pooled"]}  # fmt: skip
    out = {
        "trained_at": manifest.get("git_commit"), "analysed_at": _commit(), "main_set": main,
        "main_style": style, "verdict": s["verdict"], "accuracy": table, "accuracy_ci": ci,
        "contrasts": tests, "dose_response": s.get("dose_response"), "correlation": corr,
        "memorisation": s["memorisation"], "stage_seconds": s["stage_seconds"],
    }  # fmt: skip
    if old is not None:
        o = json.loads(old.read_text())
        out["old_paired_tests"] = [t for t in o["paired_tests"] if (t["set"], t["style"]) == (main, style)]
        out["old_partial_correlation"] = o.get("partial_correlation")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path)
    p.add_argument("--old", type=Path, help="an earlier analysis/summary.json of the same run folder")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    args.out.write_text(json.dumps(figures(args.run, args.old), indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
