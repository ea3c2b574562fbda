"""`iftscope train`: supervised fine-tuning of a base model on one group's SFT examples."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from iftscope.data import DataValidationError, load_questions
    from iftscope.evaluate.qa import qa_evaluator
    from iftscope.intervene.stage import read_examples
    from iftscope.models.load import load_model
    from iftscope.train.sft import SFTConfig, train_sft

    try:
        examples = read_examples(args.examples, args.style)
        if not examples:
            raise ValueError(f"{args.examples}: no examples of style {args.style!r}")
        cfg = replace(
            SFTConfig(),
            steps=args.steps,
            epochs=args.epochs,
            batch_size=args.batch_size,
            micro_batch_size=args.micro_batch_size,
            schedule=args.schedule,
            warmup_ratio=args.warmup_ratio,
            lr=args.lr,
            lora=not args.full,
            lora_r=args.lora_r,
            lora_alpha=args.lora_alpha,
            seed=args.seed,
            checkpoint_every=args.checkpoint_every,
        )
        model, tokenizer = load_model(args.base, dtype="float32", device="cpu")  # accelerate places it
        evaluate = None
        if args.eval_data:
            evaluate = qa_evaluator([q for p in args.eval_data for q in load_questions(p)], tokenizer)
    except (DataValidationError, ValueError, FileNotFoundError, OSError) as e:
        print(f"iftscope train: error: {e}", file=sys.stderr)
        return 2
    summary = train_sft(
        model,
        tokenizer,
        examples,
        args.out,
        cfg,
        not args.quiet,
        evaluate,
        args.eval_every if evaluate else 0,
    )
    last = summary["log"][-1]
    extra = f", held-out QA accuracy {last['qa_accuracy']:.3f}" if "qa_accuracy" in last else ""
    print(
        f"trained {summary['config']['steps']} steps on {summary['examples']} examples "
        f"({'LoRA' if cfg.lora else 'full'}, "
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
        "same budget (steps x batch). Checkpoints every --checkpoint-every steps; a rerun resumes. "
        "Several processes or GPUs: `accelerate launch -m iftscope.cli train ...` (DDP, FSDP or "
        "DeepSpeed, as configured by `accelerate config`).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--examples", required=True, type=Path, help="SFT examples (JSONL from `iftscope intervene`)"
    )
    p.add_argument("--base", required=True, help="base model folder or hub id")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--style", default="answer", help="which style's examples to train on")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--epochs", type=float, default=0.0, help="> 0: steps = ceil(epochs x examples / batch)")
    p.add_argument("--batch-size", type=int, default=32, help="global batch")
    p.add_argument(
        "--micro-batch-size", type=int, default=0, help="> 0: accumulate gradients over slices of this size"
    )
    p.add_argument("--schedule", default="linear", choices=["linear", "cosine"], help="decay after warmup")
    p.add_argument("--warmup-ratio", type=float, default=0.0, help="> 0: warmup steps as a fraction")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--eval-data", nargs="+", type=Path, help="held-out questions: QA accuracy in the log")
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)
