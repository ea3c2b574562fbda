"""`iftscope world`: generate the micro-world and pretrain its tiny base model."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from iftscope.commands.flags import HelpFormatter, add_config_flags, config_from_flags

DEFAULT_WORLD = Path("runs/default/world")


def run(args: argparse.Namespace) -> int:
    from iftscope.microworld.generator import WorldConfig
    from iftscope.microworld.stage import WorldStageConfig, build_world

    base = WorldStageConfig()
    held_out = None if args.held_out_attribute in (None, "none") else args.held_out_attribute
    cfg = replace(
        base,
        world=config_from_flags(WorldConfig, args, base.world, held_out_attribute=held_out),
        pretrain=replace(base.pretrain, **{k: getattr(args, k) for k in _PRETRAIN}),
    )
    summary = build_world(args.out, cfg, force=args.force, progress=not args.quiet)
    mem, pre, counts = summary["memorisation"], summary["pretrain"], summary["counts"]
    state = "reused finished world" if summary["reused"] else "built world"
    print(
        f"{state} in {args.out} ({counts['people_known']} known + {counts['people_unknown']} unknown "
        f"people, {counts['questions']} questions)"
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


_PRETRAIN = ("steps", "batch_size", "seq_len")


def register(sub) -> None:
    from iftscope.microworld.generator import ATTRIBUTES, WorldConfig
    from iftscope.microworld.pretrain import PretrainConfig

    w = sub.add_parser(
        "world",
        help="generate the micro-world and pretrain its tiny base model",
        description="Generate fictional people (known ones are pretrained, unknown ones never shown), "
        "pretrain a ~1M-parameter Llama on the known people's biographies, and measure "
        "what it memorised. A finished world with the same settings is reused; an "
        "interrupted one resumes from its last checkpoint. The flags are the recipe's world.world.* "
        "and world.pretrain.* keys.",
        formatter_class=HelpFormatter,
    )
    w.add_argument("--out", type=Path, default=DEFAULT_WORLD, help="world folder")
    w.add_argument("--force", action="store_true", help="rebuild if --out holds another world")
    w.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_flags(
        w.add_argument_group("world (world.world.*)"),
        WorldConfig,
        choices={"held_out_attribute": [*ATTRIBUTES, "none"]},
    )
    add_config_flags(w.add_argument_group("pretraining (world.pretrain.*)"), PretrainConfig, only=_PRETRAIN)
    w.set_defaults(func=run)
