"""The `iftscope` command: one subcommand per stage, each a thin call into the library."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from iftscope import __version__
from iftscope.microworld.generator import ATTRIBUTES

DEFAULT_WORLD = Path("runs/default/world")


def _world(args: argparse.Namespace) -> int:
    from iftscope.microworld.stage import WorldMismatchError, WorldStageConfig, build_world

    cfg = WorldStageConfig()
    held_out = None if args.held_out_attribute == "none" else args.held_out_attribute
    cfg = replace(
        cfg,
        world=replace(
            cfg.world, seed=args.seed, people=args.people, unknown=args.unknown, held_out_attribute=held_out
        ),
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
        f"memorisation (held-back paraphrases): known {mem['known']:.3f}, unknown {mem['unknown']:.3f}, "
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


def _probe(args: argparse.Namespace) -> int:
    from iftscope.data import DataValidationError, load_questions
    from iftscope.models.identity import model_identity
    from iftscope.models.load import load_model
    from iftscope.models.scorer import HFScorer
    from iftscope.probe.cache import CachedScorer
    from iftscope.probe.formats import get_format
    from iftscope.probe.knowledge import ProbeConfig, letter_token_ids
    from iftscope.probe.runner import format_summary, run_probe

    try:
        fmt = get_format(args.format)
        shots = args.shots if args.shots is not None else (0 if fmt.name in ("cloze", "qa") else 5)
        questions = [q for path in args.data for q in load_questions(path)]
        pool = [q for path in (args.pool or []) for q in load_questions(path)] or questions
        cfg = ProbeConfig(
            format=fmt.name,
            shots=shots,
            demo_sets=args.demo_sets,
            demos=args.demos,
            permutations=args.permutations,
            normalise=args.normalise,
            seed=args.seed,
            known_rule=args.known_rule,
            known_threshold=args.known_threshold,
        )
        model, tokenizer = load_model(args.model, dtype=args.dtype, device=args.device, adapter=args.adapter)
    except (DataValidationError, ValueError, FileNotFoundError, OSError) as e:
        print(f"iftscope probe: error: {e}", file=sys.stderr)
        return 2
    try:
        fmt = fmt.with_tokenizer(tokenizer)
    except ValueError as e:
        print(f"iftscope probe: error: {args.model}: {e}", file=sys.stderr)
        return 2
    try:
        fmt = fmt.with_tokenizer(tokenizer)
    except ValueError as e:
        print(f"iftscope probe: error: {args.model}: {e}", file=sys.stderr)
        return 2
    scorer = hf_scorer = HFScorer(model, tokenizer, batch_size=args.batch_size)
    identity = model_identity(args.model, args.adapter, args.dtype, hf_scorer.add_bos)
    if not args.no_cache:
        scorer = CachedScorer(scorer, identity, args.cache_dir)
    extra = {
        "model": str(args.model),
        "model_identity": identity,
        "adapter": str(args.adapter) if args.adapter else None,
        "add_bos": hf_scorer.add_bos,
        "data": [str(p) for p in args.data],
    }
    if fmt.mode == "letter":
        width = max(len(q.choices) for q in questions)
        extra["scored_token_ids"] = letter_token_ids(scorer, fmt, width)
    world = args.data[0].parent
    truth = None
    if len(args.data) == 1 and (world / "recall.jsonl").exists():
        from iftscope.microworld.groundtruth import load_truth

        truth = load_truth(world)
    summary = run_probe(
        scorer, questions, pool, fmt, cfg, args.out, progress=not args.quiet, extra=extra, truth=truth
    )
    print(format_summary(summary))
    if isinstance(scorer, CachedScorer):
        print(f"score cache {scorer.path}: {scorer.hits} hits, {scorer.misses} computed")
    print(f"wrote {args.out}/: records.jsonl, summary.json, coverage.md (bias, calibration, label errors)")
    return 0


def add_probe_options(p: argparse.ArgumentParser) -> None:
    """The probe's options, shared by the commands that probe (probe, curate)."""
    p.add_argument("--model", required=True, help="Hugging Face model folder or hub id")
    p.add_argument("--data", required=True, nargs="+", type=Path, help="question files to probe")
    p.add_argument("--pool", nargs="+", type=Path, help="demonstration pool (default: the data itself)")
    p.add_argument(
        "--format", default="paper", help="paper, paper-original, mmlu, chat, continuation or cloze"
    )
    p.add_argument("--shots", type=int, help="demonstrations (default 5; 0 for cloze)")
    p.add_argument("--demo-sets", type=int, default=1, help="random demonstration sets averaged")
    p.add_argument(
        "--demos",
        default="shared",
        choices=["shared", "per-question", "first"],
        help="shared = one seeded random set for all questions (its prefix is encoded once); "
        "per-question = a seeded set per question; first = the pool's first k (the paper's fixed set)",
    )
    p.add_argument("--permutations", type=int, default=1, help="cyclic option rotations averaged")
    p.add_argument("--normalise", default="sum", choices=["sum", "char", "token"], help="cloze scoring")
    p.add_argument(
        "--known-rule",
        default="generative",
        choices=["generative", "confident", "argmax"],
        help="when a question counts as known: generative = the model gives the gold answer "
        "probability >= threshold over its whole vocabulary; confident = gold is the argmax with "
        "share > threshold among the options; argmax = gold is the argmax (the paper's 'correct')",
    )
    p.add_argument("--known-threshold", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--adapter", type=Path, help="PEFT adapter folder")
    p.add_argument("--dtype", default="float32", help="float32, bfloat16, float16 or auto")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: a GPU if there is one)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--cache-dir",
        type=Path,
        help="score cache, keyed by the model's weights, tokenizer and adapter contents "
        "(default: $IFTSCOPE_CACHE or ~/.cache/iftscope)",
    )
    p.add_argument("--no-cache", action="store_true", help="neither read nor write cached scores")
    p.add_argument("--quiet", action="store_true")


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
    w.add_argument("--steps", type=int, default=2000, help="pretraining steps of 16 x 128 tokens")
    w.add_argument(
        "--held-out-attribute",
        default="employer",
        choices=[*ATTRIBUTES, "none"],
        help="attribute kept out of all IFT, as an out-of-distribution test",
    )
    w.add_argument("--force", action="store_true", help="rebuild if --out holds another world")
    w.add_argument("--quiet", action="store_true", help="no progress bar")
    w.set_defaults(func=_world)

    p = sub.add_parser(
        "probe",
        help="what does the base model already know? score multiple-choice questions",
        description="Score each question with one forward pass per view: k-shot prompt, softmax over "
        "the option-letter tokens in float32 (letter formats), or each option's log-likelihood as "
        "the continuation of a statement (cloze). Several demonstration sets and cyclic option "
        "permutations can be averaged to cancel position bias. Writes DIR/records.jsonl (one "
        "record per question) and DIR/summary.json; an interrupted probe resumes.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_probe_options(p)
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.set_defaults(func=_probe)

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

    from iftscope.commands import curate, evaluate, intervene, train
    from iftscope.commands import run as run_command

    run_command.register(sub)
    intervene.register(sub)
    train.register(sub)
    evaluate.register(sub)
    curate.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own bars say what is happening; theirs are noise
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
