"""`iftscope evaluate` and `iftscope analyse`: the study's evaluation and analysis stages alone."""

from __future__ import annotations

import argparse
from pathlib import Path

from iftscope.commands.flags import (
    HelpFormatter,
    add_config_flags,
    add_device_flag,
    add_dtype_flag,
    config_from_flags,
)
from iftscope.probe.knowledge import ProbeConfig

# the ProbeConfig fields `iftscope evaluate` exposes (the rest keep their defaults)
TUNED = ProbeConfig(format="qa", shots=0)  # how the study reads a tuned model
SCORING = (
    "format",
    "shots",
    "demo_sets",
    "demos",
    "permutations",
    "normalise",
    "seed",
    "backend",
    "lm_eval_model",
    "lm_eval_args",
)


def _sets(items: list[str]) -> dict[str, Path]:
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--sets {item!r}: expected NAME=FILE, e.g. HOMO=data/engineering/test.jsonl")
        out[name] = Path(path)
    return out


def evaluate(args: argparse.Namespace) -> int:
    from iftscope.data import load_questions
    from iftscope.stages.evaluate import evaluate_stage, read_reference
    from iftscope.stages.model import ModelSpec

    sets = {name: load_questions(path) for name, path in _sets(args.sets).items()}
    pool = [q for p in args.pool or [] for q in load_questions(p)]
    reference = read_reference(args.reference, list(sets)) if args.reference else None
    metrics = evaluate_stage(
        ModelSpec(args.model, args.adapter, args.dtype, args.device), sets,
        config_from_flags(ProbeConfig, args, TUNED), args.out, pool=pool, reference=reference,
        batch_size=args.batch_size,
    )  # fmt: skip
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
    from iftscope.api import analyse_run

    result = analyse_run(args.run)
    print(result.verdict)
    print(f"report: {result.report}")
    return 0


def register(sub) -> None:
    e = sub.add_parser(
        "evaluate",
        help="zero-shot QA of a model on named test sets, and consistency with a reference",
        description="Score every question of each test set (option distribution, as the probe does) "
        "and write records-<set>.jsonl and metrics.json (accuracy; with --reference, the records of "
        "the base model on the same sets, knowledge consistency: argmax agreement, kappa, Spearman "
        "with average ranks, KL both ways, cosine, transitions).",
        formatter_class=HelpFormatter,
    )
    e.add_argument("--model", required=True, help="base model folder or hub id")
    e.add_argument("--adapter", help="PEFT adapter of the tuned model")
    e.add_argument("--sets", required=True, nargs="+", help="NAME=FILE test sets")
    from iftscope.probe.formats import FORMATS
    from iftscope.probe.knowledge import BACKENDS, DEMO_CHOICES

    g = e.add_argument_group(
        "scoring (ProbeConfig; tuned models zero-shot in the format they were trained with)"
    )
    choices = {"format": FORMATS, "demos": DEMO_CHOICES, "backend": BACKENDS}
    add_config_flags(g, ProbeConfig, only=SCORING, choices=choices, default=ProbeConfig(format="qa", shots=0))
    e.add_argument("--pool", nargs="+", type=Path, help="demonstrations for k-shot letter formats")
    e.add_argument("--reference", type=Path, help="an earlier evaluate folder of the base model")
    e.add_argument("--out", required=True, type=Path)
    add_device_flag(e)
    add_dtype_flag(e, "weights as loaded for scoring")
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
