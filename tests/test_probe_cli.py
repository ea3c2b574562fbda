"""The probe command end to end: a tiny world's model (cloze) and a tiny BPE Llama on real data."""

import json

import pytest
from conftest import SHARED_DATA, tiny_stage_config

from iftscope.cli import main
from iftscope.world import build_world


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
    assert len(records) == 150 and summary["n"] == 150 and 0 < summary["mean_option_mass"] <= 1
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
    assert truth["n"] == 150 and 0.0 <= truth["correct"]["agreement"] <= 1.0
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
