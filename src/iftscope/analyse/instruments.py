"""Both instruments side by side, and what each group's QA change is made of.

Every model is read twice: by the base model's probe (cloze statements on the micro-world, the
k-shot probe with its views on real data) and in the tuned models' QA format (the base model too,
in the trained prompt). Consistency is computed instrument for instrument; the paper's mixed
comparison (base by its probe, tuned in QA) is kept only under the `mixed_` name.

The decomposition of a group's QA change vs the base, per training seed then over seeds:
- qa_change = tuned QA accuracy - base QA accuracy (one instrument: the trained QA format);
- knowledge_change = tuned probe accuracy - base probe accuracy (one instrument: the base's probe):
  stored knowledge gained or lost;
- pathway_change = qa_change - knowledge_change = (tuned QA - tuned probe) - (base QA - base probe):
  how far the answering pathway moved, the rest. The parts sum to the whole exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from iftscope.analyse.stats import mean_ci

# columns of the tidy table (runs.csv) from the second instrument and the labelled mixed comparison
INSTRUMENT_KEYS = (
    "probe_accuracy", "probe_argmax_agreement", "probe_spearman", "probe_kl_base_tuned",
    "mixed_spearman", "mixed_kl_base_tuned",
)  # fmt: skip


def instrument_columns(probe: dict[str, Any], mixed: dict[str, Any] | None) -> dict[str, Any]:
    """A run's columns for one test set: its accuracy and consistency (probe vs probe) as the base
    model's probe reads it, and the mixed comparison (base probe vs tuned QA), None when absent."""
    pc, mixed = probe.get("consistency") or {}, mixed or {}
    return {
        "probe_accuracy": probe.get("accuracy"),
        "probe_argmax_agreement": pc.get("argmax_agreement"),
        "probe_spearman": pc.get("spearman"),
        "probe_kl_base_tuned": pc.get("kl_base_tuned"),
        "mixed_spearman": mixed.get("spearman"),
        "mixed_kl_base_tuned": mixed.get("kl_base_tuned"),
    }


def decomposition(
    rows: Sequence[dict[str, Any]], base: dict[str, Any], base_qa: dict[str, Any] | None
) -> dict[str, Any] | None:
    """group/style -> set -> qa_change, knowledge_change, pathway_change (mean and CI over seeds)
    and seeds; `base`: the base model's probe metrics per set, `base_qa`: its QA-format metrics.
    None when the base was not read in QA format or no run was read by the probe."""
    if not base_qa:
        return None
    out: dict[str, Any] = {}
    for key in sorted({(r["group"], r["style"]) for r in rows}):
        cell = {}
        for s in sorted({r["set"] for r in rows}):
            rs = sorted(
                (r for r in rows if (r["group"], r["style"]) == key and r["set"] == s
                 and r.get("probe_accuracy") is not None and s in base_qa and s in base),
                key=lambda r: r["seed"],
            )  # fmt: skip
            if not rs:
                continue
            qa = [r["accuracy"] - base_qa[s]["accuracy"] for r in rs]
            known = [r["probe_accuracy"] - base[s]["accuracy"] for r in rs]
            cell[s] = {
                "qa_change": mean_ci(qa),
                "knowledge_change": mean_ci(known),
                "pathway_change": mean_ci([a - b for a, b in zip(qa, known, strict=True)]),
                "seeds": [r["seed"] for r in rs],
            }
        if cell:
            out[f"{key[0]}/{key[1]}"] = cell
    return out or None


def curves(runs: Sequence[dict[str, Any]], main_set: str) -> dict[str, Any]:
    """The early-stopping view: per group/style, QA accuracy on the curve questions at every
    curve step (mean over the seeds that reached it) and the end value (the full main set's QA
    accuracy after the last step, mean and CI over seeds); on the micro-world also the acquisition
    curve (the group's taught facts asked in a held-back wording) at the same steps, and its end
    value on the whole reworded set (`acquisition` and `acquisition_end`)."""
    out: dict[str, Any] = {}
    for key in sorted({(r["group"], r["style"]) for r in runs}):
        rs = [r for r in runs if (r["group"], r["style"]) == key]
        at, taught = _points(rs, "qa_curve"), _points(rs, "acquisition_curve")
        end = [r["metrics"][main_set]["accuracy"] for r in rs if main_set in r["metrics"]]
        out[f"{key[0]}/{key[1]}"] = {
            "steps": sorted(at),
            "accuracy": [mean_ci(at[step]) for step in sorted(at)],
            "end": mean_ci(end),
        }
        if taught:
            ends = [r["metrics"]["_acquisition"]["reworded"]["accuracy"] for r in rs
                    if "reworded" in (r["metrics"].get("_acquisition") or {})]  # fmt: skip
            out[f"{key[0]}/{key[1]}"] |= {
                "acquisition": [mean_ci(taught[step]) if step in taught else None for step in sorted(at)],
                "acquisition_end": mean_ci(ends) if ends else None,
            }
    return out


def _points(rs: Sequence[dict[str, Any]], name: str) -> dict[int, list[float]]:
    """step -> the seeds' values of the train log's curve `name` ([[step, value], ...])."""
    at: dict[int, list[float]] = {}
    for r in rs:
        for step, value in (r.get("train") or {}).get(name) or []:
            at.setdefault(int(step), []).append(float(value))
    return at
