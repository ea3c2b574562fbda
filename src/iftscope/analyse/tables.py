"""Across runs: groups x test sets with CIs over seeds, paired tests, consistency, the verdict.

Pure functions over the runs' metrics (what the evaluate stage wrote); stages.analyse reads the
run folder and writes the results."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from iftscope.analyse.stats import mean_ci, paired_bootstrap, partial_correlation

CONSISTENCY_KEYS = ("argmax_agreement", "kappa", "spearman", "kl_base_tuned", "kl_tuned_base", "cosine")
GENERATION_KEYS = (
    "gen_accuracy", "gen_format_rate", "answer_unshifted", "answer_marginal", "answer_shifted",
    "other_unshifted", "other_marginal", "other_shifted",
)  # fmt: skip


def _generation(m: dict[str, Any]) -> dict[str, Any]:
    g = m.get("generation")
    if not g:
        return dict.fromkeys(GENERATION_KEYS)
    out = {"gen_accuracy": g["accuracy"], "gen_format_rate": g["format_rate"]}
    for part, key in (("answer", "shift_answer_token"), ("other", "shift_other_tokens")):
        for level in ("unshifted", "marginal", "shifted"):
            out[f"{part}_{level}"] = g[key][level] if g[key]["n"] else None
    return out


def tidy_rows(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per run and test set: the long table every figure is drawn from."""
    rows = []
    for r in runs:
        for s, m in r["metrics"].items():
            if s.startswith("_"):
                continue
            c = m.get("consistency", {})
            rows.append(
                {"group": r["group"], "style": r["style"], "seed": r["seed"], "set": s, "n": m["n"],
                 "accuracy": m["accuracy"], **{k: c.get(k) for k in CONSISTENCY_KEYS}, **_generation(m)}
            )  # fmt: skip
    return rows


# correct(job key, test set) -> question id -> answered correctly; None when the job has no records
Correctness = Callable[[str, str], dict[str, bool] | None]


def paired_tests(
    correct: Correctness, runs: Sequence[dict[str, Any]], reference: str = "H"
) -> list[dict[str, Any]]:
    """Reference group vs every other, per style and test set, questions paired within each seed."""
    tests = []
    keys = sorted({(r["style"], s) for r in runs for s in r["metrics"] if not s.startswith("_")})
    groups = sorted({r["group"] for r in runs} - {reference})
    seeds = sorted({r["seed"] for r in runs})
    for style, s in keys:
        for g in groups:
            a, b = [], []
            for seed in seeds:
                ref, other = f"{reference}/{style}/s{seed}", f"{g}/{style}/s{seed}"
                ca, cb = correct(ref, s), correct(other, s)
                if ca is None or cb is None:
                    continue
                common = sorted(set(ca) & set(cb))
                a += [float(ca[q]) for q in common]
                b += [float(cb[q]) for q in common]
            if a:
                tests.append({"set": s, "style": style, "a": reference, "b": g, **paired_bootstrap(a, b)})
    return tests


def headline(rows: Sequence[dict[str, Any]], base: dict[str, Any]) -> dict[str, Any]:
    """group/style -> set -> accuracy mean, CI, per-seed values, and consistency means."""
    table: dict[str, Any] = {"base": {s: {"accuracy": mean_ci([m["accuracy"]])} for s, m in base.items()}}
    for key in sorted({(r["group"], r["style"]) for r in rows}):
        cell: dict[str, Any] = {}
        for s in sorted({r["set"] for r in rows}):
            rs = sorted(
                (r for r in rows if (r["group"], r["style"]) == key and r["set"] == s),
                key=lambda r: r["seed"],
            )
            if not rs:
                continue
            cell[s] = {"accuracy": mean_ci([r["accuracy"] for r in rs]), "seeds": [r["seed"] for r in rs]}
            for k in CONSISTENCY_KEYS + GENERATION_KEYS:
                vals = [r[k] for r in rs if r[k] is not None and np.isfinite(r[k])]
                cell[s][k] = float(np.mean(vals)) if vals else None
        table[f"{key[0]}/{key[1]}"] = cell
    return table


def memorisation(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per group/style, over seeds: targets memorised on the trained questions; biographies kept;
    answers stable under reworded questions and rotated options."""
    keys = (
        "target_accuracy",
        "gold_accuracy",
        "retention_accuracy",
        "paraphrase_stability",
        "permutation_stability",
    )
    out: dict[str, Any] = {}
    for key in sorted({(r["group"], r["style"]) for r in runs}):
        ms = [
            {**r["metrics"].get("_memorisation", {}), **r["metrics"].get("_behaviour", {})}
            for r in runs
            if (r["group"], r["style"]) == key
        ]
        ms = [m for m in ms if m]
        if ms:
            out[f"{key[0]}/{key[1]}"] = {k: mean_ci([m[k] for m in ms]) for k in keys if k in ms[0]}
    return out


def verdict(table: dict[str, Any], tests: Sequence[dict[str, Any]], main_set: str, style: str) -> str:
    """Learning or self-aligning? Read from H vs I on the main held-out set."""

    def acc(g: str) -> dict[str, Any] | None:
        return table.get(f"{g}/{style}", {}).get(main_set, {}).get("accuracy")

    h, i, s = acc("H"), acc("I"), acc("S")
    if not h or not i:
        return "Not enough groups to judge (H and I are both needed)."
    t = next((t for t in tests if t["set"] == main_set and t["style"] == style and t["b"] == "I"), None)
    gap = f"H {h['mean']:.3f} vs I {i['mean']:.3f}"
    if t and t["ci_low"] > 0:
        lead = (f"Self-aligning, not learning: on {main_set}, training on facts the model already knew beat "
                f"training on new ones ({gap}; paired difference {t['difference']:+.3f}, 95% CI "
                f"[{t['ci_low']:+.3f}, {t['ci_high']:+.3f}], p = {t['p_value']:.3g}).")  # fmt: skip
    elif t and t["ci_high"] < 0:
        lead = f"Learning: on {main_set}, teaching new facts (I) beat consistent data (H) ({gap})."
    else:
        lead = f"No clear difference between H and I on {main_set} ({gap})."
    if s:
        lead += f" S (the items of I with the model's own answers) reached {s['mean']:.3f}."
    return lead


def correlation(rows: Sequence[dict[str, Any]], base: dict[str, Any]) -> dict[str, Any] | None:
    """Rank partial correlation of per-run Spearman consistency with tuned accuracy, controlling
    for the base model's accuracy on the set (None with fewer than 4 usable rows)."""
    usable = [r for r in rows if r["spearman"] is not None and np.isfinite(r["spearman"])]
    if len(usable) < 4:
        return None
    return partial_correlation(
        [r["spearman"] for r in usable],
        [r["accuracy"] for r in usable],
        [base[r["set"]]["accuracy"] for r in usable],
        n_perm=5000,
    )


def summarise_study(
    runs: Sequence[dict[str, Any]], base: dict[str, Any], correct: Correctness, style: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the study's results, the tidy rows) from every run's metrics and the base model's."""
    rows = tidy_rows(runs)
    table = headline(rows, base)
    tests = paired_tests(correct, runs)
    main_set = "known-heldout" if "known-heldout" in base else next(iter(base))
    result = {
        "main_set": main_set,
        "main_style": style,
        "verdict": verdict(table, tests, main_set, style),
        "table": table,
        "paired_tests": tests,
        "memorisation": memorisation(runs),
        "partial_correlation": correlation(rows, base),
        "training": {f"{r['group']}/{r['style']}/s{r['seed']}": r["train"] for r in runs},
        "base": base,
    }
    return result, rows
