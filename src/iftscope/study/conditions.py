"""Optional study conditions (`conditions: [self-instruct, proxy]`): two automated methods that Ren
et al.'s finding claims to explain, run as rows of the same study (docs/concepts.md).

- `self-instruct`: one more IFT group, written by the base model itself (intervene.selfinstruct),
  trained and evaluated like every other group.
- `proxy`: proxy-tuning (models.proxy). A larger base M (the micro-world's `world.large`, by default
  the base model with twice its width: about 4x the parameters; on real data `proxy.model`) is
  read untuned (`eval/large-base`, as the probe reads the base), steered at decoding time by the
  small model tuned on `proxy.group` (group `proxy-<group>`), and tuned directly on the same group
  with the same budget (`large-<group>`); the small model tuned on it is the group's own row.

Each condition is an entry of `CONDITIONS`: the groups it adds to the intervene stage, the world it
needs, and the jobs it runs after the study's own.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from iftscope.microworld.stage import WorldStageConfig
from iftscope.study.config import StudyConfig


@dataclass(frozen=True)
class Condition:
    generated: tuple[str, ...] = ()  # groups the intervene stage adds (intervene.selfinstruct)
    large_world: bool = False  # the micro-world pretrains a second, larger base model
    rows: Callable[[StudyConfig], tuple[str, ...]] = lambda cfg: ()  # groups its own jobs report
    # "module:function" run after the study's jobs: (cfg, run, inputs, progress) -> (runs, seconds);
    # named, not imported, as those jobs need the study's inputs, which need this module
    after: str | None = None


CONDITIONS: dict[str, Condition] = {
    "self-instruct": Condition(generated=("self-instruct",)),
    "proxy": Condition(
        large_world=True,
        rows=lambda cfg: (f"proxy-{cfg.proxy.group}", f"large-{cfg.proxy.group}"),
        after="iftscope.study.proxyjobs:run_proxy",
    ),
}


def active(cfg: StudyConfig) -> list[Condition]:
    return [CONDITIONS[name] for name in cfg.conditions if name in CONDITIONS]


def intervene_config(cfg: StudyConfig, seed: int):
    """The intervene stage's config for one seed, with the generated groups the conditions add;
    `generated_questions: auto` resolved by what the study knows: written on real data, pool on
    the micro-world."""
    generated = tuple(g for c in active(cfg) for g in c.generated)
    source = cfg.intervene.generated_questions
    if source == "auto":
        source = "pool" if cfg.data.model is None else "written"
    return replace(
        cfg.intervene, seed=seed, generated=cfg.intervene.generated + generated, generated_questions=source
    )


def larger(model):
    """The default large base: the same depth, twice the width (hidden, MLP): about 4x the
    parameters of the transformer layers."""
    return replace(model, hidden=2 * model.hidden, mlp=2 * model.mlp)


def world_config(cfg: StudyConfig) -> WorldStageConfig:
    """The world the study builds: with a condition that needs it, a large base too."""
    if cfg.world.large is None and any(c.large_world for c in active(cfg)):
        return replace(cfg.world, large=larger(cfg.world.model))
    return cfg.world


def condition_groups(cfg: StudyConfig) -> set[str]:
    """Every group name a recipe may list because of its conditions (any condition's, if off)."""
    return {g for c in CONDITIONS.values() for g in (*c.generated, *c.rows(cfg))}


def run_after(cfg: StudyConfig, run, inputs, progress: bool = True) -> tuple[list[dict[str, Any]], dict]:
    """The conditions' own jobs, after the study's: (run dicts as run_jobs gives them, seconds)."""
    runs: list[dict[str, Any]] = []
    seconds = {"train": 0.0, "evaluate": 0.0}
    for c in active(cfg):
        if c.after:
            module, name = c.after.split(":")
            more, secs = getattr(importlib.import_module(module), name)(cfg, run, inputs, progress)
            runs += more
            seconds = {k: seconds[k] + secs[k] for k in seconds}
    return runs, seconds


def problems(cfg: StudyConfig, say) -> None:
    """The conditions' values: known names, alpha, the proxy's models and guide group."""
    from iftscope.intervene.selfinstruct import ANSWERS, GENERATED

    for name in cfg.conditions:
        _need(name in CONDITIONS, say, f"conditions: unknown {name!r} (known: {', '.join(CONDITIONS)})")
    for name in cfg.intervene.generated:
        _need(
            name in GENERATED, say, f"intervene.generated: unknown {name!r} (known: {', '.join(GENERATED)})"
        )
    answers = cfg.intervene.generated_answers
    _need(
        answers in ANSWERS, say, f"intervene.generated_answers: {answers!r} (allowed: {', '.join(ANSWERS)})"
    )
    _written_problems(cfg, say)
    if "proxy" not in cfg.conditions:
        return
    p = cfg.proxy
    _need(math.isfinite(p.alpha), say, f"proxy.alpha: {p.alpha} (must be a finite number)")
    _need(not cfg.launch.distributed, say, "proxy: runs in one process (launch.processes 1, no config_file)")
    trained = p.group not in cfg.skip_groups and (not cfg.groups or p.group in cfg.groups)
    _need(trained, say, f"proxy.group: {p.group!r} is not among the study's groups (m is tuned on it)")
    if cfg.data.model is None:
        _need(
            p.model is None,
            say,
            "proxy.model: on the micro-world M is the world's large model (leave it null)",
        )
    else:
        _need(p.model is not None, say, "proxy.model: the larger base model M (same tokenizer as data.model)")
        if p.model is not None and p.model.startswith((".", "/", "~")):
            _need(Path(p.model).is_dir(), say, f"proxy.model: {p.model}: no such folder")


def _written_problems(cfg: StudyConfig, say) -> None:
    """Self-instruct's written questions: a known source, positive budgets, real data only."""
    from iftscope.intervene.selfinstruct import QUESTIONS

    iv = cfg.intervene
    source = iv.generated_questions
    allowed = ", ".join(QUESTIONS)
    _need(source in QUESTIONS, say, f"intervene.generated_questions: {source!r} (allowed: {allowed})")
    _need(
        not (source == "written" and cfg.data.model is None),
        say,
        "intervene.generated_questions: written needs real data (data.model); the micro-world's tiny "
        "model has read only biographies and cannot write questions (use pool or auto)",
    )
    for key in ("generated_demos", "generated_attempts", "generated_tokens"):
        _need(getattr(iv, key) >= 1, say, f"intervene.{key}: {getattr(iv, key)} (must be at least 1)")
    temp = iv.generated_temperature
    _need(temp > 0 and math.isfinite(temp), say, f"intervene.generated_temperature: {temp} (must be > 0)")


def _need(ok: bool, say, message: str) -> None:
    if not ok:
        say(message)
