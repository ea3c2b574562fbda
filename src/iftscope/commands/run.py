"""`iftscope run`: the whole study from a recipe, into one run folder, with a report."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from iftscope.study.recipe import load_recipe, shipped
    from iftscope.study.validate import check_recipe

    recipe, overrides = args.recipe, list(args.overrides)
    if recipe is not None and "=" in recipe and not Path(recipe).exists():
        overrides.insert(0, recipe)  # `iftscope run train.steps=100`: no recipe, only overrides
        recipe = None
    cfg, _ = load_recipe(shipped(recipe), overrides)
    check_recipe(cfg, str(recipe or "recipe"))  # every problem at once, before any work
    if args.check:
        styles = ", ".join(cfg.render.styles)
        print(f"recipe {recipe or 'default'}: OK ({len(cfg.seeds)} seed(s), styles {styles})")
        return 0
    from iftscope.study.runner import Study  # the stages' libraries load after the recipe is checked

    out = args.out or Path("runs") / cfg.name
    result = Study(cfg, out, progress=not args.quiet).run()
    from iftscope.report.render import write_report  # matplotlib: only once there is a report to draw

    paths = write_report(out)
    print(result["verdict"])
    print(f"stage times (s): {result['stage_seconds']}")
    print(f"report: {paths['html']}  summary: {paths['markdown']}  data: {out / 'analysis' / 'summary.json'}")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run the whole study from a recipe (default: the micro-world study) and write a report",
        description="World (or your model and data), probe, IFT groups (H, I, S, mixtures, I-context, "
        "unknown-gold, counterfactual) x styles x seeds, training with the same budget, evaluation on "
        "every test set, analysis with CIs and paired tests, and one HTML report. Every stage is "
        "skipped when its output exists: a killed run completes when rerun. Examples:\n"
        "  iftscope run                # the default micro-world study\n"
        "  iftscope run smoke          # a shipped recipe (smoke, default, paper, paper-lora, automated)\n"
        "  iftscope run my.yaml train.steps=200 seeds=[0,1]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "recipe", nargs="?", help="YAML recipe or shipped recipe name (default: the micro-world study)"
    )
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.steps=200")
    p.add_argument("--out", type=Path, help="run folder (default: runs/<recipe name>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--check", action="store_true", help="only check the recipe (values, names, files) and exit"
    )
    p.set_defaults(func=run)
