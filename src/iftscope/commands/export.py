"""`iftscope export lm-eval`: a study's question sets (or your files), in the probe's exact prompts,
as an lm-evaluation-harness task folder that any lm-eval backend can score (docs/lm-eval.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from iftscope.commands.flags import HelpFormatter, add_config_flags, config_from_flags
from iftscope.probe.knowledge import DEMO_CHOICES, KNOWN_RULES, ProbeConfig

PROBE_FLAGS = ("format", "shots", "demo_sets", "demos", "permutations", "normalise", "known_rule",
               "known_threshold", "temperature", "weak_threshold", "seed")  # fmt: skip


def _study_sets(run_dir: Path, tuned: bool):
    """(sets, pool, probe config, provenance) of a run folder: the IFT questions and every test set."""
    from iftscope.data import load_questions
    from iftscope.runfolder import RunFolder
    from iftscope.study.recipe import load_recipe

    run = RunFolder(run_dir)
    cfg, _ = load_recipe(run.recipe)
    if cfg.data.model is None:
        ift, model = load_questions(run.world_questions), str(run.world_model)
    else:
        ift, model = [q for p in cfg.data.ift for q in load_questions(p)], cfg.data.model
    tests = sorted(run.tests.glob("*.jsonl")) if run.tests.exists() else []
    sets = {"ift": ift, **{p.stem: load_questions(p) for p in tests}}
    pool = [q for p in cfg.data.pool for q in load_questions(p)] or ift
    probe = ProbeConfig(format=cfg.tuned_format, shots=0, seed=cfg.probe.seed) if tuned else cfg.probe
    return sets, pool, probe, {"run": str(run.root.resolve()), "study": cfg.name, "base_model": model}


def _file_sets(paths: list[Path]):
    from iftscope.data import load_questions

    sets = {}
    for p in paths:
        name, k = p.stem, 2
        while name in sets:
            name, k = f"{p.stem}-{k}", k + 1
        sets[name] = load_questions(p)
    return sets, {"data": [str(p) for p in paths]}


def export_lm_eval(args: argparse.Namespace) -> int:
    from iftscope.data import load_questions
    from iftscope.probe.formats import get_format
    from iftscope.probe.lmeval_io import export_tasks

    if len(args.source) == 1 and (args.source[0] / "recipe.yaml").exists():
        sets, pool, base, info = _study_sets(args.source[0], args.tuned)
        model = info["base_model"]
    else:
        sets, info = _file_sets(args.source)
        pool, model = [], args.tokenizer
        fmt_name = getattr(args, "format", ProbeConfig().format)
        base = ProbeConfig(format=fmt_name, shots=0 if get_format(fmt_name).zero_shot_only else 5)
    cfg = config_from_flags(ProbeConfig, args, base=base)
    pool = [q for p in args.pool for q in load_questions(p)] if args.pool else pool
    fmt = get_format(cfg.format)
    if fmt.uses_chat_template:
        from transformers import AutoTokenizer

        if not (args.tokenizer or model):
            raise ValueError(f"format {fmt.id} renders with a chat template: give --tokenizer MODEL_DIR")
        fmt = fmt.with_tokenizer(AutoTokenizer.from_pretrained(args.tokenizer or model))
    out = export_tasks(args.out, sets, pool, fmt, cfg, prefix=args.prefix, extra=info)
    for name, task in out["tasks"].items():
        print(f"{task}: {out['questions'][name]} questions, {out['documents'][name]} documents (views)")
    print(f"wrote {args.out}/ (group {out['group']}); score it with:")
    print(
        f"  lm_eval --model hf --model_args pretrained={model or 'MODEL'} --include_path {args.out} "
        f"--tasks {out['group']} --log_samples --output_path OUT"
    )
    print("then: iftscope import lm-eval OUT --out PROBE_DIR")
    return 0


def register(sub) -> None:
    e = sub.add_parser("export", help="question sets for other tools (lm-evaluation-harness)")
    esub = e.add_subparsers(dest="data_command", required=True)
    p = esub.add_parser(
        "lm-eval",
        help="question sets as an lm-evaluation-harness task folder, in the probe's exact prompts",
        description="Write an lm-evaluation-harness task folder: per question set a multiple_choice "
        "task whose documents are the probe's views (demonstration set x option rotation, or "
        "statement), each with its fully rendered prompt and the exact continuations the probe "
        "scores, and a group over the sets. `lm_eval --include_path DIR --tasks GROUP "
        "--log_samples` then scores what `iftscope probe` scores, with any lm-eval backend (hf, vllm "
        "...); `iftscope import lm-eval` reads its samples back. SOURCE is a run folder (its IFT "
        "questions and test sets, with the recipe's probe settings) or question files.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("source", nargs="+", type=Path, help="a run folder, or question files (one task each)")
    p.add_argument("--out", required=True, type=Path, help="the task folder to write (replaced)")
    p.add_argument(
        "--pool", nargs="+", type=Path, help="demonstration pool (default: the run's, or each file itself)"
    )
    p.add_argument("--tokenizer", help="model folder whose chat template renders (chat formats only)")
    p.add_argument("--prefix", default="iftscope", help="task names: PREFIX_<set>, group PREFIX_all")
    p.add_argument(
        "--tuned",
        action="store_true",
        help="run folder: as tuned models are read (its eval format, zero-shot)",
    )
    g = p.add_argument_group("probe settings (default: the run's recipe, else the probe's defaults)")
    choices = {
        "format": _formats(),
        "demos": DEMO_CHOICES,
        "known_rule": KNOWN_RULES,
        "normalise": ("sum", "char"),
    }
    add_config_flags(g, ProbeConfig, only=PROBE_FLAGS, choices=choices)
    for action in g._group_actions:  # unset flags take the run's recipe (or the format's) values
        action.default = argparse.SUPPRESS
    p.set_defaults(func=export_lm_eval)


def _formats():
    from iftscope.probe.formats import FORMATS

    return FORMATS
