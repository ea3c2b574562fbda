"""Recipes: a study as YAML, loaded into typed, frozen configs, with `key=value` overrides.

Unknown keys are errors with a "did you mean" suggestion; values are checked against the field's
type; the resolved recipe is saved in the run folder, so a run says exactly what it did.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from iftscope.analyse.inference import parse_contrast
from iftscope.study.config import DataConfig, LaunchConfig, StudyConfig

__all__ = ["DataConfig", "LaunchConfig", "RecipeError", "StudyConfig", "build", "load_recipe", "to_dict"]


class RecipeError(ValueError):
    pass


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


SHIPPED = Path(__file__).resolve().parents[1] / "recipes"
# set per job from `seeds`; a recipe that sets them otherwise is refused rather than overwritten
JOB_SEEDS = ("intervene", "render", "train")


def shipped(recipe: str | Path | None) -> str | Path | None:
    """A recipe path, or a shipped recipe's name (`smoke`, `default`, `paper`, `paper-lora`, `automated`)."""
    if recipe is None or Path(recipe).exists():
        return recipe
    path = SHIPPED / f"{recipe}.yaml"
    return path if path.exists() else recipe


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise RecipeError(f"{path}: no such recipe")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of keys to values")
    return raw


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top` over `base`: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_recipe(path: str | Path | None, overrides: list[str] = ()) -> tuple[StudyConfig, dict[str, Any]]:
    """(config, raw mapping after overrides). A recipe is read on top of the shipped default.yaml;
    no path: the default micro-world study itself."""
    own = _read(Path(path)) if path is not None else {}
    own = apply_overrides(own, list(overrides))
    where = str(path) if path else "recipe"
    for block in JOB_SEEDS:
        seed = (own.get(block) or {}).get("seed", 0) if isinstance(own.get(block), dict) else 0
        if seed != 0:
            raise RecipeError(
                f"{where}: {block}.seed={seed!r} would be ignored: the study seeds every job's "
                f"{block} from `seeds` (e.g. seeds=[{seed}])"
            )
    raw = _merge(_read(SHIPPED / "default.yaml"), own)
    cfg = build(StudyConfig, raw, where)
    for i, text in enumerate((cfg.contrasts.primary, *cfg.contrasts.secondary)):
        try:
            parse_contrast(text)
        except ValueError as e:
            key = "contrasts.primary" if i == 0 else f"contrasts.secondary[{i - 1}]"
            raise RecipeError(f"{where}: {key}: {e}") from e
    return cfg, raw


def to_dict(cfg: Any) -> Any:
    """The resolved recipe, YAML-ready (tuples as lists)."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, tuple | list):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg
