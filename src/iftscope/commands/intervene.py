"""`iftscope intervene`: IFT groups from a probe, rendered as SFT examples."""

from __future__ import annotations

import argparse
from pathlib import Path

from iftscope.commands.flags import HelpFormatter, add_config_flags, config_from_flags
from iftscope.intervene.groups import InterveneConfig
from iftscope.intervene.render import TEMPLATES, RenderConfig


def run(args: argparse.Namespace) -> int:
    from iftscope.data import load_questions
    from iftscope.intervene.stage import read_probe_records
    from iftscope.runs import read_json
    from iftscope.stages.intervene import intervene_stage
    from iftscope.stages.model import ModelSpec

    cfg, render = config_from_flags(InterveneConfig, args), config_from_flags(RenderConfig, args)
    if any(not 0 <= m <= 1 for m in cfg.mixtures):
        raise ValueError(f"--mixtures: fractions must lie in [0, 1], got {list(cfg.mixtures)}")
    records = read_probe_records(args.probe)
    probed = read_json(args.probe / "summary.json")
    data = args.data or [Path(p) for p in probed["data"]]
    questions = [q for path in data for q in load_questions(path)]
    model = args.model or probed.get("model")
    summary = intervene_stage(
        questions, records, cfg, render, args.out, base=ModelSpec(model) if model else None,
        probe=_probe_config(probed), pool=[q for path in args.pool or () for q in load_questions(path)],
        tests=[q for path in args.tests or () for q in load_questions(path)],
    )  # fmt: skip
    for name, g in summary["groups"].items():
        letters = " ".join(f"{k} {v}" for k, v in sorted(g["target_letters"].items())) or "(options hidden)"
        print(
            f"{name:>15}: {g['size']} items, targets {g['kinds']}, base confidence "
            f"{g['mean_base_confidence']:.2f}, letters {letters}"
        )
        if "writing" in g:  # self-instruct questions the model wrote
            w = g["writing"]
            print(f"{'':>15}  written: {w['accepted']} kept of {w['attempts']}, rejected {w['rejected']}")
    print(f"wrote {args.out}/: groups.json, examples/<group>.jsonl, [written.jsonl,] summary.json")
    return 0


def _probe_config(probed: dict):
    """The probe's settings as its summary records them: how written self-instruct questions are
    answered (as the probe read the data)."""
    from dataclasses import fields

    from iftscope.probe.knowledge import ProbeConfig

    known = {f.name for f in fields(ProbeConfig)}
    return ProbeConfig(**{k: v for k, v in (probed.get("config") or {}).items() if k in known})


def register(sub) -> None:
    p = sub.add_parser(
        "intervene",
        help="build IFT groups (H, I, S, mixtures, ...) from a probe",
        description="From probe records, build groups of equal size that differ in one factor: "
        "H (known, gold targets), I (confidently wrong, gold targets: new knowledge), S (the items "
        "of I with the model's own answers: self-aligning), I/S mixtures, and on the micro-world "
        "unknown-gold (never-pretrained people) and counterfactual (known facts, false targets). "
        "Each group is rendered as SFT examples in every requested style. When options are shown, "
        "each example's options are reordered so every group teaches each letter equally often. "
        "The flags are the recipe's intervene.* and render.* keys (--seed seeds both).",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--probe", required=True, type=Path, help="a finished `iftscope probe` folder")
    p.add_argument("--data", nargs="+", type=Path, help="question files (default: those the probe read)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument(
        "--model",
        help="base model for self-explained, the chat template and written self-instruct questions "
        "(default: the model the probe read)",
    )
    p.add_argument(
        "--pool", nargs="+", type=Path,
        help="written self-instruct questions: the demonstrations they are answered with, as the probe "
        "read (default: the question files)",
    )  # fmt: skip
    p.add_argument(
        "--tests",
        nargs="+",
        type=Path,
        help="written self-instruct questions: test-set files none of them may copy (no leakage)",
    )
    add_config_flags(p.add_argument_group("groups (intervene.*)"), InterveneConfig)
    add_config_flags(
        p.add_argument_group("rendering (render.*)"), RenderConfig, skip=("seed",),
        choices={"template": TEMPLATES},
    )  # fmt: skip
    p.set_defaults(func=run)
