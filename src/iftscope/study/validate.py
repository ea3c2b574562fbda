"""Check a whole recipe before any work starts, and list every problem at once.

Types and unknown keys are caught when the recipe is read (study.recipe); this checks values:
ranges, names (formats, styles, templates, groups), files (data files that load, a model folder that
holds a config, safetensors weights and a tokenizer, or a name that looks like a hub id) and
combinations (a k-shot format needs demonstrations, a chat template needs a tokenizer that has one,
sharded training is refused until the trainer supports it). `iftscope run --check RECIPE` runs only
this.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from iftscope.study.config import StudyConfig

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
FIXED_GROUPS = ("H", "I", "S", "I-context", "unknown-gold", "counterfactual")


def check_recipe(cfg: StudyConfig, where: str = "recipe") -> None:
    """Raise RecipeError listing every problem, or return when the recipe can run."""
    from iftscope.study.recipe import RecipeError

    found = problems(cfg)
    if found:
        lines = "\n".join(f"  - {p}" for p in found)
        raise RecipeError(f"{where}: {len(found)} problem(s), nothing was run:\n{lines}")


def problems(cfg: StudyConfig) -> list[str]:
    """Every problem with the recipe's values, as `key: what is wrong (what is allowed)`."""
    out: list[str] = []
    from iftscope.study.conditions import problems as condition_problems

    checks = (_study, _train, _intervene, _render, _probe, _data, _chat, _launch, _scale, condition_problems)
    for check in checks:
        check(cfg, out.append)
    return out


def _need(ok: bool, say: Callable[[str], None], message: str) -> None:
    if not ok:
        say(message)


def _study(cfg: StudyConfig, say) -> None:
    _need(len(cfg.seeds) > 0, say, "seeds: empty (list at least one training seed, e.g. [0, 1, 2])")
    _need(len(set(cfg.seeds)) == len(cfg.seeds), say, f"seeds: {list(cfg.seeds)} repeats a seed")
    from iftscope.models import DTYPE_NAMES as DTYPES

    _need(cfg.dtype in DTYPES, say, f"dtype: {cfg.dtype!r} (allowed: {', '.join(DTYPES)})")
    for key in ("workers", "adapters_per_pass", "generation_questions", "curve_questions", "curve_points"):
        _need(getattr(cfg, key) >= 0, say, f"{key}: {getattr(cfg, key)} (must be >= 0)")
    _need(cfg.eval_batch_size >= 1, say, f"eval_batch_size: {cfg.eval_batch_size} (must be >= 1)")
    _need(cfg.launch.processes >= 1, say, f"launch.processes: {cfg.launch.processes} (must be >= 1)")
    from iftscope.study.conditions import condition_groups

    known = set(FIXED_GROUPS) | {f"mix-{r:g}" for r in cfg.intervene.mixtures} | condition_groups(cfg)
    known |= {"I-augmented"} if cfg.intervene.augment > 1 else set()
    known |= {f"cat-{c}" for c in cfg.intervene.categories}
    for key in ("groups", "skip_groups"):
        for g in getattr(cfg, key):
            _need(g in known, say, f"{key}: unknown group {g!r} (groups: {', '.join(sorted(known))})")


def _train(cfg: StudyConfig, say) -> None:
    t = cfg.train
    _need(t.lr > 0, say, f"train.lr: {t.lr} (must be > 0)")
    _need(t.steps >= 1 or t.epochs > 0, say, f"train.steps: {t.steps} (must be >= 1, or train.epochs > 0)")
    _need(t.epochs >= 0, say, f"train.epochs: {t.epochs} (must be >= 0)")
    _need(t.batch_size >= 1, say, f"train.batch_size: {t.batch_size} (must be >= 1)")
    micro = t.micro_batch_size
    _need(micro >= 0, say, f"train.micro_batch_size: {micro} (must be >= 0; 0 = no accumulation)")
    if micro > 0 and t.batch_size >= 1:
        _need(
            t.batch_size % micro == 0,
            say,
            f"train.micro_batch_size: {micro} does not divide batch_size {t.batch_size}",
        )
    _need(t.warmup >= 0, say, f"train.warmup: {t.warmup} (must be >= 0)")
    shared = cfg.adapters_per_pass > 0 and t.lora and not cfg.launch.distributed
    _need(
        not (shared and t.lora_dropout), say,
        f"train.lora_dropout: {t.lora_dropout} with adapters_per_pass {cfg.adapters_per_pass} (must be 0: "
        "the adapters of one pass share one random stream; or adapters_per_pass: 0)",
    )  # fmt: skip
    _need(
        not (shared and cfg.dtype == "float16"), say,
        "dtype: float16 with adapters_per_pass > 0 (needs loss scaling: bfloat16 or float32)",
    )  # fmt: skip
    _need(0 <= t.warmup_ratio < 1, say, f"train.warmup_ratio: {t.warmup_ratio} (must be in [0, 1))")
    _need(
        t.schedule in ("linear", "cosine"), say, f"train.schedule: {t.schedule!r} (allowed: linear, cosine)"
    )
    _need(not t.lora or t.lora_r >= 1, say, f"train.lora_r: {t.lora_r} (must be >= 1)")
    _need(t.max_length >= 1, say, f"train.max_length: {t.max_length} (must be >= 1)")
    _need(t.checkpoint_every >= 0, say, f"train.checkpoint_every: {t.checkpoint_every} (must be >= 0)")


def _intervene(cfg: StudyConfig, say) -> None:
    iv = cfg.intervene
    _need(0 <= iv.confidence < 1, say, f"intervene.confidence: {iv.confidence} (must be in [0, 1))")
    for i, r in enumerate(iv.mixtures):
        _need(0 <= r <= 1, say, f"intervene.mixtures[{i}]: {r} (must be in [0, 1])")
    _need(iv.size is None or iv.size >= 1, say, f"intervene.size: {iv.size} (must be >= 1, or null)")
    n, temp = iv.explanation_tokens, iv.explanation_temperature
    _need(n >= 1, say, f"intervene.explanation_tokens: {n} (must be >= 1)")
    _need(temp > 0, say, f"intervene.explanation_temperature: {temp} (must be > 0)")
    from iftscope.intervene.groups import RULES
    from iftscope.probe.knowledge import CONFIDENCE_CATEGORIES

    _need(iv.rule in RULES, say, f"intervene.rule: {iv.rule!r} (allowed: {', '.join(RULES)})")
    _need(iv.match_bins >= 1, say, f"intervene.match_bins: {iv.match_bins} (must be >= 1)")
    for i, c in enumerate(iv.categories):
        allowed = ", ".join(CONFIDENCE_CATEGORIES)
        _need(c in CONFIDENCE_CATEGORIES, say, f"intervene.categories[{i}]: {c!r} (allowed: {allowed})")


def _render(cfg: StudyConfig, say) -> None:
    from iftscope.intervene.render import STYLES, TEMPLATES

    r = cfg.render
    _need(r.template in TEMPLATES, say, f"render.template: {r.template!r} (allowed: {', '.join(TEMPLATES)})")
    _need(len(r.styles) > 0, say, "render.styles: empty (list at least one, e.g. [answer])")
    for i, s in enumerate(r.styles):
        _need(s in STYLES, say, f"render.styles[{i}]: {s!r} (allowed: {', '.join(STYLES)})")


def _probe(cfg: StudyConfig, say) -> None:
    from iftscope.probe.formats import FORMATS, TRAINED_ALIAS
    from iftscope.probe.knowledge import DEMO_CHOICES, KNOWN_RULES

    p, names = cfg.probe, ", ".join(FORMATS)
    _need(p.format in FORMATS, say, f"probe.format: {p.format!r} (allowed: {names})")
    _need(
        cfg.eval_format in FORMATS or cfg.eval_format == TRAINED_ALIAS,
        say,
        f"eval_format: {cfg.eval_format!r} (allowed: {TRAINED_ALIAS} (as trained), {names})",
    )
    if p.format in FORMATS and FORMATS[p.format].zero_shot_only:
        _need(
            p.shots == 0,
            say,
            f"probe.shots: {p.shots} (format {p.format} scores statements zero-shot: use 0)",
        )
    _need(p.shots >= 0, say, f"probe.shots: {p.shots} (must be >= 0)")
    _need(p.demos in DEMO_CHOICES, say, f"probe.demos: {p.demos!r} (allowed: {', '.join(DEMO_CHOICES)})")
    _need(
        p.known_rule in KNOWN_RULES,
        say,
        f"probe.known_rule: {p.known_rule!r} (allowed: {', '.join(KNOWN_RULES)})",
    )
    _need(0 < p.known_threshold <= 1, say, f"probe.known_threshold: {p.known_threshold} (must be in (0, 1])")
    _need(
        p.normalise in ("sum", "char", "token"),
        say,
        f"probe.normalise: {p.normalise!r} (allowed: sum, char, token)",
    )
    for key in ("demo_sets", "permutations", "batch_questions"):
        _need(getattr(p, key) >= 1, say, f"probe.{key}: {getattr(p, key)} (must be >= 1)")
    _lm_eval(cfg, say)


def _lm_eval(cfg: StudyConfig, say) -> None:
    """probe.backend lm-eval: lm-eval installed (else the extra named), settings it can reproduce."""
    from iftscope.probe.knowledge import BACKENDS
    from iftscope.probe.lmeval_run import (
        ADAPTER_ARGS,
        MODEL_KEYS,
        MissingExtra,
        parse_model_args,
        require_lm_eval,
    )

    p = cfg.probe
    _need(p.backend in BACKENDS, say, f"probe.backend: {p.backend!r} (allowed: {', '.join(BACKENDS)})")
    if p.backend != "lm-eval":
        return
    _need(p.normalise != "token", say, "probe.normalise: token cannot go through lm-eval (use sum or char)")
    _need(
        p.lm_eval_model in ADAPTER_ARGS or not cfg.train.lora, say,
        f"probe.lm_eval_model: {p.lm_eval_model!r} cannot score the LoRA jobs' adapters (model types "
        f"that can: {', '.join(ADAPTER_ARGS)}; or train.lora: false)",
    )  # fmt: skip
    try:
        require_lm_eval()
        named = sorted(set(parse_model_args(p.lm_eval_args)) & set(MODEL_KEYS))
        _need(
            not named, say, f"probe.lm_eval_args: {', '.join(named)} (the study names each model it scores)"
        )
    except (MissingExtra, ValueError) as e:
        say(str(e))


def _data(cfg: StudyConfig, say) -> None:
    d = cfg.data
    if d.model is None:
        return
    _model(d.model, say)
    _need(len(d.ift) > 0, say, "data.ift: empty (the question files the groups are drawn from)")
    _need(len(d.tests) > 0, say, "data.tests: empty (name -> question file, e.g. {HOMO: test.jsonl})")
    files = [(f"data.ift[{i}]", p) for i, p in enumerate(d.ift)] + [
        (f"data.pool[{i}]", p) for i, p in enumerate(d.pool)
    ]
    files += [(f"data.tests.{name}", p) for name, p in d.tests.items()]
    for key, path in files:
        _questions(key, path, say)


def _model(name: str, say) -> None:
    """A local folder with a config, safetensors weights and a tokenizer, or a hub id."""
    path = Path(name)
    if not path.exists():
        looks_local = name.startswith((".", "/", "~")) or name.count("/") != 1 or not HUB_ID.match(name)
        _need(not looks_local, say, f"data.model: {name}: no such folder, and not a hub id (owner/name)")
        return
    if not path.is_dir():
        say(f"data.model: {name}: not a folder")
        return
    has = {p.name for p in path.iterdir()}
    _need("config.json" in has, say, f"data.model: {name}: no config.json")
    _need(
        any(n.endswith(".safetensors") for n in has),
        say,
        f"data.model: {name}: no *.safetensors weights (only safetensors are loaded)",
    )
    tokenizer = {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json"}
    _need(
        bool(has & tokenizer), say, f"data.model: {name}: no tokenizer files ({', '.join(sorted(tokenizer))})"
    )


def _questions(key: str, path: str, say) -> None:
    """The file exists and passes `iftscope data check`'s validation."""
    from iftscope.data.check import check_files

    if not Path(path).exists():
        where = "" if Path(path).is_absolute() else f" (relative paths are read from {Path.cwd()})"
        say(f"{key}: {path}: no such file{where}")
        return
    try:
        report = check_files([path])
    except (ValueError, OSError) as e:
        say(f"{key}: {path}: {e}")
        return
    for f in report.files:
        for problem in f.errors[:3]:
            say(f"{key}: {problem}")


def _chat_keys(cfg: StudyConfig) -> list[str]:
    """The recipe's keys that render prompts with the model's own chat template."""
    from iftscope.probe.formats import FORMATS

    keys = ["render.template"] if cfg.render.template == "chat" else []
    names = (("probe.format", cfg.probe.format), ("eval_format", _tuned_format(cfg)))
    for key, name in names:
        fmt = FORMATS.get(name)
        if fmt is not None and fmt.uses_chat_template:
            keys.append(key)
    return keys


def _tuned_format(cfg: StudyConfig) -> str | None:
    """The format tuned models are read in (eval_format `trained` resolved), None if unknown."""
    try:
        return cfg.tuned_format
    except (KeyError, ValueError):
        return None  # an unknown template: reported by _render


def _chat(cfg: StudyConfig, say) -> None:
    """A chat template needs a tokenizer that has one: the micro-world's word-level tokenizer has
    none, nor do base models such as Llama-2-7b-hf. Loading a tokenizer is cheap, so this is
    checked here rather than after the probe and the world have run."""
    keys = _chat_keys(cfg)
    if not keys:
        return
    advice = "has no chat template (use render.template plain or vicuna, probe formats paper or mmlu)"
    model = cfg.data.model
    if model is None:
        say(f"{', '.join(keys)}: chat: the micro-world's word-level tokenizer {advice}")
        return
    if not Path(model).is_dir() and not HUB_ID.match(model):
        return  # data.model is reported by _model
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model)
    except Exception as e:  # noqa: BLE001 - any failure to load is reported with its message
        say(f"{', '.join(keys)}: chat: cannot load the tokenizer of {model} to read its chat template: {e}")
        return
    _need(
        bool(getattr(tokenizer, "chat_template", None)),
        say,
        f"{', '.join(keys)}: chat: {model}'s tokenizer {advice}",
    )


def _launch(cfg: StudyConfig, say) -> None:
    """`launch.config_file` exists, is an accelerate config, and asks for DDP (or one process):
    sharded training (FSDP, DeepSpeed) is refused until the trainer supports it."""
    path = cfg.launch.config_file
    if path is None:
        return
    if not Path(path).is_file():
        say(f"launch.config_file: {path}: no such file (`accelerate config --config_file FILE` writes one)")
        return
    from accelerate.commands.config.config_args import load_config_from_file

    from iftscope.train.distributed import check_distributed_type

    try:
        kind = load_config_from_file(path).distributed_type
        kind = "NO" if kind is False else kind  # YAML 1.1 reads an unquoted NO as false
    except Exception as e:  # noqa: BLE001 - YAML/JSON errors and unknown values alike
        say(f"launch.config_file: {path}: not an accelerate config: {' '.join(str(e).split())}")
        return
    try:  # the trainer's own rule (FSDP and DeepSpeed refused), before any process starts
        check_distributed_type(kind)
    except ValueError as e:
        say(f"launch.config_file: {path}: {e}; where a full fine-tuning does not fit one GPU: paper-lora")


def _scale(cfg: StudyConfig, say) -> None:
    """The scale-out keys (parquet, report_to, executor): known values, sane resources, and the
    optional extra each needs installed (iftscope.extras names it)."""
    from iftscope.extras import missing
    from iftscope.study.slurm import executor_problems
    from iftscope.study.trackers import TRACKERS

    if cfg.parquet and missing("parquet"):
        say(f"parquet: true: {missing('parquet')}")
    for i, name in enumerate(cfg.report_to):
        if name not in TRACKERS:
            say(f"report_to[{i}]: {name!r} (allowed: {', '.join(TRACKERS)})")
        elif missing(name):
            say(f"report_to[{i}]: {name}: {missing(name)}")
    _need(len(set(cfg.report_to)) == len(cfg.report_to), say, f"report_to: {list(cfg.report_to)} repeats one")
    for problem in executor_problems(cfg):
        say(problem)
