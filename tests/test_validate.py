"""A recipe is checked whole before any work: every bad value named with what is allowed."""

import pytest

from iftscope.cli import main
from iftscope.study.recipe import RecipeError, load_recipe
from iftscope.study.validate import check_recipe, problems

BAD = [
    ("train.lr=-1", "train.lr: -1.0 (must be > 0)"),
    ("train.steps=0", "train.steps: 0 (must be >= 1, or train.epochs > 0)"),
    ("seeds=[]", "seeds: empty"),
    ("seeds=[1,1]", "seeds: [1, 1] repeats a seed"),
    ("train.batch_size=0", "train.batch_size: 0 (must be >= 1)"),
    ("train.micro_batch_size=5", "train.micro_batch_size: 5 does not divide batch_size 32"),
    ("intervene.confidence=1.5", "intervene.confidence: 1.5 (must be in [0, 1))"),
    ("intervene.mixtures=[0.5,2.0]", "intervene.mixtures[1]: 2.0 (must be in [0, 1])"),
    ("render.styles=[]", "render.styles: empty"),
    ("render.styles=[answer,shouted]", "render.styles[1]: 'shouted'"),
    ("render.template=jinja", "render.template: 'jinja'"),
    ("probe.format=nope", "probe.format: 'nope' (allowed: paper"),
    ("eval_format=nope", "eval_format: 'nope'"),
    ("probe.shots=5", "probe.shots: 5 (format cloze scores statements zero-shot: use 0)"),
    ("probe.known_rule=vibes", "probe.known_rule: 'vibes'"),
    ("train.lora_r=0", "train.lora_r: 0 (must be >= 1)"),
    ("skip_groups=[J]", "skip_groups: unknown group 'J'"),
    ("groups=[mix-0.3]", "groups: unknown group 'mix-0.3'"),
]


@pytest.mark.parametrize(("override", "message"), BAD)
def test_each_bad_value_is_named_with_what_is_allowed(override, message):
    cfg, _ = load_recipe(None, [override])
    assert any(p.startswith(message) for p in problems(cfg)), problems(cfg)


def test_every_problem_is_listed_at_once():
    cfg, _ = load_recipe(None, ["train.lr=-1", "seeds=[]", "probe.format=nope"])
    with pytest.raises(RecipeError, match=r"3 problem\(s\), nothing was run") as e:
        check_recipe(cfg)
    assert "train.lr" in str(e.value) and "seeds" in str(e.value) and "probe.format" in str(e.value)


def test_shipped_recipes_pass():
    from iftscope.study.recipe import shipped

    for name in ("default", "smoke"):
        assert problems(load_recipe(shipped(name))[0]) == []


def test_models_and_files(tmp_path, tiny_hf_model_dir):
    q = tmp_path / "q.jsonl"
    q.write_text('{"id": "a", "question": "?", "choices": ["x", "y"], "answer": 0}\n')
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "?", "choices": ["x"], "answer": 3}\n')
    base = [f"data.ift=[{q}]", f"data.tests={{T: {q}}}", "probe.format=paper", "probe.shots=0"]
    ok = problems(load_recipe(None, [f"data.model={tiny_hf_model_dir}", *base])[0])
    assert ok == [] and problems(load_recipe(None, ["data.model=meta-llama/Llama-2-7b-hf", *base])[0]) == []
    found = problems(
        load_recipe(
            None, ["data.model=/nonexistent/model", *base, f"data.pool=[{bad}, {tmp_path}/none.jsonl]"]
        )[0]
    )
    assert "data.model: /nonexistent/model: no such folder, and not a hub id (owner/name)" in found
    assert (
        any(p.startswith("data.pool[0]:") for p in found)
        and f"data.pool[1]: {tmp_path}/none.jsonl: no such file" in found
    )
    empty = tmp_path / "empty-model"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    (empty / "pytorch_model.bin").write_text("")
    found = problems(load_recipe(None, [f"data.model={empty}", *base])[0])
    assert any("no *.safetensors weights" in p for p in found) and any(
        "no tokenizer files" in p for p in found
    )


def test_run_check_exits_before_any_work(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "train.lr=-1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("iftscope run: error:") and "train.lr: -1.0 (must be > 0)" in err and not out.exists()
    )
    assert main(["run", "smoke", "--check", "--out", str(out)]) == 0
    assert "recipe smoke: OK" in capsys.readouterr().out and not out.exists()


def test_paper_recipes_name_files_that_exist_from_the_checkout(monkeypatch, tmp_path):
    """`paper` used to name data/xiezhi/humanities/test.jsonl, which exists nowhere; its paths
    are relative to the folder iftscope runs in: the checkout's root, beside ../shared."""
    from conftest import REPO, SHARED_DATA

    from iftscope.study.recipe import shipped

    if not SHARED_DATA.exists():
        pytest.skip("shared/data not beside the checkout")
    monkeypatch.chdir(REPO)
    for name in ("paper", "paper-lora"):
        assert problems(load_recipe(shipped(name))[0]) == [], name
    monkeypatch.chdir(tmp_path)  # elsewhere: the message says where relative paths are read from
    found = problems(load_recipe(shipped("paper"))[0])
    assert len(found) == 5 and all(f"relative paths are read from {tmp_path}" in p for p in found)


def test_chat_template_needs_a_tokenizer_that_has_one(real_model, tmp_path):
    """`render.template: chat` passed validation and the study failed after the world and the probe
    had run; now it is refused up front, and accepted where the tokenizer has a chat template."""
    from iftscope.study.recipe import shipped

    found = problems(load_recipe(shipped("smoke"), ["render.template=chat"])[0])
    assert len(found) == 1 and found[0].startswith("render.template")  # (and eval_format when trained)
    assert found[0].endswith(
        "chat: the micro-world's word-level tokenizer has no chat template "
        "(use render.template plain or vicuna, probe formats paper or mmlu)"
    )
    q = tmp_path / "q.jsonl"
    q.write_text('{"id": "a", "question": "?", "choices": ["x", "y"], "answer": 0}\n')
    base = [f"data.ift=[{q}]", f"data.tests={{T: {q}}}", "probe.format=chat", "probe.shots=0"]
    plain = problems(
        load_recipe(None, [f"data.model={real_model('llama')}", "render.template=chat", *base])[0]
    )
    assert len(plain) == 1 and plain[0].startswith("render.template, probe.format")
    assert "tokenizer has no chat template" in plain[0]
    chat = real_model("mistral", "sp-instruct")
    assert problems(load_recipe(None, [f"data.model={chat}", "render.template=chat", *base])[0]) == []


@pytest.mark.parametrize(
    ("kind", "refused"), [("FSDP", True), ("DEEPSPEED", True), ("MULTI_GPU", False), ("NO", False)]
)
def test_sharded_launch_config_is_refused(tmp_path, kind, refused):
    """FSDP and DeepSpeed train incorrectly (issue 13): refused before any work until supported."""
    config = tmp_path / "accelerate.yaml"
    config.write_text(f"compute_environment: LOCAL_MACHINE\ndistributed_type: {kind}\nnum_processes: 2\n")
    found = problems(load_recipe(None, [f"launch.config_file={config}"])[0])
    message = f"launch.config_file: {config}: training under {kind} is not supported yet"
    assert [p.startswith(message) for p in found] == ([True] if refused else []), found
    missing = problems(load_recipe(None, [f"launch.config_file={tmp_path}/none.yaml"])[0])
    assert missing[0].startswith(f"launch.config_file: {tmp_path}/none.yaml: no such file")


def test_eval_format_trained_is_accepted():
    """`trained` (read tuned models as they were trained, StudyConfig's default) is not a format
    name; validation refused it, so the paper recipes could not use it."""
    assert problems(load_recipe(None, ["eval_format=trained"])[0]) == []
    assert problems(load_recipe(None, ["eval_format=trained", "render.show_options=true"])[0]) == []
