"""Command-line flags generated from the config dataclasses, so `iftscope train --lr` and a recipe's
`train.lr` are one field with one default and one help text.

The help text is the comment written beside the field in its dataclass (as simple_parsing does):
the config is the single place a setting is described.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import io
import re
import tokenize
import types
import typing
from collections.abc import Iterable
from typing import Any


@functools.cache
def field_help(cls: type) -> dict[str, str]:
    """field name -> the comment on its line in the class body (or the line above it)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    trailing: dict[int, str] = {}  # comments after code on a line
    above: dict[int, str] = {}  # comment-only lines
    lines = source.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            n, text = tok.start[0], tok.string.lstrip("#").strip()
            (above if lines[n - 1].lstrip().startswith("#") else trailing)[n] = text
    out = {}
    for n, line in enumerate(lines, 1):
        m = re.match(r"\s+(\w+)\s*:", line)
        if m and not line.lstrip().startswith("#"):
            block, k = [], n - 1
            while k in above:  # a comment block right above the field
                block.insert(0, above[k])
                k -= 1
            text = trailing.get(n) or " ".join(block)
            if text:
                out.setdefault(m.group(1), text)
    return out


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default, except where there is none to show (None, False, required)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if (
            action.default is None
            or action.default is False
            or action.required
            or action.default is argparse.SUPPRESS
        ):
            return action.help or ""
        if isinstance(action, argparse._StoreFalseAction):
            return action.help or ""
        return super()._get_help_string(action)


def _scalar(hint: Any) -> tuple[Any, bool]:
    """(the argparse type, optional?) of a field's annotation."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], True
    return hint, False


def add_config_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    only: Iterable[str] | None = None,
    skip: Iterable[str] = (),
    choices: dict[str, Iterable[str]] | None = None,
    default: Any = None,
) -> None:
    """`--field-name` for every field of `cls` (or `only` those), typed, with the dataclass's
    default (or `default`'s values: a config instance) and the field's comment as help."""
    hints, helps = typing.get_type_hints(cls), field_help(cls)
    base = default if default is not None else cls()
    names = [f.name for f in dataclasses.fields(cls)]
    for name in names if only is None else list(only):
        if name in set(skip):
            continue
        hint, _ = _scalar(hints[name])
        value, flag = getattr(base, name), "--" + name.replace("_", "-")
        kw: dict[str, Any] = {"dest": name, "default": value, "help": helps.get(name, "")}
        if choices and name in choices:
            kw["choices"] = sorted(choices[name])
        if hint is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif typing.get_origin(hint) is tuple:
            inner = typing.get_args(hint)[0]
            parser.add_argument(flag, nargs="+", action=_Tuple, type=_list_of(inner), **kw)
        else:
            parser.add_argument(flag, type=hint, **kw)


def add_dtype_flag(parser: argparse.ArgumentParser, what: str = "weights as loaded") -> None:
    """`--dtype` with the recipe's `dtype` choices (models.DTYPE_NAMES), so a command and a recipe
    accept the same values and a typo is refused when the flags are parsed, not at loading."""
    from iftscope.models import DTYPE_NAMES as DTYPES

    parser.add_argument(
        "--dtype", default="float32", choices=list(DTYPES), help=f"{what} (the recipe's dtype key)"
    )


def add_device_flag(parser: argparse.ArgumentParser) -> None:
    """`--device`: where the model is scored, as the recipe's `device` key says it."""
    parser.add_argument(
        "--device",
        default="auto",
        help="cpu, cuda, cuda:1 ... (auto: a GPU if there is one; map: over every GPU, then the CPU, "
        "with accelerate's device_map=auto, for a model that does not fit one GPU)",
    )


def _list_of(inner: type):
    """`a,b c` -> [a, b, c] cast to `inner`: lists accept commas and spaces alike."""

    def parse(text: str) -> list[Any]:
        try:
            return [inner(x) for x in text.split(",") if x.strip()]
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"expected {inner.__name__} values, got {text!r}") from e

    parse.__name__ = f"{inner.__name__} list"
    return parse


class _Tuple(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, tuple(x for part in values for x in part))


def config_from_flags(cls: type, args: argparse.Namespace, base: Any = None, **fixed: Any) -> Any:
    """A `cls` from parsed flags (fields without a flag keep `base`'s values), plus `fixed`."""
    base = base if base is not None else cls()
    values = {f.name: getattr(args, f.name, getattr(base, f.name)) for f in dataclasses.fields(cls)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return dataclasses.replace(base, **{**values, **fixed})
