"""The command line and the recipes share one definition of each setting: flags are generated
from the config dataclasses, with their defaults and their comments as help."""

import dataclasses
from dataclasses import dataclass

import pytest

from iftscope.cli import build_parser, main
from iftscope.commands.flags import add_config_flags, config_from_flags, field_help
from iftscope.probe.knowledge import ProbeConfig
from iftscope.study.recipe import RecipeError, load_recipe
from iftscope.train.sft import SFTConfig


@dataclass(frozen=True)
class Demo:
    # the number of
    # things to do
    count: int = 3
    rate: float = 0.5  # how fast
    names: tuple[str, ...] = ("a",)
    on: bool = True
    size: int | None = None


def test_field_help_reads_trailing_and_block_comments():
    assert field_help(Demo) == {"count": "the number of things to do", "rate": "how fast"}


def test_generated_flags_parse_to_the_config():
    import argparse

    p = argparse.ArgumentParser()
    add_config_flags(p, Demo)
    assert config_from_flags(Demo, p.parse_args([])) == Demo()
    args = p.parse_args(["--count", "5", "--names", "x,y", "z", "--no-on", "--size", "7"])
    assert config_from_flags(Demo, args) == Demo(count=5, names=("x", "y", "z"), on=False, size=7)
    with pytest.raises(SystemExit):
        p.parse_args(["--count", "many"])


def _subparser(name):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices[name]


@pytest.mark.parametrize(("command", "cls"), [("train", SFTConfig), ("probe", ProbeConfig)])
def test_every_config_field_is_a_flag_with_its_default_and_help(command, cls):
    p = _subparser(command)
    by_dest = {}
    for a in p._actions:
        by_dest.setdefault(a.dest, a)  # the generated flag, not an alias such as --full
    helps = field_help(cls)
    for f in dataclasses.fields(cls):
        assert f.name in by_dest, f"{command}: no flag for {cls.__name__}.{f.name}"
        action = by_dest[f.name]
        if not (command == "probe" and f.name == "shots"):  # by format: 0 for statements, else 5
            assert action.default == getattr(cls(), f.name)
        assert action.help == helps.get(f.name, ""), f.name
        assert helps.get(f.name), f"{cls.__name__}.{f.name} has no help comment"


def test_train_flags_are_the_recipe_keys():
    """`iftscope train --lr X` and a recipe's `train.lr: X` give the same SFTConfig field."""
    p = _subparser("train")
    args = p.parse_args(["--examples", "e", "--base", "b", "--out", "o", "--lr", "0.01", "--full"])
    cfg = config_from_flags(SFTConfig, args)
    recipe, _ = load_recipe(None, ["train.lr=0.01", "train.lora=false"])
    assert cfg.lr == recipe.train.lr == 0.01 and cfg.lora is recipe.train.lora is False


@pytest.mark.parametrize("block", ["train", "intervene", "render"])
def test_job_seeds_in_a_recipe_are_refused_not_overwritten(block):
    with pytest.raises(RecipeError, match=rf"{block}.seed=3 would be ignored.*seeds"):
        load_recipe(None, [f"{block}.seed=3"])
    load_recipe(None, [f"{block}.seed=0"])  # the value a resolved recipe.yaml carries


def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys):
    data, out = str(tmp_path / "nope.jsonl"), str(tmp_path / "o")
    args = ["probe", "--model", str(tmp_path), "--data", data, "--out", out]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("iftscope probe: error:") and "Traceback" not in err
    with pytest.raises((FileNotFoundError, OSError, ValueError)):
        main(["--debug", *args])


def test_a_malformed_contrast_is_refused_when_the_recipe_loads():
    with pytest.raises(RecipeError, match=r"contrasts.secondary\[1\]: contrast 'S-I'"):
        load_recipe(None, ["contrasts.secondary=[H vs S, S-I]"])
    cfg, _ = load_recipe(None, ["contrasts.primary=S vs I"])
    assert cfg.contrasts.primary == "S vs I"


def test_interrupts_and_internal_errors(monkeypatch, capsys):
    from iftscope.commands import data

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "check", interrupted)
    assert main(["data", "check", "x"]) == 130
    assert "iftscope data check: interrupted; run the same command again to resume" in capsys.readouterr().err

    def bug(args):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(data, "check", bug)
    assert main(["data", "check", "x"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError: oops" in err and "internal error" in err


@pytest.mark.parametrize("command", ["train", "evaluate", "probe"])
def test_dtype_flag_has_the_recipe_choices_and_reaches_the_loader(command, tmp_path, monkeypatch):
    """`--dtype` took any string (a typo failed only when the model loaded) and `iftscope train`
    did not offer `auto`; now every command has the recipe's choices and passes the value on."""
    from iftscope.models.load import DTYPES

    p = _subparser(command)
    action = next(a for a in p._actions if a.dest == "dtype")
    assert action.choices == list(DTYPES) and action.default == "float32"
    with pytest.raises(SystemExit):
        p.parse_args(["--dtype", "float8"])
    q = tmp_path / "q.jsonl"
    q.write_text('{"id": "a", "question": "?", "choices": ["x", "y"], "answer": 0}\n')
    seen = []
    if command == "train":
        import iftscope.stages.train as stage

        summary = {"log": [{}], "config": {"steps": 1, "lora": True}, "examples": 1, "seconds": 0.0}
        summary |= {"trainable_parameters": 1, "final_loss": 0.0}
        monkeypatch.setattr(stage, "train_stage", lambda spec, *a, **k: seen.append(spec) or summary)
        args = ["train", "--examples", str(q), "--base", "m", "--out", str(tmp_path / "o")]
    elif command == "evaluate":
        import iftscope.stages.evaluate as stage

        monkeypatch.setattr(stage, "evaluate_stage", lambda spec, *a, **k: seen.append(spec) or {})
        args = ["evaluate", "--model", "m", "--sets", f"T={q}", "--out", str(tmp_path / "o")]
    else:
        import iftscope.commands.probe as stage

        monkeypatch.setattr(stage, "probe_files", lambda a, out: seen.append(a.dtype))
        args = ["probe", "--model", "m", "--data", str(q), "--out", str(tmp_path / "o")]
    assert main([*args, "--dtype", "bfloat16"]) == 0
    assert getattr(seen[0], "dtype", seen[0]) == "bfloat16"
