"""Acquisition per group: were the facts a group was trained on learned, asked in ways never trained?

The positive control of the study (docs/concepts.md). Transfer to held-out people is the verdict's
measurement; acquisition sits beside it so that the study can answer "learning" when learning
happens. Per group/style and acquisition set: accuracy over seeds (mean, CI from 3 seeds), chance,
and a one-sided binomial test against chance over the pooled questions of every seed (questions of
different seeds overlap, so its p-value is descriptive, not an interval over seeds).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scipy import stats

from iftscope.analyse.stats import mean_ci

SET_ORDER = ("reworded", "cloze", "reverse", "implied")


def acquisition_table(runs: Sequence[dict[str, Any]], alpha: float = 0.05) -> dict[str, Any]:
    """group/style -> set -> {accuracy (mean_ci), chance, n, p_above_chance, above_chance}."""
    out: dict[str, Any] = {}
    for key in sorted({(r["group"], r["style"]) for r in runs}):
        per_set: dict[str, list[dict[str, Any]]] = {}
        for r in runs:
            if (r["group"], r["style"]) == key:
                for name, m in r["metrics"].get("_acquisition", {}).items():
                    per_set.setdefault(name, []).append(m)
        if per_set:
            out[f"{key[0]}/{key[1]}"] = {
                name: _cell(per_set[name], alpha) for name in SET_ORDER if name in per_set
            }
    return out


def _cell(ms: Sequence[dict[str, Any]], alpha: float) -> dict[str, Any]:
    n = sum(m["n"] for m in ms)
    hits = sum(round(m["accuracy"] * m["n"]) for m in ms)
    chance = sum(m["chance"] * m["n"] for m in ms) / n
    p = float(stats.binomtest(hits, n, chance, alternative="greater").pvalue)
    return {
        "accuracy": mean_ci([m["accuracy"] for m in ms]),
        "chance": round(chance, 6),
        "n": n,
        "p_above_chance": p,
        "above_chance": p < alpha,
    }


def acquisition_verdict(table: dict[str, Any], style: str, main: str = "reworded") -> str:
    """One sentence: which groups learned their taught facts (the `main` acquisition set above
    chance), with the figures; empty when no group has acquisition sets (real data)."""
    cells = {k.split("/")[0]: v[main] for k, v in table.items() if k.endswith(f"/{style}") and main in v}
    if not cells:
        return ""

    def fig(g: str) -> str:
        c = cells[g]
        return f"{g} {c['accuracy']['mean']:.3f} (n {c['n']}, p {c['p_above_chance']:.2g})"

    learned = [g for g, c in cells.items() if c["above_chance"]]
    chance = next(iter(cells.values()))["chance"]
    said = f"learned by {', '.join(fig(g) for g in learned)}" if learned else "learned by no group"
    rest = [fig(g) for g in cells if g not in learned]
    tail = f"; at chance: {', '.join(rest)}" if rest else ""
    return (
        f"Acquisition (the trained facts asked in a held-back {main} form, chance {chance:.3f}): "
        f"{said}{tail}."
    )
