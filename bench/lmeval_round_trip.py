"""The lm-evaluation-harness round trip on real questions: `iftscope probe` (native) against
export -> lm-eval (`hf` backend, Python API) -> import, with the same model, questions and settings.

Model: a random ~20M-parameter Llama with a BPE vocabulary trained on the questions (as
bench/probe_vs_lm_eval.py), saved as a model folder so both paths load it from disk. Cases: the
paper's letter prompt (5 fixed demonstrations, 4 cyclic option rotations), lm-eval's MMLU letter
prompt (2 seeded demonstration sets x 2 rotations) and the continuation format (char-normalised).
Reported per case: the largest difference between the two option distributions, agreement of
prediction, `known` (argmax rule) and SliCK category, whether the IFT groups built from each are
the same (I: wrong with confidence above the native records' median: a random model is rarely
confident), and
wall time of each path (one run each, lm-eval's import and model load included).

    python bench/lmeval_round_trip.py --data ../shared/data/xiezhi/engineering --questions 60

Writes bench/results/lmeval_round_trip.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from probe_vs_lm_eval import random_llama  # noqa: E402

from iftscope.data import load_questions  # noqa: E402
from iftscope.intervene.groups import InterveneConfig, build_groups  # noqa: E402
from iftscope.probe.knowledge import ProbeConfig  # noqa: E402
from iftscope.stages.model import ModelSpec  # noqa: E402
from iftscope.stages.probe import CacheConfig, probe_stage  # noqa: E402
from iftscope.types import ProbeRecord  # noqa: E402

CASES = {
    "paper 5-shot, 4 rotations": ProbeConfig(format="paper", shots=5, demos="first", permutations=4),
    "mmlu 2-shot, 2 demo sets x 2 rotations": ProbeConfig(
        format="mmlu", shots=2, demo_sets=2, permutations=2
    ),
    "continuation 2-shot, char-normalised": ProbeConfig(format="continuation", shots=2, normalise="char"),
}


def run(folder: Path, questions, pool, cfg: ProbeConfig, out: Path) -> tuple[list[ProbeRecord], float]:
    t0 = time.perf_counter()
    spec = ModelSpec(str(folder))
    probe_stage(spec, questions, cfg, out, pool=pool, batch_size=16, cache=CacheConfig(False), progress=False)
    seconds = time.perf_counter() - t0
    return [
        ProbeRecord.from_json(json.loads(x)) for x in (out / "records.jsonl").read_text().splitlines()
    ], seconds


def groups(questions, records, confidence: float) -> dict[str, list[tuple[str, int, str]]]:
    built = build_groups(questions, records, InterveneConfig(confidence=confidence, seed=0))
    return {g.name: [(i.question_id, i.target, i.kind) for i in g.items] for g in built}


def compare(
    label: str, folder: Path, questions, pool, cfg: ProbeConfig, work: Path, confidence: float
) -> dict:
    known_rule = replace(cfg, known_rule="argmax")
    a, ta = run(folder, questions, pool, known_rule, work / "native")
    b, tb = run(folder, questions, pool, replace(known_rule, backend="lm-eval"), work / "lm-eval")
    # a random model is rarely confident: I = wrong with confidence above the native median
    confidence = confidence if confidence else float(np.median([r.confidence for r in a]))
    ga, gb = groups(questions, a, confidence), groups(questions, b, confidence)
    pairs = list(zip(a, b, strict=True))
    diff = max(np.abs(np.subtract(x.distribution, y.distribution)).max() for x, y in pairs)
    row = {
        "case": label,
        "questions": len(questions),
        "views": a[0].views,
        "max_abs_distribution_diff": float(diff),
        **{f"{key}_agreement": float(np.mean([getattr(x, key) == getattr(y, key) for x, y in pairs]))
           for key in ("prediction", "known", "category")},
        "groups_confidence": confidence,
        "groups_identical": ga == gb,
        "group_sizes": {k: len(v) for k, v in ga.items()},
        "native_seconds": round(ta, 1),
        "lm_eval_seconds": round(tb, 1),
    }  # fmt: skip
    print(json.dumps(row), flush=True)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/xiezhi/engineering"))
    ap.add_argument("--questions", type=int, default=60)
    ap.add_argument(
        "--confidence", type=float, default=0.0, help="I: confidently wrong above this (0: median)"
    )
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "lmeval_round_trip.json")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    questions = load_questions(args.data / "test.jsonl")[: args.questions]
    pool = load_questions(args.data / "dev.jsonl")
    texts = [q.question + " " + " ".join(q.choices) for q in [*questions, *pool]]
    model, tok = random_llama(texts * 3)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "llama-20m"
        model.save_pretrained(folder, safe_serialization=True)
        tok.save_pretrained(folder)
        for i, (label, cfg) in enumerate(CASES.items()):
            rows.append(compare(label, folder, questions, pool, cfg, Path(tmp) / str(i), args.confidence))
    import lm_eval

    result = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU threads, torch {torch.__version__}",
        "lm_eval": lm_eval.__version__,
        "model": f"random Llama, {sum(p.numel() for p in model.parameters())} parameters",
        "command": "python " + " ".join(sys.argv),
        "rows": rows,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
