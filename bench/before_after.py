"""The default study end to end at two commits, back to back on one host, with one job's time
breakdown at each: what a change of defaults or code costs or saves, measured like for like.

    python bench/before_after.py --before 691fafc --after HEAD --scratch runs/before-after

For each commit (before first, then after) a detached git worktree of that commit is made under
SCRATCH, and from it `bench/end_to_end.py` runs that commit's default study (`iftscope run`, no
recipe: the commit's own defaults) with that commit's code first on PYTHONPATH, then
`bench/time_breakdown.py` times one job of the finished run folder (H/answer/s0, one thread, the
recipe's steps). The run folders stay under SCRATCH/<label>/ for bench/budget_compare.py. Writes
bench/results/before_after.json and prints a markdown table. Run it with nothing else on the
machine (about 40 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "before_after.json"


def git(*args: str, cwd: Path = HERE.parent) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def checkout(commit: str, where: Path) -> str:
    """A detached worktree of `commit` at `where` (remade if there); returns the full hash."""
    full = git("rev-parse", commit)
    if where.exists():
        subprocess.run(["git", "worktree", "remove", "--force", str(where)], cwd=HERE.parent, check=False)
        shutil.rmtree(where, ignore_errors=True)
    git("worktree", "add", "--detach", str(where), full)
    return full


def measure(commit: str, scratch: Path, label: str) -> dict:
    """The default study of `commit` end to end, then one job's time breakdown."""
    src = scratch / f"{label}-src"
    full = checkout(commit, src)
    env = {**os.environ, "PYTHONPATH": str(src / "src")}
    run, e2e, parts = scratch / label, scratch / f"{label}-e2e.json", scratch / f"{label}-breakdown.json"
    # each commit's own benches: the study as that commit ran it, the breakdown of its own job
    subprocess.run(
        [sys.executable, str(src / "bench" / "end_to_end.py"), "--out", str(run), "--result", str(e2e)],
        cwd=src,
        env=env,
        check=True,
    )
    breakdown_script = src / "bench" / "time_breakdown.py"
    if not breakdown_script.exists():  # a commit from before the breakdown: time it with today's
        breakdown_script = HERE / "time_breakdown.py"
    subprocess.run(
        [sys.executable, str(breakdown_script), "--run", str(run), "--out", str(parts)],
        cwd=src,
        env=env,
        check=True,
    )
    recipe = (run / "recipe.yaml").read_text()
    return {
        "commit": full,
        "run_folder": str(run.relative_to(HERE.parent)) if run.is_relative_to(HERE.parent) else run.name,
        "end_to_end": json.loads(e2e.read_text()),
        "time_breakdown": json.loads(parts.read_text()),
        "recipe_seeds_steps": _seeds_steps(recipe),
    }


def _seeds_steps(recipe_text: str) -> dict:
    import yaml

    recipe = yaml.safe_load(recipe_text)
    return {"seeds": recipe.get("seeds"), "steps": (recipe.get("train") or {}).get("steps")}


def table(result: dict) -> str:
    """Wall time, stage seconds and peak memory side by side, with after/before ratios."""
    b, a = result["before"]["end_to_end"], result["after"]["end_to_end"]
    rows = [("wall (s)", b["wall_seconds"], a["wall_seconds"])]
    for key in ("world", "probe", "train", "curve", "load", "evaluate", "train_and_evaluate_wall"):
        if key in b["stage_seconds"] or key in a["stage_seconds"]:
            rows.append((f"stage {key} (s)", b["stage_seconds"].get(key), a["stage_seconds"].get(key)))
    rows.append(("peak memory, process tree (MiB)", b["peak_tree_rss_mib"], a["peak_tree_rss_mib"]))
    lines = [
        f"| | before ({result['before']['commit'][:7]}) | after ({result['after']['commit'][:7]}) "
        "| after / before |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, x, y in rows:
        ratio = f"{y / x:.2f}" if x and y else ""
        lines.append(f"| {name} | {x} | {y} | {ratio} |")
    for side in ("before", "after"):
        s = result[side]["recipe_seeds_steps"]
        lines.append(f"\n{side}: seeds {s['seeds']}, {s['steps']} steps; one job's breakdown:\n")
        lines.append(result[side]["time_breakdown"]["table"])
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="the earlier commit")
    ap.add_argument("--after", default="HEAD", help="the later commit (default HEAD)")
    ap.add_argument("--scratch", type=Path, default=Path("runs/before-after"))
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.scratch = args.scratch.resolve()
    args.scratch.mkdir(parents=True, exist_ok=True)
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU threads",
        "command": "python bench/before_after.py " + " ".join(sys.argv[1:]),
    }
    for label, commit in (("before", args.before), ("after", args.after)):
        result[label] = measure(commit, args.scratch, label)
    result["table"] = table(result)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(result["table"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
