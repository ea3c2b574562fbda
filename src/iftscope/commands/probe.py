"""`iftscope probe`: what does the base model already know? (the probe stage on your files)."""

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
from iftscope.probe.knowledge import BACKENDS, DEMO_CHOICES, KNOWN_RULES, ProbeConfig

NORMALISE = ("sum", "char", "token")


def add_probe_options(p: argparse.ArgumentParser) -> None:
    """The probe's options, shared by the commands that probe (probe, curate): the model and data,
    then every ProbeConfig field as a flag."""
    from iftscope.probe.formats import FORMATS

    p.add_argument("--model", required=True, help="Hugging Face model folder or hub id")
    p.add_argument("--data", required=True, nargs="+", type=Path, help="question files to probe")
    p.add_argument("--pool", nargs="+", type=Path, help="demonstration pool; by default the data itself")
    p.add_argument("--adapter", help="PEFT adapter folder")
    add_dtype_flag(p, "weights as loaded for scoring")
    add_device_flag(p)
    p.add_argument("--batch-size", type=int, default=32, help="sequences per forward pass")
    p.add_argument("--cache-dir", help="score cache folder; by default $IFTSCOPE_CACHE or ~/.cache/iftscope")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write cached scores")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    g = p.add_argument_group("probe settings (the recipe's probe.* keys)")
    choices = {"format": FORMATS, "demos": DEMO_CHOICES, "known_rule": KNOWN_RULES, "normalise": NORMALISE}
    choices["backend"] = BACKENDS
    add_config_flags(g, ProbeConfig, choices=choices)
    p.set_defaults(shots=None)  # by format: 0 where it scores statements zero-shot, else 5


def probe_config(args: argparse.Namespace) -> ProbeConfig:
    from iftscope.probe.formats import get_format

    shots = args.shots
    if shots is None:
        shots = 0 if get_format(args.format).zero_shot_only else ProbeConfig().shots
    return config_from_flags(ProbeConfig, args, shots=shots)


def probe_files(args: argparse.Namespace, out: Path):
    """Load the data, probe it into `out`, print what was found; returns the ProbeOutcome."""
    from iftscope.data import load_questions
    from iftscope.microworld.groundtruth import load_truth
    from iftscope.probe.runner import format_summary
    from iftscope.stages.model import ModelSpec
    from iftscope.stages.probe import CacheConfig, probe_stage

    cfg = probe_config(args)
    questions = [q for path in args.data for q in load_questions(path)]
    pool = [q for path in (args.pool or []) for q in load_questions(path)]
    world = args.data[0].parent  # a micro-world's questions: agreement with its ground truth
    truth = load_truth(world) if len(args.data) == 1 and (world / "recall.jsonl").exists() else None
    outcome = probe_stage(
        ModelSpec(str(args.model), args.adapter, args.dtype, args.device), questions, cfg, out,
        pool=pool, batch_size=args.batch_size, cache=CacheConfig(not args.no_cache, args.cache_dir),
        truth=truth, data=[str(p) for p in args.data], progress=not args.quiet,
    )  # fmt: skip
    print(format_summary(outcome.summary))
    if outcome.cache_path:
        print(f"score cache {outcome.cache_path}: {outcome.cache_hits} hits, {outcome.cache_misses} computed")
    return outcome


def run(args: argparse.Namespace) -> int:
    probe_files(args, args.out)
    print(f"wrote {args.out}/: records.jsonl, summary.json, coverage.md (bias, calibration, label errors)")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "probe",
        help="what does the base model already know? score multiple-choice questions",
        description="Score each question with one forward pass per view: k-shot prompt, softmax over "
        "the option-letter tokens in float32 (letter formats), or each option's log-likelihood as "
        "the continuation of a statement (cloze). Several demonstration sets and cyclic option "
        "permutations can be averaged to cancel position bias. Writes DIR/records.jsonl (one "
        "record per question) and DIR/summary.json; an interrupted probe resumes.",
        formatter_class=HelpFormatter,
    )
    add_probe_options(p)
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.set_defaults(func=run)
