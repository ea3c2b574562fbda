"""The probe command end to end: a tiny world's model (cloze) and a tiny BPE Llama on real data."""

import json

import pytest
from conftest import SHARED_DATA, tiny_stage_config

from iftscope.cli import main
from iftscope.microworld.stage import build_world


def test_probe_micro_world_with_cloze(tmp_path, capsys):
    world = tmp_path / "world"
    build_world(world, tiny_stage_config(), progress=False)
    out = tmp_path / "probe"
    args = [
        "probe",
        "--model",
        str(world / "model"),
        "--data",
        str(world / "questions.jsonl"),
        "--format",
        "cloze",
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(args) == 0
    assert "probed 150 questions with cloze@2" in capsys.readouterr().out
    records = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    assert len(records) == 150 and summary["n"] == 150
    assert summary["mean_option_mass"] == pytest.approx(sum(r["option_mass"] for r in records) / 150)
    assert sum(summary["per_category"].values()) == 150 and set(summary["per_domain"]) == {
        "birth_city",
        "birth_year",
        "university",
        "field",
        "employer",
    }
    assert all(abs(sum(r["distribution"]) - 1) < 1e-9 for r in records)
    assert all(r["views"] == 3 for r in records)  # the three held-back statements of each fact
    truth = summary["ground_truth"]  # the world's recall.jsonl sits beside questions.jsonl
    recall = [json.loads(x) for x in (world / "recall.jsonl").read_text().splitlines()]
    truly = {r["question_id"]: r["known_person"] and r["recalled"] for r in recall}
    assert truth["n"] == 150 and truth["truly_known"] == sum(truly.values())
    # known = correct agrees with the truth where both say known or both say unknown
    agree = sum(r["correct"] == truly[r["question_id"]] for r in records) / 150
    assert truth["correct"]["agreement"] == pytest.approx(agree)
    assert (out / "coverage.md").read_text().startswith("# Coverage")


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="shared/data not beside the checkout")
@pytest.mark.parametrize("fmt, letter", [("paper", "A"), ("paper-original", "ĠA"), ("mmlu", "ĠA")])
def test_probe_real_data_letter_formats(tiny_hf_model_dir, tmp_path, capsys, fmt, letter):
    from transformers import AutoTokenizer

    xiezhi = SHARED_DATA / "xiezhi" / "engineering"
    test = tmp_path / "test.jsonl"
    test.write_text("".join((xiezhi / "test.jsonl").read_text().splitlines(keepends=True)[:6]))
    out = tmp_path / fmt
    args = [
        "probe",
        "--model",
        str(tiny_hf_model_dir),
        "--data",
        str(test),
        "--pool",
        str(xiezhi / "dev.jsonl"),
        "--format",
        fmt,
        "--shots",
        "2",
        "--permutations",
        "2",
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    tok = AutoTokenizer.from_pretrained(tiny_hf_model_dir)
    assert tok.convert_ids_to_tokens(summary["scored_token_ids"][:1]) == [letter]
    assert summary["n"] == 6 and 0 < summary["mean_option_mass"] < 1
    assert summary["format"] == f"{fmt}@1" and summary["config"]["permutations"] == 2
    capsys.readouterr()


def test_probe_bad_data_is_a_clear_error(tmp_path, tiny_hf_model_dir, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "choices": ["a"], "answer": 0}\n')
    assert (
        main(["probe", "--model", str(tiny_hf_model_dir), "--data", str(bad), "--out", str(tmp_path / "o")])
        == 2
    )
    assert f"{bad}:1: error: field 'choices': expected at least 2 options" in capsys.readouterr().err


CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def test_chat_format_uses_the_models_template(tiny_hf_model_dir, tmp_path, capsys):
    import shutil

    from transformers import AutoTokenizer

    from iftscope.probe.formats import get_format
    from iftscope.types import Question

    data = tmp_path / "q.jsonl"
    rows = [
        {"id": str(i), "question": f"Which is {i}?", "choices": ["a", "b", "c"], "answer": i % 3}
        for i in range(5)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["probe", "--data", str(data), "--format", "chat", "--shots", "1", "--quiet"]
    assert main([*args, "--model", str(tiny_hf_model_dir), "--out", str(tmp_path / "none")]) == 2
    assert "has no chat template; use --format paper or mmlu" in capsys.readouterr().err

    chat_dir = tmp_path / "chat-model"
    shutil.copytree(tiny_hf_model_dir, chat_dir)
    tok = AutoTokenizer.from_pretrained(chat_dir)
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(chat_dir)
    fmt = get_format("chat").with_tokenizer(tok)
    q, d = Question("1", "Which?", ("x", "y"), 1, domain="law"), Question("2", "Demo?", ("u", "v"), 0)
    prompt = fmt.letter_prompt(q, q.choices, [d])
    assert prompt.startswith("<|user|>\n") and "<s>" not in prompt  # the scorer adds BOS once
    assert (
        "<|assistant|>\nA\n<|user|>\nThe following is a multiple choice question about law.\n\nWhich?\n"
        in prompt
    )
    assert prompt.endswith("B. y\nAnswer with the letter of the correct option only.\n<|assistant|>\n")
    assert main([*args, "--model", str(chat_dir), "--out", str(tmp_path / "chat")]) == 0
    summary = json.loads((tmp_path / "chat" / "summary.json").read_text())
    assert tok.convert_ids_to_tokens(summary["scored_token_ids"]) == ["A", "B", "C"]
    assert summary["format"] == "chat@1" and summary["n"] == 5


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="shared/data not beside the checkout")
def test_probe_every_xiezhi_test_file(tiny_hf_model_dir, tmp_path, capsys):
    tests = sorted((SHARED_DATA / "xiezhi").glob("*/test.jsonl"))
    assert len(tests) == 4
    out = tmp_path / "xiezhi"
    args = ["probe", "--model", str(tiny_hf_model_dir), "--data", *map(str, tests)]
    args += [
        "--pool",
        str(SHARED_DATA / "xiezhi" / "engineering" / "dev.jsonl"),
        "--shots",
        "2",
        "--out",
        str(out),
    ]
    assert main([*args, "--quiet", "--batch-size", "64"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 1000 and len(summary["per_domain"]) == 4
    coverage = (out / "coverage.md").read_text()
    assert "## Position bias" in coverage and "| A |" in coverage
    capsys.readouterr()
