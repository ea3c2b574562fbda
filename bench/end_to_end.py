"""The default study end to end: wall time per stage and in total, and peak memory of the whole
process tree (the study and its worker processes, summed, sampled every half second), overall and
per stage (the study records when each stage started and ended; the report is what follows the
analysis).

    python bench/end_to_end.py --out runs/bench-e2e [extra iftscope run arguments]

Run it with nothing else on the machine; it takes about 20 minutes on 2 cores. Writes
bench/results/end_to_end.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path


def tree_rss_kib(root: int) -> int:
    """Resident memory of a process and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid, ppid = int(entry.name), int(fields.get("PPid", "0").strip())
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0]) if "VmRSS" in fields else 0
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack += children.get(pid, [])
    return total


def stage_peaks(samples: list[tuple[float, int]], clock: dict[str, list[float]]) -> dict[str, float]:
    """The highest sample inside each stage's [start, end]; "report": after the analysis."""
    spans = dict(clock)
    if "analysis" in spans and samples:
        spans["report"] = [spans["analysis"][1], samples[-1][0] + 1]
    out = {}
    for stage, (start, end) in spans.items():
        inside = [kib for t, kib in samples if start <= t <= end]
        out[stage] = round(max(inside) / 1024, 1) if inside else None  # None: shorter than a sample
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-e2e"))
    ap.add_argument("--keep", action="store_true", help="reuse --out if it exists (default: start afresh)")
    ap.add_argument("--result", type=Path, default=Path(__file__).parent / "results" / "end_to_end.json")
    args, extra = ap.parse_known_args()
    if args.out.exists() and not args.keep:
        shutil.rmtree(args.out)
    cmd = ["iftscope", "run", "--out", str(args.out), "--quiet", *extra]
    sys.path.insert(0, str(Path(__file__).parent))
    from probe_scaling import matmul_rate  # the machine's speed now: shared hosts vary from day to day

    rate_before = matmul_rate()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    samples: list[tuple[float, int]] = []
    while proc.poll() is None:
        samples.append((time.time(), tree_rss_kib(proc.pid)))
        time.sleep(0.5)
    wall = time.perf_counter() - t0
    rate_after = matmul_rate()
    peak = max((kib for _, kib in samples), default=0)
    if proc.returncode:
        print(f"iftscope run failed with exit code {proc.returncode}", file=sys.stderr)
        return 1
    summary = json.loads((args.out / "analysis" / "summary.json").read_text())
    result = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU threads",
        "command": " ".join(cmd),
        "wall_seconds": round(wall, 1),
        "matmul_gflops_before_after": [round(rate_before, 1), round(rate_after, 1)],
        "stage_seconds": summary["stage_seconds"],
        "peak_tree_rss_mib": round(peak / 1024, 1),
        "peak_tree_rss_mib_by_stage": stage_peaks(samples, summary.get("stage_clock", {})),
        "verdict": summary["verdict"],
    }
    args.result.parent.mkdir(parents=True, exist_ok=True)
    args.result.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
