"""The whole study on a tiny world: every stage, the report, skip-on-rerun and crash-resume."""

import json

import pytest
from conftest import SHARED_DATA, xiezhi_subset

from iftscope.cli import main
from iftscope.study.recipe import RecipeError, load_recipe
from iftscope.study.runner import Study

SECTIONS = ("verdict", "headline", "consistency", "memorisation", "behaviour", "training", "coverage")
SECTIONS += ("drilldown", "provenance", "instruments", "makeup")

TINY = [
    "name=tiny",
    "seeds=[0,1]",
    "world.world.people=20",
    "world.world.unknown=10",
    "world.model={hidden: 32, layers: 2, heads: 2, mlp: 64, max_positions: 128}",
    "world.pretrain={steps: 12, batch_size: 4, seq_len: 32, warmup: 2, eval_every: 5, checkpoint_every: 5}",
    "probe.known_rule=argmax",
    "intervene.confidence=0.0",
    "intervene.size=4",
    "train={steps: 3, batch_size: 4, checkpoint_every: 0}",
    "generation_questions=5",
    "workers=1",
]


def _without_clocks(summary):
    """summary.json as text, less what measures time (NaN compares equal as text)."""
    # and the probed weights' identity: a hash of their files' paths and times (the score cache's key)
    clocks = {"stage_seconds", "stage_clock", "seconds", "tokens_per_second", "model_identity"}

    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in clocks}
        return [strip(x) for x in v] if isinstance(v, list) else v

    return json.dumps(strip(summary), sort_keys=True)


def test_recipe_errors_name_the_key():
    with pytest.raises(RecipeError, match="unknown key 'trian'; did you mean 'train'"):
        load_recipe(None, ["trian.steps=3"])
    with pytest.raises(RecipeError, match=r"recipe.train.steps: expected int, got 'many'"):
        load_recipe(None, ["train.steps=many"])
    with pytest.raises(RecipeError, match="expected key=value"):
        load_recipe(None, ["train.steps"])
    cfg, _ = load_recipe(None, ["train.steps=7", "seeds=[4]"])
    assert cfg.train.steps == 7 and cfg.seeds == (4,) and cfg.probe.format == "cloze"


def test_study_end_to_end_and_resume(tmp_path, monkeypatch):
    cfg, _ = load_recipe(None, TINY)
    result = Study(cfg, tmp_path / "a", progress=False).run()
    table = result["table"]
    assert {"known-heldout", "unknown", "heldout-attribute"} <= set(table["H/answer"])
    groups = {"base", "H", "I", "S", "mix-0.25", "mix-0.75", "unknown-gold", "counterfactual"}
    assert {k.split("/")[0] for k in table} == groups  # I-context is left out by default
    assert len(table["H/answer"]["unknown"]["accuracy"]["values"]) == 2  # two seeds, with a CI
    assert table["H/explained"]["unknown"]["accuracy"]["ci"] is None  # two seeds: too few for an interval
    assert result["paired_tests"] and result["partial_correlation"]["n"] > 4
    # the verdict reads the primary contrast (H vs I) on the main set; two seeds are too few to judge
    main_set = "known-heldout"
    h, i = (table[f"{g}/answer"][main_set]["accuracy"]["mean"] for g in "HI")
    (hi,) = [
        t
        for t in result["paired_tests"]
        if (t["set"], t["a"], t["b"], t["style"]) == (main_set, "H", "I", "answer")
    ]
    assert hi["role"] == "primary" and hi["seeds"] == 2 and hi["p_value"] is None and hi["ci_low"] is None
    assert result["verdict"].startswith(f"Too few training seeds to judge H vs I on {main_set}")
    assert (
        f"H {h:.3f} vs I {i:.3f}" in result["verdict"]
        and f"{hi['question_ci_low']:+.3f}" in result["verdict"]
    )
    roles = {
        (t["a"], t["b"]): t["role"]
        for t in result["paired_tests"]
        if t["set"] == main_set and t["style"] == "answer"
    }
    assert roles[("S", "I")] == roles[("mix-0.25", "S")] == "secondary"
    # accuracies and stabilities are whole counts over a known n (k / n, rounded to 4 decimals): the
    # main set's first 100 questions (curve) or 200 (stability), the 4 trained items (intervene.size)
    n_main = result["base"][main_set]["n"]
    curve = result["training"]["H/answer/s0"]["qa_curve"]  # QA accuracy during training
    assert [step for step, _ in curve] == [1, 2, 3]
    assert all(abs(a * min(n_main, 100) - round(a * min(n_main, 100))) < 1e-3 for _, a in curve)
    # and the group's taught facts asked reworded, at the same steps (the acquisition curve)
    taught = result["training"]["H/answer/s0"]["acquisition_curve"]
    assert [step for step, _ in taught] == [1, 2, 3] and all(0 <= a <= 1 for _, a in taught)
    mem = result["memorisation"]["S/answer"]
    assert "retention_accuracy" in mem and "permutation_stability" not in mem  # no options shown
    for key, n in (("target_accuracy", 4), ("paraphrase_stability", min(n_main, 200))):
        values = mem[key]["values"]
        assert len(values) == 2 and mem[key]["mean"] == pytest.approx(sum(values) / 2)
        assert all(abs(v * n - round(v * n)) < 1e-3 for v in values)
    assert (tmp_path / "a" / "recipe.yaml").exists() and (tmp_path / "a" / "analysis" / "runs.csv").exists()
    _like_for_like(tmp_path / "a", result)

    # killed after a few models: the rerun completes with the uninterrupted run's results
    from iftscope.study import jobs

    calls = {"n": 0}
    original = jobs.evaluate_job

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # two tuned models evaluated, the third trained only
            raise KeyboardInterrupt("killed")
        return original(*args, **kwargs)

    monkeypatch.setattr(jobs, "evaluate_job", dying)
    with pytest.raises(KeyboardInterrupt):
        Study(cfg, tmp_path / "b", progress=False).run()
    assert calls["n"] == 3 and not (tmp_path / "b" / "analysis").exists()
    monkeypatch.setattr(jobs, "evaluate_job", original)
    resumed = Study(cfg, tmp_path / "b", progress=False).run()
    assert resumed["table"] == table
    # a stage output damaged after it was written is set aside and recomputed, with the same results
    damaged = tmp_path / "b" / "eval" / "S" / "answer" / "s1" / "metrics.json"
    damaged.write_text(damaged.read_text()[:50])
    (tmp_path / "b" / "groups" / "s0" / "summary.json").write_text("{")
    again = Study(cfg, tmp_path / "b", progress=False).run()
    assert _without_clocks(again) == _without_clocks(result)
    assert damaged.with_name("metrics.json.damaged").exists()
    # `iftscope analyse` lists the jobs group by group, the study seed by seed: the same results
    from iftscope.api import analyse_run

    assert _without_clocks(analyse_run(tmp_path / "a", report=False).summary) == _without_clocks(result)
    assert _without_clocks(resumed) == _without_clocks(result)  # every number, to the last bit
    assert (tmp_path / "b" / "analysis" / "runs.csv").read_text() == (
        tmp_path / "a" / "analysis" / "runs.csv"
    ).read_text()

    other, _ = load_recipe(None, [*TINY, "train.steps=4"])
    with pytest.raises(ValueError, match="holds a run of another recipe"):
        Study(other, tmp_path / "a", progress=False).run()


def _like_for_like(folder, result):
    """Both instruments: each consistency recomputed from one instrument's records, base and tuned;
    the decomposition adds up; the groups' make-up and the matching are reported."""
    from iftscope.evaluate.qa import set_metrics
    from iftscope.runfolder import Job, RunFolder
    from iftscope.stages.evaluate import PROBE, QA, read_records

    run, job = RunFolder(folder), Job(0, "I", "answer")
    metrics = json.loads((run.eval(job) / "metrics.json").read_text())
    for s in (s for s in metrics if not s.startswith("_")):
        tuned_qa, tuned_probe = (read_records(run.eval_records(job, s, i)) for i in (None, PROBE))
        qa = set_metrics(tuned_qa, read_records(run.eval_records("base", s, QA)))
        probe = set_metrics(tuned_probe, read_records(run.eval_records("base", s)))
        assert metrics[s]["consistency"] == pytest.approx(qa["consistency"], nan_ok=True)
        assert metrics[s]["probe"]["consistency"] == pytest.approx(probe["consistency"], nan_ok=True)
        assert metrics[s]["probe"]["accuracy"] == probe["accuracy"] != None  # noqa: E711
        assert "consistency_mixed" in metrics[s]  # the paper's mixed comparison, under its own name
    main_set = result["main_set"]
    dec = result["decomposition"]["I/answer"][main_set]
    parts = zip(dec["knowledge_change"]["values"], dec["pathway_change"]["values"], strict=True)
    assert dec["qa_change"]["values"] == pytest.approx([k + p for k, p in parts])
    tuned_qa = result["table"]["I/answer"][main_set]["accuracy"]["mean"]
    assert dec["qa_change"]["mean"] == pytest.approx(tuned_qa - result["base_qa"][main_set]["accuracy"])
    assert result["composition"]["I"]["size"] == 4 and "never_pretrained_share" in result["composition"]["I"]
    assert result["matching"]["matched"]  # the default study matches H and I in confidence
    assert result["curves"]["H/answer"]["steps"] == [1, 2, 3]


def test_run_command_writes_the_report(tmp_path, capsys):
    out = tmp_path / "run"
    args = [*TINY, "seeds=[0]", "render.styles=[answer]", "workers=2"]  # two worker processes
    assert main(["run", *args, "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "report:" in printed
    html = (out / "report" / "report.html").read_text()
    for section in SECTIONS:
        assert f'id="{section}"' in html
    assert html.count("data:image/png;base64,") == 6  # with the dose-response over the mixtures
    assert "<script" not in html
    summary = json.loads((out / "analysis" / "summary.json").read_text())
    assert set(summary["stage_seconds"]) >= {"world", "probe", "train", "evaluate", "total"}
    assert main(["run", "nope.yaml"]) == 2 and "no such recipe" in capsys.readouterr().err

    # the evaluation and analysis stages alone
    before = json.loads((out / "analysis" / "summary.json").read_text())
    csv_before = (out / "analysis" / "runs.csv").read_text()
    assert main(["analyse", str(out)]) == 0 and "report:" in capsys.readouterr().out
    # `iftscope analyse` lists the jobs in another order than the study did: the same results
    after = json.loads((out / "analysis" / "summary.json").read_text())
    assert _without_clocks(after) == _without_clocks(before)
    assert (out / "analysis" / "runs.csv").read_text() == csv_before
    kh = tmp_path / "kh.jsonl"
    world_qs = [json.loads(x) for x in (out / "world" / "questions.jsonl").read_text().splitlines()]
    kh.write_text("".join(json.dumps(q) + "\n" for q in world_qs if q["metadata"]["split"] == "known_test"))
    args = [
        "evaluate",
        "--model",
        str(out / "world" / "model"),
        "--adapter",
        str(out / "train/H/answer/s0/model"),
    ]
    args += [
        "--sets",
        f"known-heldout={kh}",
        "--reference",
        str(out / "eval" / "base"),
        "--out",
        str(tmp_path / "ev"),
    ]
    assert main(args) == 0 and "argmax agreement" in capsys.readouterr().out
    ev = json.loads((tmp_path / "ev" / "metrics.json").read_text())["known-heldout"]
    stored = json.loads((out / "eval/H/answer/s0/metrics.json").read_text())["known-heldout"]
    assert ev["accuracy"] == stored["accuracy"] and ev["consistency"]["n"] == stored["consistency"]["n"]
    assert main(["evaluate", "--model", "x", "--sets", "bad", "--out", str(tmp_path / "e2")]) == 2

    # dataset strings are escaped: a question carrying markup shows as text in the drill-down
    from iftscope.report.render import write_report

    questions = out / "tests" / "known-heldout.jsonl"
    rows = [json.loads(x) for x in questions.read_text().splitlines()]
    for r in rows:
        r["question"] = "<script>alert(1)</script> " + r["question"]
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    html = write_report(out)["html"].read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="shared/data not beside the checkout")
def test_real_model_and_data_run_every_stage(tmp_path, tiny_hf_model_dir):
    """A tiny Llama on Xiezhi questions, the paper's format: chance accuracy, but every stage runs."""
    xiezhi = SHARED_DATA / "xiezhi"
    roles = {"ift": ("engineering/train", 60), "HOMO": ("engineering/test", 16), "OOD": ("history/test", 16)}
    small = xiezhi_subset(tmp_path, roles)
    recipe = tmp_path / "real.yaml"
    recipe.write_text(
        f"""
name: real
seeds: [0]
groups: []
skip_groups: []
data:
  model: {tiny_hf_model_dir}
  ift: [{small["ift"]}]
  pool: [{xiezhi / "engineering" / "dev.jsonl"}]
  tests: {{HOMO: {small["HOMO"]}, OOD: {small["OOD"]}}}
probe: {{format: paper, shots: 2, demos: first, known_rule: argmax}}
intervene: {{confidence: 0.0, size: 4, mixtures: [0.5], micro_world: false}}
render: {{template: vicuna, show_options: true, styles: [answer]}}
train: {{steps: 2, batch_size: 4, max_length: 512, checkpoint_every: 0}}
eval_format: paper
generation_questions: 4
"""
    )
    out = tmp_path / "run"
    assert main(["run", str(recipe), "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "analysis" / "summary.json").read_text())
    assert set(summary["table"]["H/answer"]) == {"HOMO", "OOD"} and summary["main_set"] == "HOMO"
    assert {"base", "H", "I", "S", "mix-0.5"} <= {k.split("/")[0] for k in summary["table"]}
    html = (out / "report" / "report.html").read_text()
    h, i = (summary["table"][f"{g}/answer"]["HOMO"]["accuracy"]["mean"] for g in "HI")
    assert 'id="drilldown"' in html and "on HOMO" in summary["verdict"]
    assert f"H {h:.3f} vs I {i:.3f}" in summary["verdict"]  # the verdict reads the main set's H and I
    assert "permutation_stability" in summary["memorisation"]["H/answer"]  # a letter format: rotated options


def test_tuned_models_are_read_with_their_training_prompt_on_a_real_tokenizer(tmp_path, real_model):
    """vicuna with the options shown (the paper's SFT), on Llama-2's SentencePiece as it ships:
    eval_format `trained` reads every tuned model in `sft-vicuna-options` (zero-shot, the vicuna
    prompt, the letter ' C' as training taught it), and generation asks with the options."""
    small = xiezhi_subset(tmp_path, {"ift": ("engineering/train", 24), "HOMO": ("engineering/test", 8)})
    recipe = tmp_path / "real.yaml"
    recipe.write_text(
        f"""
name: trained-prompt
seeds: [0]
groups: [H]
skip_groups: []
data: {{model: {real_model("llama", "sp-legacy")}, ift: [{small["ift"]}], tests: {{HOMO: {small["HOMO"]}}}}}
probe: {{format: mmlu, shots: 1, demos: first, known_rule: argmax}}
intervene: {{confidence: 0.0, size: 4, mixtures: [], micro_world: false}}
render: {{template: vicuna, show_options: true, styles: [answer]}}
train: {{steps: 1, batch_size: 4, max_length: 512, checkpoint_every: 0}}
eval_format: trained
generation_questions: 3
curve_questions: 0
eval_batch_size: 64
"""
    )
    cfg, _ = load_recipe(recipe)
    assert cfg.tuned_format == "sft-vicuna-options"
    out = tmp_path / "run"
    Study(cfg, out, progress=False).run()
    records = [json.loads(x) for x in (out / "eval" / "H" / "answer" / "s0" / "records-HOMO.jsonl").open()]
    assert len(records) == 8 and {r["format"] for r in records} == {"sft-vicuna-options@1"}
    metrics = json.loads((out / "eval" / "H" / "answer" / "s0" / "metrics.json").read_text())
    assert metrics["HOMO"]["generation"]["n"] == 3
    assert "permutation_stability" in metrics["_behaviour"]  # a letter format: rotated options
