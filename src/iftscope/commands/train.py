"""`iftscope train`: supervised fine-tuning of a base model on one group's SFT examples."""

from __future__ import annotations

import argparse
from pathlib import Path

from iftscope.commands.flags import HelpFormatter, add_config_flags, add_dtype_flag, config_from_flags
from iftscope.train.config import SFTConfig


def run(args: argparse.Namespace) -> int:
    from iftscope.data import load_questions
    from iftscope.stages.model import ModelSpec
    from iftscope.stages.train import Curve, train_stage

    cfg = config_from_flags(SFTConfig, args)
    curve = None
    if args.eval_data:
        curve = Curve([q for p in args.eval_data for q in load_questions(p)], every=args.eval_every)
    summary = train_stage(
        ModelSpec(args.base, dtype=args.dtype, device="cpu"), args.examples, args.style, cfg, args.out,
        curve=curve, progress=not args.quiet,
    )  # fmt: skip
    last = summary["log"][-1]
    extra = f", held-out QA accuracy {last['qa_accuracy']:.3f}" if "qa_accuracy" in last else ""
    print(
        f"trained {summary['config']['steps']} steps on {summary['examples']} examples "
        f"({'LoRA' if summary['config']['lora'] else 'full'}, "
        f"{summary['trainable_parameters']:,} trainable parameters) in {summary['seconds']:.0f} s: "
        f"final loss {summary['final_loss']:.4f}{extra}"
    )
    print(f"wrote {args.out}/model (safetensors) and {args.out}/train.json")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="fine-tune a base model on SFT examples (LoRA or full)",
        description="Supervised fine-tuning with loss on the response tokens only. Every group gets the "
        "same budget (steps x batch). Checkpoints every --checkpoint-every steps; a rerun resumes, and "
        "a finished --out trained with other settings is refused. Several processes or GPUs: "
        "`accelerate launch -m iftscope.cli train ...` (DDP; FSDP and DeepSpeed are refused until "
        "supported). The training flags are the recipe's train.* keys.",
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--examples", required=True, type=Path, help="SFT examples (JSONL from `iftscope intervene`)"
    )
    p.add_argument("--base", required=True, help="base model folder or hub id")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--style", default="answer", help="which style's examples to train on")
    add_dtype_flag(p, "base weights as loaded (a full fine-tuning in half precision: autocast, saved in it)")
    p.add_argument("--eval-data", nargs="+", type=Path, help="held-out questions: QA accuracy in the log")
    p.add_argument("--eval-every", type=int, default=100, help="steps between QA evaluations")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    g = p.add_argument_group("training (the recipe's train.* keys)")
    add_config_flags(g, SFTConfig, choices={"schedule": ("linear", "cosine")})
    g.add_argument("--full", dest="lora", action="store_false", help="full fine-tuning (same as --no-lora)")
    p.set_defaults(func=run)
