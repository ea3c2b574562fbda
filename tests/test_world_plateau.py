"""Pretraining until recall plateaus (issue 15 item 6): rounds, stopping rules, resume, fingerprints."""

import json
from dataclasses import replace

import pytest
import torch
from conftest import tiny_stage_config
from transformers import AutoModelForCausalLM

from iftscope.microworld import pretrain as pretrain_module
from iftscope.microworld.pretrain import PretrainConfig, extend, lr_factor, planned_end
from iftscope.microworld.stage import WorldStageConfig, build_world


def extended(steps=10, **kw):
    cfg = tiny_stage_config(steps=steps)
    return replace(cfg, pretrain=replace(cfg.pretrain, extend_steps=5, max_steps=25, **kw))


def log_of(out):
    return [json.loads(x) for x in (out / "pretrain" / "log.jsonl").read_text().splitlines()]


def test_off_by_default_keeps_every_world_fingerprint():
    assert "extend_steps" not in PretrainConfig().to_json()
    on = PretrainConfig(extend_steps=500)
    assert on.to_json()["extend_steps"] == 500 and on.to_json()["target_recall"] == 0.9
    assert WorldStageConfig().fingerprint != WorldStageConfig(pretrain=on).fingerprint
    with pytest.raises(ValueError, match="max_steps"):
        PretrainConfig(steps=100, extend_steps=10, max_steps=50)


def test_schedule_restarts_at_each_round():
    f = lr_factor(PretrainConfig(steps=10, warmup=2, extend_steps=4, extend_lr=0.5))
    assert f(0) == 0 and f(2) == 1.0 and f(9) < 0.05
    assert [f(10), f(14), f(18)] == [0.5, 0.5, 0.5] and f(12) == pytest.approx(0.25)


def test_rounds_until_the_cap_while_recall_gains(tmp_path):
    # target out of reach and every round counted as a gain: rounds until max_steps
    summary = build_world(tmp_path / "w", extended(target_recall=2.0, min_gain=-1.0), progress=False)
    log = log_of(tmp_path / "w")
    assert summary["pretrain"]["steps"] == log[-1]["step"] == 25
    assert summary["pretrain"]["extension_rounds"] == 3
    assert [r["step"] for r in log if "extend" in r] == [10, 15, 20, 25]
    assert all("recall_known_sample" in r for r in log if "extend" in r)


def test_stops_at_plateau_and_at_target(tmp_path):
    # no round can gain 2.0: one round after `steps` (nothing to compare with before), then stop
    build_world(tmp_path / "p", extended(target_recall=2.0, min_gain=2.0), progress=False)
    assert log_of(tmp_path / "p")[-1]["step"] == 15
    # target already met: exactly `steps`, and the same weights as the plain schedule
    build_world(tmp_path / "t", extended(target_recall=0.0), progress=False)
    build_world(tmp_path / "plain", tiny_stage_config(steps=10), progress=False)
    assert log_of(tmp_path / "t")[-1]["step"] == 10
    a = AutoModelForCausalLM.from_pretrained(tmp_path / "t" / "model").state_dict()
    b = AutoModelForCausalLM.from_pretrained(tmp_path / "plain" / "model").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_decisions_come_from_the_log():
    cfg = PretrainConfig(steps=10, extend_steps=5, max_steps=30, min_gain=0.05, target_recall=0.9)
    assert planned_end(cfg, [{"extend": True}, {"extend": True}, {"step": 3}]) == 20
    assert extend(cfg, [], 0.5, 10) and not extend(cfg, [], 0.95, 10) and not extend(cfg, [], 0.5, 30)
    assert not extend(cfg, [{"extend": True, "recall_known_sample": 0.48}], 0.5, 15)
    assert extend(cfg, [{"extend": True, "recall_known_sample": 0.4}], 0.5, 15)


def test_crash_in_an_extension_round_resumes_to_the_same_model(tmp_path, monkeypatch):
    cfg = extended(target_recall=2.0, min_gain=-1.0)
    build_world(tmp_path / "clean", cfg, progress=False)
    real_batch = pretrain_module.BiographySampler.batch

    def crashing_batch(self, step, *args):
        if step == 17:
            raise KeyboardInterrupt("simulated crash")
        return real_batch(self, step, *args)

    monkeypatch.setattr(pretrain_module.BiographySampler, "batch", crashing_batch)
    with pytest.raises(KeyboardInterrupt):
        build_world(tmp_path / "crashed", cfg, progress=False)
    monkeypatch.setattr(pretrain_module.BiographySampler, "batch", real_batch)
    resumed = build_world(tmp_path / "crashed", cfg, progress=False)
    assert resumed["pretrain"]["resumed_from_step"] == 15
    a = AutoModelForCausalLM.from_pretrained(tmp_path / "clean" / "model").state_dict()
    b = AutoModelForCausalLM.from_pretrained(tmp_path / "crashed" / "model").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert log_of(tmp_path / "crashed") == log_of(tmp_path / "clean")
