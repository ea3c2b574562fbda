"""A study killed (SIGKILL, the whole process group) at random moments, then rerun to the end, must
give the numbers of an uninterrupted run: the issue's crash test at full size.

    python bench/kill_resume.py --reference runs/default/analysis/summary.json --out runs/killed

`--reference` is the summary.json of a clean run of the same recipe and code (README's main
command). Each kill moment is drawn from a seeded generator, uniform in its window of seconds after
that start (`--windows 30-700 30-1200`: the first kill somewhere in the first 700 s, the second in
the first 1,200 s of the rerun). Times (stage_seconds, stage_clock, a training's seconds and tokens/s)
are the only keys left out of the comparison. Writes bench/results/kill_resume.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

IGNORED = {"stage_seconds", "stage_clock", "seconds", "tokens_per_second"}  # clocks, at any depth


def differences(a, b, path: str = "") -> list[str]:
    """Paths where two JSON values differ (floats compared exactly)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if key in IGNORED:
                continue
            if key not in a or key not in b:
                out.append(f"{path}/{key} (only in one)")
            else:
                out += differences(a[key], b[key], f"{path}/{key}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path} (lengths {len(a)} vs {len(b)})"]
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{path}[{i}]")
        ]
    same = a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)  # NaN == NaN
    return [] if same else [f"{path}: {a!r} != {b!r}"]


def progress(out: Path) -> dict[str, object]:
    """What a killed run had finished."""
    return {
        "base_model": (out / "world" / "model").exists(),
        "probe": (out / "probe" / "summary.json").exists(),
        "trained_models": len(list(out.glob("train/*/*/*/train.json"))),
        "evaluated_models": len(list(out.glob("eval/*/*/*/metrics.json"))),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", type=Path, required=True, help="summary.json of a clean run")
    ap.add_argument("--out", type=Path, default=Path("runs/killed"))
    ap.add_argument("--windows", nargs="+", default=["30-700", "30-1200"], help="one per kill")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--result", type=Path, default=Path(__file__).parent / "results" / "kill_resume.json")
    args, extra = ap.parse_known_args()
    shutil.rmtree(args.out, ignore_errors=True)
    rng = random.Random(args.seed)
    env = dict(os.environ, IFTSCOPE_CACHE=tempfile.mkdtemp(prefix="iftscope-cache-"))
    cmd = ["iftscope", "run", "--out", str(args.out), "--quiet", *extra]
    kills, t_all = [], time.perf_counter()
    for window in args.windows:
        lo, hi = (float(x) for x in window.split("-"))
        after = round(rng.uniform(lo, hi), 1)
        proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
        try:
            proc.wait(timeout=after)
            kills.append({"after_seconds": after, "killed": False, "finished_first": True})
            continue
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        time.sleep(1)
        kills.append({"after_seconds": after, "killed": True, "done_at_kill": progress(args.out)})
        print("killed:", kills[-1], flush=True)
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL)
    if done.returncode:
        print(f"the final rerun failed with exit code {done.returncode}", file=sys.stderr)
        return 1
    ours = json.loads((args.out / "analysis" / "summary.json").read_text())
    ref = json.loads(args.reference.read_text())
    diff = differences(ref, ours)
    result = {
        "date": date.today().isoformat(),
        "command": "python " + " ".join(sys.argv),
        "reference": str(args.reference),
        "kills": kills,
        "total_wall_seconds": round(time.perf_counter() - t_all, 1),
        "identical_to_reference": not diff,
        "keys_compared": "all of summary.json except " + ", ".join(sorted(IGNORED)),
        "differences": diff[:50],
    }
    args.result.parent.mkdir(parents=True, exist_ok=True)
    args.result.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if not diff else 1


if __name__ == "__main__":
    sys.exit(main())
