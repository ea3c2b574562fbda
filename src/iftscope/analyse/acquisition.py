"""Acquisition per group: were the facts a group was trained on learned, asked in ways never trained?

The positive control of the study (docs/concepts.md). Transfer to held-out people is the verdict's
measurement; acquisition sits beside it so that the study can answer "learning" when learning
happens. Per group/style and acquisition set: accuracy over seeds (mean, CI from 3 seeds), chance,
the base model's agreement with the taught targets (its probe prediction was the target: about 1 for
H and S, whose targets it already gave, 0 for I), and a one-sided binomial test over the pooled
questions of every seed against the reference = the larger of chance and that agreement (questions
of different seeds overlap, so its p-value is descriptive, not an interval over seeds). A group
*learned* when it beats its reference: answering what the base model already said is not learning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scipy import stats

from iftscope.analyse.stats import mean_ci

SET_ORDER = ("reworded", "cloze", "reverse", "implied")


def acquisition_table(runs: Sequence[dict[str, Any]], alpha: float = 0.05) -> dict[str, Any]:
    """group/style -> set -> {accuracy (mean_ci), chance, base_agreement, reference, n,
    p_above_reference, learned}."""
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
    base = sum(m.get("base_agreement", 0.0) * m["n"] for m in ms) / n
    reference = min(max(chance, base), 1.0)
    p = float(stats.binomtest(hits, n, reference, alternative="greater").pvalue) if reference < 1 else 1.0
    return {
        "accuracy": mean_ci([m["accuracy"] for m in ms]),
        "chance": round(chance, 6),
        "base_agreement": round(base, 6),
        "reference": round(reference, 6),
        "n": n,
        "p_above_reference": p,
        "learned": p < alpha,
    }


def acquisition_verdict(table: dict[str, Any], style: str, main: str = "reworded") -> str:
    """One sentence: which groups learned their taught facts (the `main` acquisition set above its
    reference: chance, or what the base model already said), with the figures; empty when no group
    has acquisition sets (real data)."""
    cells = {k.split("/")[0]: v[main] for k, v in table.items() if k.endswith(f"/{style}") and main in v}
    if not cells:
        return ""

    def fig(g: str) -> str:
        c = cells[g]
        acc, ref, p = c["accuracy"]["mean"], c["reference"], c["p_above_reference"]
        return f"{g} {acc:.3f} vs {ref:.3f} (n {c['n']}, p {p:.2g})"

    learned = [g for g, c in cells.items() if c["learned"]]
    chance = next(iter(cells.values()))["chance"]
    said = f"learned by {', '.join(fig(g) for g in learned)}" if learned else "learned by no group"
    rest = [fig(g) for g in cells if g not in learned]
    tail = f"; not above their reference: {', '.join(rest)}" if rest else ""
    return (
        f"Acquisition (each group's trained facts asked in a held-back {main} form, against the "
        f"larger of chance {chance:.3f} and what the base model already answered): {said}{tail}."
    )


def acquisition_markdown(table: dict[str, Any], transfer: dict[str, Any], main_set: str) -> list[str]:
    """The report's acquisition table: per group/style, each set's accuracy (chance) beside transfer
    to held-out people (`transfer`: the headline table); [] when there is none (real data)."""
    if not table:
        return []
    names = [s for s in SET_ORDER if any(s in v for v in table.values())]
    lines = ["", f"## Acquisition: the trained facts asked in held-back ways (transfer: {main_set})", ""]
    lines += ["ref: the larger of chance and the base model's agreement with the taught targets; "
              "* above it (one-sided binomial test, pooled questions).", ""]  # fmt: skip
    lines += [
        "| group/style | " + " | ".join(names) + " | transfer |",
        "| --- |" + " --- |" * (len(names) + 1),
    ]
    for key, cells in table.items():
        acc = [
            f"{cells[s]['accuracy']['mean']:.3f} (ref {cells[s]['reference']:.2f}, n {cells[s]['n']})"
            + (" *" if cells[s]["learned"] else "")
            if s in cells else "–"
            for s in names
        ]  # fmt: skip
        moved = transfer.get(key, {}).get(main_set, {}).get("accuracy", {}).get("mean")
        lines.append(f"| {key} | " + " | ".join(acc) + f" | {'–' if moved is None else f'{moved:.3f}'} |")
    return lines
