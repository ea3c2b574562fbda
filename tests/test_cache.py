"""The score cache serves a rerun for free and never serves one model another model's scores."""

import json
import shutil

import numpy as np
from test_probe import PositionBiasedScorer

from iftscope.cli import main
from iftscope.models.identity import model_identity
from iftscope.probe.cache import CachedScorer


class Counting(PositionBiasedScorer):
    def __init__(self, shift=0.0):
        super().__init__()
        self.calls, self.shift = 0, shift

    def letter_logprobs(self, prompts, token_ids):
        self.calls += len(prompts)
        scores = super().letter_logprobs(prompts, token_ids)
        return type(scores)(scores.logprobs + self.shift)


def test_cached_scores_are_exact_and_keyed_by_identity(tmp_path):
    prompts, ids = ["Q1\nA. x*\nB. y\nAnswer:", "Q2\nA. x\nB. y*\nAnswer:"], [65, 66]
    first = CachedScorer(Counting(), "model-a", tmp_path)
    a = first.letter_logprobs(prompts, ids).logprobs
    again = CachedScorer(Counting(), "model-a", tmp_path)  # a new process, the same model
    assert np.array_equal(again.letter_logprobs(prompts, ids).logprobs, a) and again.inner.calls == 0
    other = CachedScorer(Counting(shift=-1.0), "model-b", tmp_path)  # another model: computed afresh
    assert np.allclose(other.letter_logprobs(prompts, ids).logprobs, a - 1.0) and other.inner.calls == 2
    assert again.letter_logprobs(prompts, [65, 67]).logprobs.shape == (2, 2) and again.inner.calls == 2


def test_identity_follows_contents_not_names(tmp_path, tiny_hf_model_dir):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_hf_model_dir, copy)
    assert model_identity(copy) == model_identity(tiny_hf_model_dir)
    assert model_identity(copy, dtype="bfloat16") != model_identity(copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one weight
    weights.write_bytes(bytes(data))
    assert model_identity(copy) != model_identity(tiny_hf_model_dir)


def test_probe_rerun_is_served_from_the_cache(tmp_path, tiny_hf_model_dir, capsys):
    data = tmp_path / "q.jsonl"
    rows = [
        {"id": str(i), "question": f"Which is {i}?", "choices": ["a", "b", "c", "d"], "answer": i % 4}
        for i in range(8)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["probe", "--model", str(tiny_hf_model_dir), "--data", str(data), "--shots", "2", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert "0 hits, 8 computed" in capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "two")]) == 0
    assert "8 hits, 0 computed" in capsys.readouterr().out
    one, two = ((tmp_path / d / "records.jsonl").read_text() for d in ("one", "two"))
    assert one == two
