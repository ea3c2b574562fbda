"""`iftscope curate`: a knowledge-consistent version of a user's QA/IFT data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from iftscope.commands.flags import HelpFormatter
from iftscope.commands.probe import add_probe_options, probe_files


def run(args: argparse.Namespace) -> int:
    from iftscope.data import load_questions
    from iftscope.intervene.curate import curate, report, report_markdown
    from iftscope.intervene.stage import read_probe_records
    from iftscope.runs import atomic_write_json, atomic_write_text

    probe_dir = args.out.with_name(args.out.name + ".probe")
    probe_files(args, probe_dir)
    questions = [q for path in args.data for q in load_questions(path)]
    kept, decisions = curate(questions, read_probe_records(probe_dir), args.policy, args.confidence)
    atomic_write_text(args.out, "".join(json.dumps(q.to_json(), ensure_ascii=False) + "\n" for q in kept))
    rep = report(decisions, questions, args.policy)
    atomic_write_json(args.out.with_name(args.out.name + ".report.json"), rep)
    md = args.out.with_name(args.out.name + ".report.md")
    atomic_write_text(md, report_markdown(rep))
    v, a = rep["verdicts"], rep["actions"]
    print(
        f"curated {rep['n']} items ({args.policy}): known {v.get('known', 0)}, contradicted "
        f"{v.get('contradicts', 0)}, unsure {v.get('unsure', 0)}; "
        + ", ".join(f"{k} {n}" for k, n in sorted(a.items()))
    )
    print(f"wrote {args.out} ({len(kept)} items), {md} (what changed and why), probe in {probe_dir}/")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "curate",
        help="make your QA/IFT data consistent with what the model knows",
        description="Probe your data with the model, then write a version of it that does not fight "
        "the model's confident beliefs: drop (remove the items it confidently contradicts), relabel "
        "(give them the model's own answer) or keep (annotate only). Every kept item carries the "
        "verdict in metadata; OUT.report.md lists what changed and why. Curation adds no knowledge.",
        formatter_class=HelpFormatter,
    )
    add_probe_options(p)
    p.add_argument("--out", required=True, type=Path, help="curated JSONL (paper format) to write")
    p.add_argument("--policy", default="drop", choices=["drop", "relabel", "keep"])
    p.add_argument("--confidence", type=float, default=0.5, help="'contradicts': wrong with confidence above")
    p.set_defaults(func=run)
