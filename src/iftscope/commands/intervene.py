"""`iftscope intervene`: IFT groups from a probe, rendered as SFT examples."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions, got {text!r}") from e
    if any(not 0 <= v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"mixture fractions must lie in [0, 1], got {text!r}")
    return values


def run(args: argparse.Namespace) -> int:
    from iftscope.data import DataValidationError, load_questions
    from iftscope.intervene.groups import InterveneConfig
    from iftscope.intervene.render import RenderConfig
    from iftscope.intervene.stage import read_probe_records, run_intervene

    try:
        records = read_probe_records(args.probe)
        data = args.data or [Path(p) for p in json.loads((args.probe / "summary.json").read_text())["data"]]
        questions = [q for path in data for q in load_questions(path)]
        cfg = InterveneConfig(
            confidence=args.confidence, mixtures=args.mixtures, size=args.size, seed=args.seed
        )
        render = RenderConfig(
            template=args.template,
            show_options=args.show_options,
            styles=tuple(args.styles.split(",")),
            balance_letters=not args.no_balance_letters,
            seed=args.seed,
        )
        base_model = None
        if "self-explained" in render.styles:
            from iftscope.models.load import load_model

            probed = json.loads((args.probe / "summary.json").read_text()).get("model")
            if not (args.model or probed):
                raise ValueError("style 'self-explained' needs --model (the base model that writes them)")
            base_model = load_model(args.model or probed)
        tokenizer = None
        if render.template == "chat":
            from transformers import AutoTokenizer

            source = args.model or json.loads((args.probe / "summary.json").read_text()).get("model")
            if not source:
                raise ValueError("template 'chat' needs --model (whose chat template renders the examples)")
            tokenizer = AutoTokenizer.from_pretrained(source)
        summary = run_intervene(questions, records, args.out, cfg, render, base_model, tokenizer)
    except (DataValidationError, ValueError, FileNotFoundError, KeyError) as e:
        print(f"iftscope intervene: error: {e}", file=sys.stderr)
        return 2
    for name, g in summary["groups"].items():
        letters = " ".join(f"{k} {v}" for k, v in sorted(g["target_letters"].items())) or "(options hidden)"
        print(
            f"{name:>15}: {g['size']} items, targets {g['kinds']}, base confidence "
            f"{g['mean_base_confidence']:.2f}, letters {letters}"
        )
    print(f"wrote {args.out}/: groups.json, examples/<group>.jsonl, summary.json")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "intervene",
        help="build IFT groups (H, I, S, mixtures, ...) from a probe",
        description="From probe records, build groups of equal size that differ in one factor: "
        "H (known, gold targets), I (confidently wrong, gold targets: new knowledge), S (the items "
        "of I with the model's own answers: self-aligning), I/S mixtures, and on the micro-world "
        "unknown-gold (never-pretrained people) and counterfactual (known facts, false targets). "
        "Each group is rendered as SFT examples in every requested style. When options are shown, "
        "each example's options are reordered so every group teaches each letter equally often.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--probe", required=True, type=Path, help="a finished `iftscope probe` folder")
    p.add_argument("--data", nargs="+", type=Path, help="question files (default: those the probe read)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--size", type=int, help="items per group (default: the largest all groups allow)")
    p.add_argument("--confidence", type=float, default=0.5, help="I and S: wrong answer's probability above")
    p.add_argument("--mixtures", type=_floats, default=(0.5,), help="fractions r of I items with S targets")
    p.add_argument(
        "--template",
        default="plain",
        choices=["plain", "vicuna", "chat"],
        help="prompt template: plain (micro-world), vicuna v1.1 (the paper), chat (the model's own)",
    )
    p.add_argument("--show-options", action="store_true", help="list the options; answer 'C. text'")
    p.add_argument(
        "--styles",
        default="answer",
        help="comma-separated: answer, explained (the data's explanation), self-explained (written by "
        "the base model, seeded sampling)",
    )
    p.add_argument(
        "--model",
        help="base model for self-explained and the chat template (default: the model the probe read)",
    )
    p.add_argument("--no-balance-letters", action="store_true", help="keep option order (the paper)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)
