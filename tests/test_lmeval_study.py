"""A whole tiny study with `probe.backend: lm-eval` (the probe, the base model's and every tuned
job's evaluation, both instruments, through lm-evaluation-harness's hf backend) against the same
study scored natively: the same groups, the same accuracies and correct flags, every number of
analysis/summary.json within 1e-5 (less times and provenance, as bench/compare_runs.py strips)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))


def _leaves(value, path=""):
    """(path, number) for every number in a JSON value (booleans and text compared as they are)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, value


def _records(folder: Path):
    return {
        f.relative_to(folder).as_posix(): [json.loads(x) for x in f.read_text().splitlines()]
        for f in sorted(folder.rglob("records-*.jsonl"))
    }


@pytest.mark.slow  # two tiny studies (world, probe, 3 jobs, evaluation, analysis): a few minutes on 2 cores
@pytest.mark.parametrize("jobs", ["one-per-load", "shared-base"])
def test_study_through_lm_eval_matches_native(small_study, jobs):
    """Each job trained and evaluated on its own, or LoRA jobs 2 a pass on one loaded base (the
    extras then read the adapter in memory while lm-eval reads it from its folder)."""
    from compare_runs import _strip

    from iftscope.study.recipe import load_recipe
    from iftscope.study.runner import Study

    overrides, _, native_out, _ = small_study
    out = native_out.parent / f"lm-eval-{jobs}"
    extra = ["adapters_per_pass=2"] if jobs == "shared-base" else []
    cfg, _ = load_recipe(None, [*overrides, *extra, "probe.backend=lm-eval"])
    Study(cfg, out, progress=False).run()
    jobs = sorted(p.parent for p in (out / "eval").rglob("metrics.json") if p.parent.name.startswith("s"))
    assert len(jobs) == 3
    for job in jobs:  # each tuned job's two readings went through lm-eval
        for folder in (job, job / "probe"):
            provenance = json.loads((folder / "lm-eval" / "provenance.json").read_text())
            assert provenance["lm_eval"]["model_args"]["peft"] == str(
                out / "train" / job.relative_to(out / "eval") / "model"
            )
    assert (out / "eval" / "base" / "qa" / "lm-eval" / "provenance.json").exists()
    assert not (native_out / "eval" / "base" / "qa" / "lm-eval").exists()
    a, b = _records(native_out / "eval"), _records(out / "eval")
    assert a.keys() == b.keys() and len(a) >= 8
    worst = 0.0
    for name in a:
        assert [r["question_id"] for r in a[name]] == [r["question_id"] for r in b[name]], name
        assert [r["correct"] for r in a[name]] == [r["correct"] for r in b[name]], name
        for x, y in zip(a[name], b[name], strict=True):
            worst = max(
                worst, max(abs(p - q) for p, q in zip(x["distribution"], y["distribution"], strict=True))
            )
    print("eval records: max |native - lm-eval| over", len(a), "files:", worst)
    assert worst < 1e-5
    sa, sb = (_strip(json.loads((x / "analysis" / "summary.json").read_text())) for x in (native_out, out))
    la, lb = dict(_leaves(sa)), dict(_leaves(sb))
    backend = {
        k for k in la.keys() | lb.keys() if k.startswith(".probe.") and ("backend" in k or "lm_eval" in k)
    }
    assert la.keys() - backend == lb.keys() - backend
    differing, numbers = [], 0
    for key in sorted(la.keys() - backend):
        x, y = la[key], lb[key]
        if isinstance(x, float) and isinstance(y, float | int) and not isinstance(y, bool):
            numbers += 1
            if not (math.isnan(x) and math.isnan(y)) and abs(x - y) > 1e-5:
                differing.append((key, x, y))
            if "accuracy" in key and not math.isnan(x):
                assert abs(x - y) < 1e-5, key
        else:
            assert x == y, (key, x, y)
    exact = sum(1 for k in la.keys() - backend if json.dumps(la[k]) == json.dumps(lb[k]))
    print(f"summary.json: {numbers} numbers; {exact} of {len(la.keys() - backend)} leaves identical")
    assert not differing, differing[:10]
