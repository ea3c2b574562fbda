"""The default micro-world meets its targets (minutes on 2 cores: run with `pytest -m slow`)."""

import pytest

from iftscope.microworld.stage import build_world


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_world_memorises_known_and_not_unknown(tmp_path, seed):
    from dataclasses import replace

    from iftscope.microworld.stage import WorldStageConfig

    cfg = WorldStageConfig()
    cfg = replace(cfg, world=replace(cfg.world, seed=seed))
    summary = build_world(tmp_path / "world", cfg, progress=False)
    mem = summary["memorisation"]
    assert mem["known"] >= 0.85, mem
    assert abs(mem["unknown"] - summary["chance"]) <= 0.05, mem
    # the cloze probe's "known" agrees with ground truth (person pretrained and fact recalled)
    from iftscope.data import load_questions
    from iftscope.microworld.groundtruth import load_truth
    from iftscope.models.load import load_model
    from iftscope.models.scorer import HFScorer
    from iftscope.probe.formats import get_format
    from iftscope.probe.knowledge import ProbeConfig
    from iftscope.probe.runner import run_probe

    world = tmp_path / "world"
    model, tokenizer = load_model(world / "model")
    questions = load_questions(world / "questions.jsonl")
    probe_summary = run_probe(
        HFScorer(model, tokenizer, batch_size=64),
        questions,
        questions,
        get_format("cloze"),
        ProbeConfig(format="cloze", shots=0),
        tmp_path / "probe",
        progress=False,
        truth=load_truth(world),
    )
    assert probe_summary["ground_truth"]["probe"]["agreement"] >= 0.95, probe_summary["ground_truth"]
