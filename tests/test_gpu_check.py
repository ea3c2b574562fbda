"""The prepared GPU check (bench/gpu_check.py) runs its stages at toy sizes on the CPU (`--tiny`) and
writes one JSON per stage with the figures docs/gpu-check.md reads; a stage whose package is missing
(lm-eval, trl: the `bench` extra) says "skipped", never fails the run. Stage 6 (`iftscope run smoke`
twice) takes minutes on a CPU: slow-marked."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mistral_common")  # the real SentencePiece file (test extra)
ROOT = Path(__file__).resolve().parents[1]
RATE = {"tokens", "seconds", "tokens_per_second", "tflops", "fraction_of_matmul_peak"}
KEYS = {
    "1_correctness": {
        "max_diff_cached_vs_plain",
        "max_diff_cached_vs_single",
        "tie_rate_scored",
        "tie_rate_native_logits",
        "tie_rate_fp32",
        "argmax_agreement_vs_fp32",
        "argmax_agreement_vs_fp32_untied",
        "generation_identical",
    },
    "2_probe": {"shape", "parameters", "runs"},
    "3_lm_eval": {"time_ratio_lm_eval_over_ours", "argmax_agreement", "max_abs_loglik_diff"},
    "4_sft": {"large_steady", "large_whole_tokens_per_second", "small_ours_seconds", "trl"},
    "5_full_step": {"fp32_step", "half_step", "saved_fraction_changed", "update_relative_difference_vs_fp32"},
    "6_smoke": {"lora", "full"},
    "7_multi_adapter": {
        "one_at_a_time",
        "six_per_pass",
        "speedup_six_per_pass",
        "max_abs_adapter_difference",
    },
}


def run_check(out: Path, stages: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        str(ROOT / "bench" / "gpu_check.py"),
        "--tiny",
        "--out",
        str(out),
        "--stages",
        stages,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600, check=False)


def read(out: Path, stem: str) -> dict:
    path = out / f"{stem}.json"
    assert path.exists(), f"{stem}.json not written"
    return json.loads(path.read_text())


def test_tiny_check_writes_every_stage(tmp_path, monkeypatch):
    done = run_check(tmp_path, "1,2,3,4,5,7")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    env = read(tmp_path, "0_environment")
    assert env["tiny"] and env["matmul_peak"]["tflops"] > 0 and env["versions"]["torch"]
    for stem, keys in KEYS.items():
        if stem == "6_smoke":
            continue
        record = read(tmp_path, stem)
        if stem == "3_lm_eval" and importlib.util.find_spec("lm_eval") is None:
            assert record["status"].startswith("skipped: lm_eval not installed")
            continue
        assert record["status"] == "ok", record.get("traceback", record["status"])
        assert keys <= record.keys(), keys - record.keys()
        assert record["seconds"] > 0
    correct = read(tmp_path, "1_correctness")
    # fp32 on the CPU: prefix reuse and batching change scores only by float rounding
    assert correct["max_diff_cached_vs_single"] < 1e-3 and correct["argmax_agreement_vs_fp32"] == 1.0
    runs = read(tmp_path, "2_probe")["runs"]
    assert {(r["batch"], r["prefix_reuse"]) for r in runs} == {(2, True), (2, False), (8, True), (8, False)}
    assert all(RATE <= r.keys() and r["tokens"] > 0 for r in runs)
    reused = {r["batch"]: r["tokens"] for r in runs if r["prefix_reuse"]}
    assert all(reused[r["batch"]] < r["tokens"] for r in runs if not r["prefix_reuse"])  # shared 5 shots
    sft = read(tmp_path, "4_sft")
    assert RATE <= sft["large_steady"].keys()
    if importlib.util.find_spec("trl") is None:
        assert sft["trl"].startswith("skipped")
    else:
        assert sft["tokens_per_second_ratio_ours_over_trl"] > 0
    multi = read(tmp_path, "7_multi_adapter")  # fp32 on the CPU: the two paths agree to rounding
    assert multi["max_abs_adapter_difference"] < 1e-4 and multi["six_per_pass"]["tokens"] > 0
    step = read(tmp_path, "5_full_step")
    assert step["half_step"]["fraction_changed"] > 0.3  # one AdamW step moves most weights
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from gpu_check_report import merged, table

    text = table(merged(tmp_path))  # the docs' table, from the files alone
    assert all(f"| {stem}: status" in text for stem in KEYS if stem != "6_smoke")


def test_failing_stage_is_recorded_and_later_stages_run(tmp_path, monkeypatch):
    """A stage that raises writes 'error: ...' with its traceback; the run goes on and exits 1."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TOKENIZERS_PARALLELISM"):  # it sets them
        monkeypatch.setenv(name, "1" if name.startswith("HF") else "false")
    import gpu_check

    def prepare(args, out, work):
        gpu_check.write(out, "0_environment", {"fake": True})
        return None

    monkeypatch.setattr(gpu_check, "prepare", prepare)
    monkeypatch.setattr(
        gpu_check, "STAGES", (("1_x", "json", "loads", ()), ("2_y", "json", "dumps", ("nope_pkg",)))
    )
    assert gpu_check.main(["--out", str(tmp_path)]) == 1
    assert read(tmp_path, "1_x")["status"].startswith("error: TypeError")
    assert read(tmp_path, "2_y")["status"] == "skipped: nope_pkg not installed (pip install nope_pkg)"


@pytest.mark.slow
def test_tiny_smoke_stage_runs_iftscope_run(tmp_path):
    done = run_check(tmp_path, "6")
    record = read(tmp_path, "6_smoke")
    assert record["status"] == "ok", json.dumps(record)[-3000:]
    assert record["lora"]["returncode"] == 0 and record["full"]["returncode"] == 0
    assert done.returncode == 0
