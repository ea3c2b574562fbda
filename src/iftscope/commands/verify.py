"""`iftscope verify RUN_DIR`: is every finished stage of a run folder intact? A table of stages and
jobs (intact, damaged and which file, missing, stale, unsealed, not run) from the checksums each
stage recorded in its outputs.json (iftscope.outputs); exit 0 when nothing needs recomputing."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def verify(args: argparse.Namespace) -> int:
    from iftscope.outputs import check
    from iftscope.runfolder import RunFolder

    run = RunFolder(args.run_dir)
    if not run.root.is_dir():
        raise FileNotFoundError(f"{run.root}: no such run folder")
    if not run.recipe.exists():
        raise FileNotFoundError(f"{run.root} is not a run folder (no recipe.yaml)")
    rows = [
        (stage.name, check(stage.folder, stage.done, stage.inputs, full=args.full)) for stage in run.stages()
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{'stage':<{width}}  state     detail")
    for name, verdict in rows:
        file = os.path.relpath(verdict.file, run.root) if verdict.state == "stale" else verdict.file
        detail = f"{file} ({verdict.why})" if file else ""
        print(f"{name:<{width}}  {verdict.state:<8}  {detail}".rstrip())
    bad = [name for name, verdict in rows if not verdict.ok]
    if bad:
        print(
            f"{len(bad)} stage(s) to recompute: {', '.join(bad)}; "
            "`iftscope run` on this folder recomputes them"
        )
        return 1
    done = sum(v.state in ("intact", "unsealed") for _, v in rows)
    print(f"all {done} finished stage(s) intact" + (" (--full: every file rehashed)" if args.full else ""))
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "verify",
        help="check a run folder's finished stages against their recorded checksums",
        description="Check every finished stage of a run folder against the checksums it recorded "
        "(outputs.json in each stage folder): intact, damaged (which file), missing, stale (an input "
        "stage was recomputed since), unsealed (no checksums: an older run) or not run. Exit 0 when "
        "nothing needs recomputing, 1 otherwise; `iftscope run` on the folder recomputes what is "
        "listed. Files over 64 MiB are rehashed only when their size or time changed, unless --full.",
    )
    p.add_argument("run_dir", type=Path, help="the run folder (as given to `iftscope run --out`)")
    p.add_argument("--full", action="store_true", help="rehash every file, however big")
    p.set_defaults(func=verify)
