"""Proxy-tuning's strength alpha on a finished study with the `proxy` condition: accuracy of
M + alpha * (m_tuned - m) on every test set, read as the study reads tuned models (zero-shot, the
trained format), per training seed, for several alphas. No training: the study's tuned small
models (`train/<group>/<style>/s<seed>/model`) steer its large base model.

    python bench/proxy_alpha.py runs/automated --alphas 0 0.25 0.5 1 2 --out bench/results/proxy_alpha.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

from iftscope.data import load_questions
from iftscope.evaluate.qa import score_sets, set_metrics
from iftscope.models.proxy import load_proxy
from iftscope.models.scorer import HFScorer
from iftscope.probe.formats import get_format
from iftscope.probe.knowledge import ProbeConfig
from iftscope.runfolder import Job, RunFolder
from iftscope.runs import atomic_write_json
from iftscope.stages.model import ModelSpec
from iftscope.study.config import StudyConfig
from iftscope.study.recipe import build


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a finished study's run folder (conditions include proxy)")
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    run = RunFolder(args.run)
    cfg = build(StudyConfig, yaml.safe_load(run.recipe.read_text(encoding="utf-8")))
    if not run.world_large_model.exists():
        print(f"{run.root}: no large model (run a study with conditions: [proxy])", file=sys.stderr)
        return 2
    small, large = ModelSpec(str(run.world_model)), ModelSpec(str(run.world_large_model))
    sets = {p.stem: load_questions(p) for p in sorted(run.tests.glob("*.jsonl"))}
    style, rows, t0 = cfg.render.styles[0], [], time.perf_counter()
    for seed in cfg.seeds:
        guide = Job(seed, cfg.proxy.group, style)
        for alpha in args.alphas:
            model, tok = load_proxy(large, small, str(run.train(guide) / "model"), alpha)
            fmt = get_format(cfg.tuned_format).with_tokenizer(tok)
            records = score_sets(HFScorer(model, tok), sets, fmt, ProbeConfig(format=fmt.name, shots=0))
            acc = {name: set_metrics(rs)["accuracy"] for name, rs in records.items()}
            rows.append({"seed": seed, "alpha": alpha, "accuracy": acc})
            print(f"seed {seed} alpha {alpha:g}: " + ", ".join(f"{k} {v:.3f}" for k, v in acc.items()))
    out = {"run": str(run.root), "guide": f"{cfg.proxy.group}/{style}", "format": cfg.tuned_format,
           "rows": rows, "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    atomic_write_json(args.out, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
