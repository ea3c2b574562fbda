"""Score a tuned model on its group's acquisition sets (microworld.acquisition): did it learn the
facts it was trained on, asked in a way it was never trained on?

The QA-style sets (reworded, reverse, implied) are read in the format the model was tuned in, zero
shot; the cloze set as the base probe reads biographies (the `cloze` format over the held-back
statements), so a fact stored as knowledge, not as a question-answer string, shows there too.
Stored in the job's metrics.json under `_acquisition`: set -> n, accuracy, chance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from iftscope.microworld.acquisition import chance
from iftscope.probe.formats import get_format
from iftscope.probe.knowledge import ProbeConfig, probe
from iftscope.types import Question

CLOZE_SETS = ("cloze",)  # read with the base model's cloze instrument


def score_acquisition(
    scorer,
    sets: dict[str, list[Question]],
    pool: Sequence[Question],
    tuned_format: str,
    probe_cfg: ProbeConfig,
) -> dict[str, dict[str, Any]]:
    """set -> {n, accuracy, chance} for every non-empty acquisition set."""
    out = {}
    for name, qs in sets.items():
        fmt_name = "cloze" if name in CLOZE_SETS else tuned_format
        fmt = get_format(fmt_name).with_tokenizer(scorer.tokenizer)
        cfg = replace(probe_cfg, format=fmt_name, shots=0)
        records = list(probe(scorer, qs, qs if fmt_name == "cloze" else pool, fmt, cfg))
        out[name] = {
            "n": len(records),
            "accuracy": sum(r.correct for r in records) / len(records),
            "chance": round(chance(qs), 6),
            "format": fmt_name,
        }
    return out
