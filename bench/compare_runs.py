"""Are two study run folders the same results? Compares analysis/summary.json less what measures
time or names the machine's paths, and analysis/runs.csv byte for byte. Used to show that a
refactoring changed no number:

    git worktree add /tmp/before <old commit> && (cd /tmp/before && pip install -e . -q)
    iftscope run smoke --out /tmp/a --quiet            # in each checkout's environment
    python bench/compare_runs.py /tmp/a /tmp/b

Exit 0 when identical, 1 with the differing keys listed otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TIMES = {"stage_seconds", "stage_clock", "seconds", "tokens_per_second", "resumed_at"}
# provenance: where the probed model and data lie, and their identity (a hash of paths and times)
PROVENANCE = {"model", "model_identity", "data", "adapter", "add_bos"}


def _strip(value, path=()):
    if isinstance(value, dict):
        drop = TIMES | (PROVENANCE if path == ("probe",) else set())
        return {k: _strip(v, (*path, k)) for k, v in value.items() if k not in drop}
    if isinstance(value, list):
        return [_strip(v, path) for v in value]
    return value


def _diff(a, b, path="") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _diff(a.get(k), b.get(k), f"{path}.{k}")]
    return [] if json.dumps(a) == json.dumps(b) else [path or "."]


def compare(a: Path, b: Path) -> tuple[list[str], bool]:
    """(the summary.json keys that differ, whether runs.csv is the same) between two run folders."""
    sa, sb = (_strip(json.loads((x / "analysis" / "summary.json").read_text())) for x in (a, b))
    same_csv = (a / "analysis" / "runs.csv").read_bytes() == (b / "analysis" / "runs.csv").read_bytes()
    return _diff(sa, sb), same_csv


def main(argv: list[str]) -> int:
    a, b = (Path(x) for x in argv)
    diffs, same_csv = compare(a, b)
    if not diffs and same_csv:
        print("IDENTICAL: summary.json (less times and probe provenance) and runs.csv")
        return 0
    csv = "same" if same_csv else "differs"
    print(f"DIFFERENT: {', '.join(diffs[:20]) or 'summary.json same'}; runs.csv {csv}")
    return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
