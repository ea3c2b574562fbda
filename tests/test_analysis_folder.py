"""The analyse stage on a hand-built run folder: every figure computed here by hand."""

import json

import numpy as np
import pytest
from scipy import stats

from iftscope.analyse.inference import ContrastsConfig
from iftscope.runfolder import Job, RunFolder
from iftscope.stages.analyse import analyse_stage

# seed -> group -> questions answered right (of q0..q9) on the one test set
RIGHT = {0: {"H": 10, "I": 2, "S": 8}, 1: {"H": 9, "I": 4, "S": 7}, 2: {"H": 10, "I": 3, "S": 9}}


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _records(right):
    rows = [
        {"question_id": f"q{i}", "gold": 0, "prediction": int(i >= right), "correct": i < right,
         "distribution": [0.9, 0.1] if i < right else [0.1, 0.9]}
        for i in range(10)
    ]  # fmt: skip
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.fixture
def folder(tmp_path):
    run = RunFolder(tmp_path)
    _write(run.eval("base") / "metrics.json", {"T": {"n": 10, "accuracy": 0.6, "mean_gold_prob": 0.6}})
    run.eval_records("base", "T").write_text(_records(6))
    _write(run.probe / "summary.json", {"n": 10})
    runs = []
    for seed, groups in RIGHT.items():
        for g, right in groups.items():
            job = Job(seed, g, "answer")
            metrics = {"T": {"n": 10, "accuracy": right / 10, "mean_gold_prob": right / 10}}
            _write(run.eval(job) / "metrics.json", metrics)
            run.eval_records(job, "T").write_text(_records(right))
            runs.append({"group": g, "style": "answer", "seed": seed, "metrics": metrics, "train": {}})
    return run, runs


def test_headline_contrasts_and_verdict_by_hand(folder):
    run, runs = folder
    result = analyse_stage(run, runs[::-1], "answer", contrasts=ContrastsConfig(secondary=("S vs I",)))
    acc = np.array([RIGHT[s]["H"] for s in RIGHT]) / 10
    half = stats.t.ppf(0.975, 2) * acc.std(ddof=1) / np.sqrt(3)
    cell = result["table"]["H/answer"]["T"]["accuracy"]
    assert cell["mean"] == pytest.approx(acc.mean()) and cell["ci"] == pytest.approx(
        [acc.mean() - half, acc.mean() + half]
    )
    assert cell["values"] == pytest.approx(list(acc))
    tests = {(t["a"], t["b"]): t for t in result["paired_tests"]}
    hi = np.array([RIGHT[s]["H"] - RIGHT[s]["I"] for s in RIGHT]) / 10  # questions nest: diff = share
    assert tests[("H", "I")]["seed_differences"] == pytest.approx(list(hi))
    assert tests[("H", "I")]["p_value"] == pytest.approx(stats.ttest_1samp(hi, 0).pvalue)
    si = np.array([RIGHT[s]["S"] - RIGHT[s]["I"] for s in RIGHT]) / 10
    assert tests[("S", "I")]["p_holm"] == pytest.approx(stats.ttest_1samp(si, 0).pvalue)  # a family of one
    assert (
        result["verdict"].startswith("Self-aligning, not learning: on T")
        and "(H 0.967 vs I 0.300;" in result["verdict"]
    )
    assert "S (I's items, the model's own answers) above I" in result["verdict"]
    assert (
        run.runs_csv.read_text().splitlines()[1].startswith("H,answer,0,T,10,1.0")
    )  # seed, group, style order
