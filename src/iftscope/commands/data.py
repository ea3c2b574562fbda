"""`iftscope data check`: validate multiple-choice files and summarise them."""

from __future__ import annotations

import argparse
import json


def check(args: argparse.Namespace) -> int:
    from iftscope.data.check import check_files, format_report

    report = check_files(args.paths)
    print(format_report(report, max_problems=args.max_problems))
    if args.json:
        files = [
            {"path": f.path, "questions": len(f.questions), "errors": [str(p) for p in f.errors],
             "warnings": [str(p) for p in f.warnings]}
            for f in report.files
        ]  # fmt: skip
        print(json.dumps({"ok": report.ok, "files": files}, indent=2))
    return 0 if report.ok else 1


def register(sub) -> None:
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
    c.set_defaults(func=check)
