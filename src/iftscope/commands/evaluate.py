"""`iftscope evaluate` and `iftscope analyse`: the study's evaluation and analysis stages alone."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _sets(items: list[str]) -> dict[str, Path]:
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--sets {item!r}: expected NAME=FILE, e.g. HOMO=data/engineering/test.jsonl")
        out[name] = Path(path)
    return out


def evaluate(args: argparse.Namespace) -> int:
    from iftscope.data import DataValidationError, load_questions
    from iftscope.evaluate.qa import score_sets, set_metrics
    from iftscope.models.load import load_model
    from iftscope.models.scorer import HFScorer
    from iftscope.probe.formats import get_format
    from iftscope.probe.knowledge import ProbeConfig
    from iftscope.runs import atomic_write_json, atomic_write_jsonl
    from iftscope.study.runner import _read_records

    try:
        sets = {name: load_questions(path) for name, path in _sets(args.sets).items()}
        fmt = get_format(args.format)
        model, tok = load_model(args.model, adapter=args.adapter, device=args.device)
        pool = [q for p in args.pool or [] for q in load_questions(p)]
        base = None
        if args.reference:
            base = {s: _read_records(args.reference / f"records-{s}.jsonl") for s in sets}
    except (DataValidationError, ValueError, FileNotFoundError, OSError) as e:
        print(f"iftscope evaluate: error: {e}", file=sys.stderr)
        return 2
    scorer = HFScorer(model, tok, batch_size=args.batch_size)
    cfg = ProbeConfig(format=fmt.name, shots=args.shots)
    records = score_sets(scorer, sets, fmt.with_tokenizer(tok), cfg, pool)
    metrics = {s: set_metrics(rs, base[s] if base else None) for s, rs in records.items()}
    for s, rs in records.items():
        atomic_write_jsonl(args.out / f"records-{s}.jsonl", (r.to_json() for r in rs))
    atomic_write_json(args.out / "metrics.json", metrics)
    for s, m in metrics.items():
        line = f"{s}: n {m['n']}, accuracy {m['accuracy']:.3f}"
        if "consistency" in m:
            c = m["consistency"]
            line += (
                f", argmax agreement {c['argmax_agreement']:.3f}, Spearman {c['spearman']:.3f}, "
                f"KL(base||tuned) {c['kl_base_tuned']:.3f}"
            )
        print(line)
    print(f"wrote {args.out}/metrics.json and records-<set>.jsonl")
    return 0


def analyse(args: argparse.Namespace) -> int:
    """Redo the analysis and the report of a run folder from its stored outputs."""
    from iftscope.report.render import write_report
    from iftscope.runs import atomic_write_json, read_json
    from iftscope.study.analysis import analyse as analyse_runs
    from iftscope.study.recipe import load_recipe

    path = args.run / "analysis" / "summary.json"
    if not path.exists():
        print(
            f"iftscope analyse: error: {args.run} has no finished study (run `iftscope run`)", file=sys.stderr
        )
        return 2
    old = read_json(path)
    cfg, _ = load_recipe(args.run / "recipe.yaml")
    runs = []
    for key, train in old["training"].items():
        group, style, seed = key.split("/")
        metrics = json.loads((args.run / "eval" / key / "metrics.json").read_text())
        runs.append(
            {"group": group, "style": style, "seed": int(seed[1:]), "metrics": metrics, "train": train}
        )
    result = analyse_runs(args.run, cfg, runs, old["stage_seconds"])
    result["stage_seconds"] = old["stage_seconds"]
    atomic_write_json(path, result)
    paths = write_report(args.run)
    print(result["verdict"])
    print(f"report: {paths['html']}")
    return 0


def register(sub) -> None:
    e = sub.add_parser(
        "evaluate",
        help="zero-shot QA of a model on named test sets, and consistency with a reference",
        description="Score every question of each test set (option distribution, as the probe does) "
        "and write records-<set>.jsonl and metrics.json (accuracy; with --reference, the records of "
        "the base model on the same sets, knowledge consistency: argmax agreement, kappa, Spearman "
        "with average ranks, KL both ways, cosine, transitions).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    e.add_argument("--model", required=True, help="base model folder or hub id")
    e.add_argument("--adapter", type=Path, help="PEFT adapter of the tuned model")
    e.add_argument("--sets", required=True, nargs="+", help="NAME=FILE test sets")
    e.add_argument("--format", default="qa", help="prompt format (qa, cloze, paper, mmlu, ...)")
    e.add_argument("--shots", type=int, default=0)
    e.add_argument("--pool", nargs="+", type=Path, help="demonstrations for k-shot letter formats")
    e.add_argument("--reference", type=Path, help="an earlier evaluate folder of the base model")
    e.add_argument("--out", required=True, type=Path)
    e.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: a GPU if there is one)")
    e.add_argument("--batch-size", type=int, default=64)
    e.set_defaults(func=evaluate)
    a = sub.add_parser(
        "analyse",
        help="redo the analysis and the report of a finished study",
        description="Recompute tables, CIs, paired tests and the partial correlation from a run "
        "folder's stored evaluations, and rewrite its report.",
    )
    a.add_argument("run", type=Path, help="run folder of `iftscope run`")
    a.set_defaults(func=analyse)
