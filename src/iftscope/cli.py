"""The `iftscope` command: one subcommand per stage, each a thin call into the library."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from iftscope import __version__

DEFAULT_WORLD = Path("runs/default/world")


def _world(args: argparse.Namespace) -> int:
    from iftscope.world import WorldMismatchError, WorldStageConfig, build_world

    cfg = WorldStageConfig()
    cfg = replace(
        cfg,
        world=replace(cfg.world, seed=args.seed, people=args.people, unknown=args.unknown),
        pretrain=replace(cfg.pretrain, steps=args.steps),
    )
    try:
        summary = build_world(args.out, cfg, force=args.force, progress=not args.quiet)
    except (WorldMismatchError, ValueError) as e:
        print(f"iftscope world: error: {e}", file=sys.stderr)
        return 2
    mem, pre = summary["memorisation"], summary["pretrain"]
    state = "reused finished world" if summary["reused"] else "built world"
    print(
        f"{state} in {args.out} ({summary['counts']['people_known']} known + "
        f"{summary['counts']['people_unknown']} unknown people, {summary['counts']['questions']} questions)"
    )
    print(
        f"memorisation (held-back template): known {mem['known']:.3f}, unknown {mem['unknown']:.3f}, "
        f"chance {summary['chance']:.3f}"
    )
    print(
        f"pretraining: {pre['steps']} steps, {pre['seconds']:.0f} s, "
        f"{pre['tokens_per_second']:.0f} tokens/s, {pre['parameters']:,} parameters"
    )
    print(f"summary: {Path(args.out) / 'summary.json'}")
    return 0


def _data_check(args: argparse.Namespace) -> int:
    from iftscope.data.check import check_files, format_report

    try:
        report = check_files(args.paths)
    except (FileNotFoundError, ValueError) as e:
        print(f"iftscope data check: error: {e}", file=sys.stderr)
        return 2
    print(format_report(report, max_problems=args.max_problems))
    if args.json:
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "files": [
                        {
                            "path": f.path,
                            "questions": len(f.questions),
                            "errors": [str(p) for p in f.errors],
                            "warnings": [str(p) for p in f.warnings],
                        }
                        for f in report.files
                    ],
                },
                indent=2,
            )
        )
    return 0 if report.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iftscope",
        description="Does instruction fine-tuning teach your model new knowledge, or only make it "
        "express what it already knows? (Ren et al., ACL 2024, and beyond)",
    )
    parser.add_argument("--version", action="version", version=f"iftscope {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    w = sub.add_parser(
        "world",
        help="generate the micro-world and pretrain its tiny base model",
        description="Generate fictional people (known ones are pretrained, unknown ones never shown), "
        "pretrain a ~1M-parameter Llama on the known people's biographies, and measure "
        "what it memorised. A finished world with the same settings is reused; an "
        "interrupted one resumes from its last checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    w.add_argument("--out", type=Path, default=DEFAULT_WORLD, help="world folder")
    w.add_argument("--seed", type=int, default=0, help="seeds every random choice")
    w.add_argument("--people", type=int, default=500, help="known people (pretrained)")
    w.add_argument("--unknown", type=int, default=250, help="unknown people (never shown)")
    w.add_argument("--steps", type=int, default=1500, help="pretraining steps of 16 x 128 tokens")
    w.add_argument("--force", action="store_true", help="rebuild if --out holds another world")
    w.add_argument("--quiet", action="store_true", help="no progress bar")
    w.set_defaults(func=_world)

    d = sub.add_parser("data", help="multiple-choice data tools")
    dsub = d.add_subparsers(dest="data_command", required=True)
    c = dsub.add_parser(
        "check",
        help="validate files and summarise them",
        description="Validate multiple-choice files (paper JSONL with 0-based answers, JSONL or "
        "MMLU-style CSV with letter answers, or a `datasets` folder) and print counts "
        "per domain, the gold-letter distribution, duplicates and overlap between "
        "files. Exit code 1 if any file has errors. A folder stands for the .jsonl "
        "and .csv files under it.",
    )
    c.add_argument("paths", nargs="+", help="files or folders")
    c.add_argument("--max-problems", type=int, default=20, help="problems listed per file")
    c.add_argument("--json", action="store_true", help="also print a JSON report")
    c.set_defaults(func=_data_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
