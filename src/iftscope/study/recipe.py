"""Recipes: a study as YAML, loaded into typed, frozen configs, with `key=value` overrides.

Unknown keys are errors with a "did you mean" suggestion; values are checked against the field's
type; the resolved recipe is saved in the run folder, so a run says exactly what it did.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from iftscope.intervene.groups import InterveneConfig
from iftscope.intervene.render import RenderConfig
from iftscope.microworld.stage import WorldStageConfig
from iftscope.probe.knowledge import ProbeConfig
from iftscope.study.launch import LaunchConfig
from iftscope.train.sft import SFTConfig


class RecipeError(ValueError):
    pass


@dataclass(frozen=True)
class DataConfig:
    """Real data instead of the micro-world: a base model and question files (paper JSONL, CSV...)."""

    model: str | None = None  # None: the micro-world's own base model
    ift: tuple[str, ...] = ()  # questions the groups are drawn from
    pool: tuple[str, ...] = ()  # demonstrations for letter formats (default: the IFT questions)
    tests: dict[str, str] = field(default_factory=dict)  # test-set name -> file (HOMO, ID, OOD ...)


@dataclass(frozen=True)
class StudyConfig:
    name: str = "default"
    seeds: tuple[int, ...] = (0, 1, 2)  # training seeds (group sampling, LoRA init, batch order)
    groups: tuple[str, ...] = ()  # () = every group the data allows, less skip_groups
    skip_groups: tuple[str, ...] = ("I-context",)  # the default study's time budget leaves it out
    world: WorldStageConfig = field(default_factory=WorldStageConfig)
    data: DataConfig = field(default_factory=DataConfig)
    probe: ProbeConfig = field(default_factory=lambda: ProbeConfig(format="cloze", shots=0))
    intervene: InterveneConfig = field(default_factory=lambda: InterveneConfig(mixtures=(0.25, 0.75)))
    render: RenderConfig = field(default_factory=lambda: RenderConfig(styles=("answer", "explained")))
    train: SFTConfig = field(default_factory=lambda: SFTConfig(steps=300, checkpoint_every=0))
    eval_format: str = "qa"  # how tuned models are read ("qa" = the plain template's question)
    workers: int = 0  # parallel train+eval processes; 0 = auto (1 on GPU or real data, else up to 4 CPUs)
    device: str = "auto"  # where the main process scores models: auto (a GPU if any), cpu, cuda:1 ...
    dtype: str = "float32"  # weights as loaded for scoring and training: float32, bfloat16, float16
    eval_batch_size: int = 256  # sequences per forward pass when scoring (lower it for 7B models)
    launch: LaunchConfig = field(default_factory=LaunchConfig)  # training on several GPUs/processes
    generation_questions: int = 64  # generation mode and token shift on this many main-set questions
    curve_questions: int = 100  # QA accuracy during training on this many main-set questions (0 = off)
    curve_points: int = 6  # ... at this many evenly spaced steps


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a mapping, got {value!r}")
        return build(hint, value, where)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except RecipeError:
                continue
        raise RecipeError(f"{where}: {value!r} is not a {hint}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            value = [value]
        inner = typing.get_args(hint)[0]
        return tuple(_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): str(v) for k, v in value.items()}
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and type(value) is hint:
        return value
    raise RecipeError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def build(cls: type, values: dict[str, Any], where: str = "recipe") -> Any:
    """A frozen config from a mapping: unknown keys refused with a suggestion, types checked."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(names)}"
            raise RecipeError(f"{where}: unknown key {key!r}{hint}")
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}")
    base = cls()
    merged = {f.name: getattr(base, f.name) for f in dataclasses.fields(cls)}
    for key, value in kwargs.items():
        current = merged[key]
        if dataclasses.is_dataclass(current) and isinstance(values[key], dict):
            value = dataclasses.replace(current, **{k: getattr(value, k) for k in values[key]})
        merged[key] = value
    return cls(**merged)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`train.steps=200` style overrides on the raw mapping; values parsed as YAML scalars/lists."""
    out = dict(raw)
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"override {item!r}: expected key=value, e.g. train.steps=200")
        key, text = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node[part] = dict(node.get(part) or {})
            node = node[part]
        node[parts[-1]] = yaml.safe_load(text)
    return out


def load_recipe(path: str | Path | None, overrides: list[str] = ()) -> tuple[StudyConfig, dict[str, Any]]:
    """(config, raw mapping after overrides). No path: the default micro-world study."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise RecipeError(f"{path}: no such recipe")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise RecipeError(f"{path}: not valid YAML: {e}") from e
        if not isinstance(raw, dict):
            raise RecipeError(f"{path}: a recipe is a mapping of keys to values")
    raw = apply_overrides(raw, list(overrides))
    where = str(path) if path else "recipe"
    return build(StudyConfig, raw, where), raw


def to_dict(cfg: Any) -> Any:
    """The resolved recipe, YAML-ready (tuples as lists)."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, tuple | list):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg
