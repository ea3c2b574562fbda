"""The smoke study under each fault a real run meets, and what the user saw (issue 17 item 7).

    python bench/faults.py                       # the smoke recipe, 3 kill -9 moments, seed 0
    python bench/faults.py --kills 5 --seed 1 --out runs/faults

One clean run first (it counts the atomic writes W of the main process), then each fault in its
own run folder with its own empty score cache. The moments of the faults are drawn in writes, not
seconds, so that they fall inside the work however loaded the machine is: each child starts
through a `python -c` wrapper (no test hook in the package) that, at that process's k-th os.fsync
(one per atomic write, made before the rename), does the fault. (On the smoke recipe the trainings
and evaluations run in worker processes, whose writes are not counted: the faults there fall in
the main process's stages - world, probe, base evaluation, groups, analysis - or as the main
process waits for the workers.)

  kill -9     the whole process group SIGKILLed at write k_i of restart i (i = 1..n, n = --kills;
              k_i uniform in 1..(W - k_1 - ... - k_(i-1)) / (n - i + 1), so that the kills spread
              over the run), then rerun to the end
  SIGTERM     the process group sent SIGTERM (what Slurm sends before it kills a job) at write k
              uniform in 1..W, then rerun
  ENOSPC      write k (uniform in 1..W) fails as on a full disk (os.fsync raises ENOSPC); rerun
  corrupted   a copy of the clean run with one evaluation's metrics.json truncated and one record of
              another altered: `iftscope verify`, then rerun, then verify again
  concurrent  a second `iftscope run` on a folder in use: refused; the first one finishes
  read-only   a copy of the clean run made read-only (a read-only bind mount in a user namespace
              when root, who writes anywhere; chmod otherwise): refused before any work

`--parallel` runs the faults at once, each in its own folder (on a shared machine they then get
their share of the cores; each fault's random draws are its own, seeded from --seed and its name).
`--clean-from DIR --clean-stats SECONDS WRITES` reuses a clean run made earlier of the same recipe
and code (this script's own, e.g. when it was stopped after it) instead of making one.

The table: fault, when, what the user saw (the first stderr line from iftscope itself), exit code,
survived (the final run finished, or the refusal was clean), identical to the clean run
(bench/compare_runs.py: summary.json less times and provenance, runs.csv byte for byte). Writes
bench/results/faults.json and bench/results/faults.md.
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
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from compare_runs import compare  # noqa: E402

# a child `iftscope` that at its k-th os.fsync (one per atomic write) does argv[1] = ACTION:k -
# enospc (the fsync fails as on a full disk), kill (SIGKILL to its process group), term (SIGTERM to
# its process group, the handler then ends the run) or none. It writes how many fsyncs it made to
# argv[2] at exit (the clean run's count sets k's range).
WRAPPER = r"""
import atexit, errno, os, signal, sys
action, k = sys.argv[1].split(":")
k, count_file, calls, real = int(k), sys.argv[2], [0], os.fsync
def fsync(fd):
    calls[0] += 1
    if calls[0] == k and action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    if calls[0] == k and action in ("kill", "term"):
        os.killpg(0, signal.SIGKILL if action == "kill" else signal.SIGTERM)
    return real(fd)
os.fsync = fsync
atexit.register(lambda: open(count_file, "w").write(str(calls[0])))
sys.argv = ["iftscope", *sys.argv[3:]]
from iftscope.cli import main
sys.exit(main())
"""


class Bench:
    """The clean run's results and time, the random draws, a run folder and cache per fault."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.root = args.out
        self.clean, self.clean_seconds, self.writes = self.root / "clean", 0.0, 0

    def rng(self, fault: str) -> random.Random:
        """The fault's own draws, seeded from --seed and its name (the same whatever runs alongside)."""
        return random.Random(f"{self.args.seed}-{fault}")

    def env(self) -> dict[str, str]:
        return dict(os.environ, IFTSCOPE_CACHE=tempfile.mkdtemp(prefix="iftscope-faults-cache-"))

    def cmd(self, out: Path, *, fault: str | None = None, count: Path | None = None) -> list[str]:
        """`iftscope run` into `out`; `fault` (ACTION:k) through the wrapper above."""
        tail = ["run", self.args.recipe, "--out", str(out), "--quiet"]
        if fault is None:
            return [sys.executable, "-m", "iftscope", *tail]
        return [sys.executable, "-c", WRAPPER, fault, str(count or os.devnull), *tail]

    def run_new_session(self, cmd: list[str], env: dict[str, str]) -> tuple[int, str]:
        """As run, the child leading its own process group (which the wrapper signals)."""
        done = subprocess.run(
            cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        return done.returncode, first_line(done.stderr)

    def run(self, cmd: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
        """(exit code, the first stderr line iftscope itself wrote, else the first line)."""
        done = subprocess.run(
            cmd, env=env or self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        return done.returncode, first_line(done.stderr)

    def identical(self, out: Path) -> tuple[bool, str]:
        if not (out / "analysis" / "summary.json").exists():
            return False, "no summary.json"
        diffs, same_csv = compare(self.clean, out)
        return not diffs and same_csv, ", ".join(diffs[:5]) + ("" if same_csv else " runs.csv differs")


def first_line(stderr: str) -> str:
    lines = [x for x in stderr.splitlines() if x.strip()]
    ours = [x for x in lines if x.startswith("iftscope")]
    return (ours or lines or [""])[0][:300]


def clean_run(b: Bench) -> dict:
    if b.args.clean_from:  # a clean run made earlier (by this script, stopped after it): reused
        b.clean, (b.clean_seconds, b.writes) = b.args.clean_from, b.args.clean_from_stats
        when = f"{b.clean_seconds:.0f} s, {b.writes} atomic writes (reused: {b.clean})"
        return row("none (clean run)", when, "", 0, True, (True, ""))
    count = b.root / "clean-writes.txt"
    t0 = time.perf_counter()
    code, saw = b.run(b.cmd(b.clean, fault="none:0", count=count))
    b.clean_seconds = time.perf_counter() - t0
    if code:
        raise SystemExit(f"the clean run failed (exit {code}): {saw}")
    b.writes = int(count.read_text())
    when = f"{b.clean_seconds:.0f} s, {b.writes} atomic writes"
    return row("none (clean run)", when, saw, code, True, (True, ""))


def row(fault: str, when: str, saw: str, code: int, survived: bool, same: tuple[bool, str] | None) -> dict:
    out = {"fault": fault, "when": when, "user_saw": saw, "exit_code": code, "survived": survived}
    out["identical"] = None if same is None else same[0]
    if same is not None and not same[0]:
        out["differences"] = same[1]
    return out


def kill9(b: Bench) -> dict:
    out, env, moments, rng, drawn = b.root / "kill-9", b.env(), [], b.rng("kill9"), 0
    for i in range(b.args.kills):
        k = rng.randint(1, max(1, (b.writes - drawn) // (b.args.kills - i)))
        drawn += k
        code, _ = b.run_new_session(b.cmd(out, fault=f"kill:{k}"), env)
        moments.append(f"{k}" + ("" if code == -signal.SIGKILL else f" (not reached: exit {code})"))
    code, saw = b.run(b.cmd(out), env)
    when = f"killed at write {', '.join(moments)} of each restart ({b.writes} in a clean run); then rerun"
    saw = saw or "(nothing: killed; the rerun said nothing)"
    return row(f"kill -9 x{b.args.kills}", when, saw, code, code == 0, b.identical(out))


def sigterm(b: Bench) -> dict:
    out, env = b.root / "sigterm", b.env()
    k = b.rng("sigterm").randint(1, b.writes)
    first, saw = b.run_new_session(b.cmd(out, fault=f"term:{k}"), env)
    code, _ = b.run(b.cmd(out), env)
    leftovers = [str(p.relative_to(out)) for p in out.rglob(".*.tmp")]
    when = f"SIGTERM to the process group at write {k} of {b.writes} (exit {first}); then rerun"
    if leftovers:
        when += f"; temporaries left: {leftovers[:3]}"
    survived = code == 0 and first == 143 and not leftovers and "Traceback" not in saw
    return row("SIGTERM", when, saw, first, survived, b.identical(out))


def enospc(b: Bench) -> dict:
    out, env = b.root / "enospc", b.env()
    k = b.rng("enospc").randint(1, b.writes)
    first, saw = b.run(b.cmd(out, fault=f"enospc:{k}"), env)
    code, _ = b.run(b.cmd(out), env)
    leftovers = [str(p.relative_to(out)) for p in out.rglob(".*.tmp")]
    when = f"write {k} of {b.writes} fails (exit {first}); then rerun"
    if leftovers:
        when += f"; temporaries left: {leftovers[:3]}"
    survived = code == 0 and first == 2 and not leftovers and "Traceback" not in saw
    return row("ENOSPC (disk full)", when, saw, first, survived, b.identical(out))


def corrupted(b: Bench) -> dict:
    out = b.root / "corrupted"
    shutil.copytree(b.clean, out)
    evals = sorted(p.parent for p in out.glob("eval/*/*/s*/metrics.json"))
    metrics = evals[0] / "metrics.json"
    metrics.write_bytes(metrics.read_bytes()[: metrics.stat().st_size // 2])
    records = sorted(evals[-1].glob("records-*.jsonl"))[0]
    records.write_text(records.read_text().replace('"views": 1', '"views": 2', 1))
    verify = [sys.executable, "-m", "iftscope", "verify", str(out)]
    before = subprocess.run(verify, capture_output=True, text=True)
    damaged = [x.split("  ")[0] for x in before.stdout.splitlines() if "damaged" in x]
    code, saw = b.run(b.cmd(out))
    after = subprocess.run(verify, capture_output=True, text=True).returncode
    when = (
        f"{metrics.relative_to(out)} truncated, a record of {records.relative_to(out)} altered; verify "
        f"(exit {before.returncode}) named {damaged}; rerun; verify again (exit {after})"
    )
    return row(
        "corrupted outputs",
        when,
        saw,
        code,
        code == 0 and before.returncode == 1 and after == 0,
        b.identical(out),
    )


def concurrent(b: Bench) -> dict:
    out, env = b.root / "concurrent", b.env()
    first = subprocess.Popen(
        b.cmd(out), env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not (out / ".lock.holder").exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    code, saw = b.run(b.cmd(out), env)
    first.wait()
    when = (
        f"a second run while the first holds the folder (second: exit {code}; first: exit {first.returncode})"
    )
    survived = code == 2 and first.returncode == 0
    return row("concurrent second run", when, saw, code, survived, b.identical(out))


def read_only(b: Bench) -> dict:
    out = b.root / "read-only"
    shutil.copytree(b.clean, out)
    snapshot = _listing(out)
    if os.geteuid() == 0:
        mount = f'mount --bind -o ro "{out}" "{out}" && exec "$@"'
        cmd = ["unshare", "-rm", "sh", "-c", mount, "sh", *b.cmd(out)]
    else:
        for p in [out, *out.rglob("*")]:
            if p.is_dir():
                p.chmod(0o555)
        cmd = b.cmd(out)
    code, saw = b.run(cmd)
    unchanged = _listing(out) == snapshot
    when = "the finished run folder, read-only; folder " + ("unchanged" if unchanged else "CHANGED")
    return row(
        "read-only run folder", when, saw, code, code == 2 and unchanged and "Traceback" not in saw, None
    )


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


FAULTS = {
    "kill9": kill9,
    "sigterm": sigterm,
    "enospc": enospc,
    "corrupted": corrupted,
    "concurrent": concurrent,
    "read-only": read_only,
}


def run_faults(b: Bench, names: list[str], parallel: bool) -> list[dict]:
    """Each fault's row, in the order named; with `parallel`, all at once (threads that wait on
    their child processes: on a shared machine the faults then get their share of the cores)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(name: str) -> dict:
        result = FAULTS[name](b)
        print(json.dumps(result), flush=True)
        return result

    if not parallel:
        return [one(name) for name in names]
    with ThreadPoolExecutor(len(names)) as pool:
        return list(pool.map(one, names))


def markdown(rows: list[dict]) -> str:
    lines = [
        "| fault | when | what the user saw | exit | survived | identical summary |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        same = (
            "n/a (refused)"
            if r["identical"] is None
            else ("yes" if r["identical"] else f"NO ({r.get('differences', '')})")
        )
        saw = r["user_saw"].replace("|", "\\|")
        lines.append(
            f"| {r['fault']} | {r['when']} | `{saw}` | {r['exit_code']} | "
            f"{'yes' if r['survived'] else 'NO'} | {same} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="smoke")
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/faults"))
    ap.add_argument("--only", nargs="*", choices=list(FAULTS), help="these faults only (default: all)")
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--parallel", action="store_true", help="the faults at once (each in its own folder)")
    ap.add_argument(
        "--clean-from", type=Path, help="a finished clean run of the same recipe and code to reuse; its "
        "wall seconds and atomic writes from --clean-stats",
    )  # fmt: skip
    ap.add_argument("--clean-stats", nargs=2, type=float, metavar=("SECONDS", "WRITES"))
    args = ap.parse_args()
    if args.clean_from:
        args.clean_from_stats = (args.clean_stats[0], int(args.clean_stats[1]))
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    b, t0 = Bench(args), time.perf_counter()
    rows = [clean_run(b)]
    print(json.dumps(rows[-1]), flush=True)
    rows += run_faults(b, args.only or list(FAULTS), args.parallel)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit,
        "command": "python " + " ".join(sys.argv), "recipe": args.recipe, "seed": args.seed,
        "parallel": args.parallel,
        "wall_seconds": round(time.perf_counter() - t0, 1), "rows": rows,
        "all_survived": all(r["survived"] for r in rows),
        "all_identical": all(r["identical"] in (True, None) for r in rows),
    }  # fmt: skip
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "faults.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.results / "faults.md").write_text(markdown(rows))
    print(markdown(rows))
    return 0 if result["all_survived"] and result["all_identical"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
