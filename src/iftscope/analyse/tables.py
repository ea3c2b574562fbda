"""Across runs: groups x test sets with CIs over seeds, paired tests, consistency, the verdict.

Pure functions over the runs' metrics (what the evaluate stage wrote); stages.analyse reads the
run folder and writes the results."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from iftscope.analyse.acquisition import acquisition_table, acquisition_verdict
from iftscope.analyse.correlation import correlation_from_rows, paper_partial_spearman
from iftscope.analyse.inference import (
    MIN_SEEDS,
    ContrastsConfig,
    default_secondary,
    holm,
    paired_over_seeds,
    parse_contrast,
    slope_over_seeds,
)
from iftscope.analyse.instruments import INSTRUMENT_KEYS, curves, decomposition, instrument_columns
from iftscope.analyse.stats import mean_ci

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
            c, p = m.get("consistency", {}), m.get("probe", {})
            rows.append(
                {"group": r["group"], "style": r["style"], "seed": r["seed"], "set": s, "n": m["n"],
                 "accuracy": m["accuracy"], **{k: c.get(k) for k in CONSISTENCY_KEYS}, **_generation(m),
                 **instrument_columns(p, m.get("consistency_mixed"))}
            )  # fmt: skip
    return rows


# correct(job key, test set) -> question id -> answered correctly; None when the job has no records
Correctness = Callable[[str, str], dict[str, bool] | None]


def _per_seed(correct: Correctness, a: str, b: str, style: str, s: str, seeds: Sequence[int]) -> list:
    """Per seed, the per-question differences (a correct) - (b correct) on the questions both read."""
    out = []
    for seed in seeds:
        ca, cb = correct(f"{a}/{style}/s{seed}", s), correct(f"{b}/{style}/s{seed}", s)
        if ca is None or cb is None:
            continue
        common = sorted(set(ca) & set(cb))
        out.append([float(ca[q]) - float(cb[q]) for q in common])
    return out


def paired_tests(
    correct: Correctness,
    runs: Sequence[dict[str, Any]],
    contrasts: ContrastsConfig,
    main_set: str,
    style: str,
) -> list[dict[str, Any]]:
    """The declared contrasts, differences taken within each training seed and inferred over seeds
    (analyse.inference). On the main set and style: the primary (unadjusted) and the secondaries
    (Holm-adjusted as one family); the same contrasts on every other set and style are listed as
    exploratory (unadjusted)."""
    groups = sorted({r["group"] for r in runs})
    primary = parse_contrast(contrasts.primary)
    secondary = [parse_contrast(c) for c in contrasts.secondary] or default_secondary(groups, primary)
    seeds = sorted({r["seed"] for r in runs})
    keys = sorted({(r["style"], s) for r in runs for s in r["metrics"] if not s.startswith("_")})
    tests = []
    for st, s in sorted(keys, key=lambda k: k != (style, main_set)):
        main = (st, s) == (style, main_set)
        for role, (a, b) in [("primary", primary)] + [("secondary", c) for c in secondary]:
            per_seed = _per_seed(correct, a, b, st, s, seeds)
            if per_seed and any(per_seed):
                role = role if main else "exploratory"
                tests.append(
                    {"set": s, "style": st, "a": a, "b": b, "role": role, **paired_over_seeds(per_seed)}
                )
    family = [t for t in tests if t["role"] == "secondary"]
    for t, adj in zip(family, holm([t["p_value"] for t in family]), strict=True):
        t["p_holm"] = adj
    return tests


def dose_response(rows: Sequence[dict[str, Any]], main_set: str, style: str) -> dict[str, Any] | None:
    """Accuracy against the share r of self-aligning targets among I's items: I (r = 0), the nested
    mixtures, S (r = 1); per-seed slopes tested over seeds. None without mixtures."""
    at = {"I": 0.0, "S": 1.0} | {
        r["group"]: float(r["group"][4:]) for r in rows if r["group"].startswith("mix-")
    }
    cells = [r for r in rows if r["group"] in at and r["set"] == main_set and r["style"] == style]
    groups = sorted({r["group"] for r in cells}, key=lambda g: at[g])
    seeds = sorted({r["seed"] for r in cells})
    acc = {(r["group"], r["seed"]): r["accuracy"] for r in cells}
    complete = [sd for sd in seeds if all((g, sd) in acc for g in groups)]
    if len(groups) < 3 or not complete:
        return None
    per_seed = [[acc[(g, sd)] for g in groups] for sd in complete]
    return {
        "set": main_set, "style": style, "groups": groups, "r": [at[g] for g in groups],
        "accuracy": [mean_ci([acc[(g, sd)] for sd in complete]) for g in groups],
        **slope_over_seeds([at[g] for g in groups], per_seed),
    }  # fmt: skip


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
            for k in CONSISTENCY_KEYS + GENERATION_KEYS + INSTRUMENT_KEYS:
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


def _interval_text(t: dict[str, Any]) -> str:
    """`+0.123, 95% CI [..] over 3 seeds, p = ..` or, with too few seeds, the question-level interval."""
    d = f"{t['difference']:+.3f}"
    if t["p_value"] is None:
        return (f"{d}; {t['seeds']} training seed(s), too few for an interval over seeds (at least "
                f"{MIN_SEEDS}); within seeds, questions only: [{t['question_ci_low']:+.3f}, "
                f"{t['question_ci_high']:+.3f}]")  # fmt: skip
    p = t.get("p_holm", t["p_value"])
    label = "Holm-adjusted p" if "p_holm" in t else "p"
    return (f"{d}, 95% CI [{t['ci_low']:+.3f}, {t['ci_high']:+.3f}] over {t['seeds']} seeds and their "
            f"questions, seed-level t test {label} = {p:.3g}")  # fmt: skip


def _separated(t: dict[str, Any], alpha: float) -> int:
    """+1 / -1 when the test separates a above / below b at `alpha`, 0 when it does not (or cannot)."""
    p = t.get("p_holm", t["p_value"])
    if p is None or p >= alpha:
        return 0
    return 1 if t["difference"] > 0 else -1


def verdict(
    table: dict[str, Any], tests: Sequence[dict[str, Any]], main_set: str, style: str, alpha: float
) -> str:
    """Learning or self-aligning? Built only from tested contrasts: the primary (H vs I by default)
    decides; S vs I, when tested, is reported beside it."""

    def acc(g: str) -> float:
        return table.get(f"{g}/{style}", {}).get(main_set, {}).get("accuracy", {}).get("mean", float("nan"))

    prim = next((t for t in tests if t["role"] == "primary"), None)
    if prim is None:
        return "Not enough groups to judge (the primary contrast needs both of its groups, e.g. H and I)."
    a, b = prim["a"], prim["b"]
    gap, side = f"{a} {acc(a):.3f} vs {b} {acc(b):.3f}", _separated(prim, alpha)
    detail = f"({gap}; paired difference {_interval_text(prim)})"
    if prim["p_value"] is None:
        lead = f"Too few training seeds to judge {a} vs {b} on {main_set} {detail}."
    elif (a, b) == ("H", "I") and side > 0:
        lead = (f"Self-aligning, not learning: on {main_set}, training on facts the model already knew beat "
                f"training on new ones {detail}.")  # fmt: skip
    elif (a, b) == ("H", "I") and side < 0:
        lead = f"Learning: on {main_set}, teaching new facts (I) beat consistent data (H) {detail}."
    elif side:
        lead = f"On {main_set}, {a if side > 0 else b} beat {b if side > 0 else a} {detail}."
    else:
        lead = f"No clear difference between {a} and {b} on {main_set} {detail}."
    si = next((t for t in tests if t["role"] == "secondary" and (t["a"], t["b"]) == ("S", "I")), None)
    if si is not None:
        said = {1: "above", -1: "below", 0: "not separated from"}[_separated(si, alpha)]
        lead += f" S (I's items, the model's own answers) {said} I: {_interval_text(si)}."
    return lead


def correlation(rows: Sequence[dict[str, Any]], base: dict[str, Any]) -> dict[str, Any] | None:
    """Per-run Spearman consistency with the base vs tuned accuracy, within test sets (ranks within
    each set, permutations within each set and seed: analyse.correlation), with each set's own
    correlation; the paper's pooled partial correlation on base accuracy as a labelled comparison
    (`paper_spearman`, `pooled`), which cannot remove set differences. None below 4 usable rows."""
    # knowledge consistency like for like: base and tuned read by the same probe, where measured
    key = "probe_spearman" if any(r.get("probe_spearman") is not None for r in rows) else "spearman"
    usable = [r for r in rows if r.get(key) is not None and np.isfinite(r[key])]
    if len(usable) < 4:
        return None
    out = correlation_from_rows(usable, x=key, block="seed", n_perm=5000)  # `x` names the instrument
    paper = paper_partial_spearman(
        [r[key] for r in usable], [r["accuracy"] for r in usable],
        [base[r["set"]]["accuracy"] for r in usable], n_perm=5000,
    )  # fmt: skip
    pooled = {"r": paper["r_pearson_residuals"], "p_value": paper["p_value"], "method": paper["method"]}
    return {**out, "paper_spearman": paper["r"], "pooled": pooled}


def base_wrong_correlation(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The same within-set correlation on the questions the base model got wrong, where agreeing
    with the base is not agreeing with gold (so consistency and accuracy can separate)."""
    usable = [r for r in rows if r["n"] and r["spearman"] is not None and np.isfinite(r["spearman"])]
    return correlation_from_rows(usable, block="seed", n_perm=5000) if len(usable) >= 4 else None


def summarise_study(
    runs: Sequence[dict[str, Any]],
    base: dict[str, Any],
    correct: Correctness,
    style: str,
    contrasts: ContrastsConfig | None = None,
    base_wrong: Sequence[dict[str, Any]] = (),
    base_qa: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the study's results, the tidy rows) from every run's metrics and the base model's (read by
    its probe; `base_qa`: read in the tuned models' QA format, when it was);
    `base_wrong`: analyse.correlation.base_wrong_rows of every run and set."""
    contrasts = contrasts or ContrastsConfig()
    rows = tidy_rows(runs)
    table = headline(rows, base)
    main_set = "known-heldout" if "known-heldout" in base else next(iter(base))
    tests = paired_tests(correct, runs, contrasts, main_set, style)
    acquired = acquisition_table(runs, contrasts.alpha)
    said = " ".join(x for x in (verdict(table, tests, main_set, style, contrasts.alpha),
                                acquisition_verdict(acquired, style)) if x)  # fmt: skip
    result = {
        "main_set": main_set,
        "main_style": style,
        "verdict": said,
        "table": table,
        "paired_tests": tests,
        "dose_response": dose_response(rows, main_set, style),
        "memorisation": memorisation(runs),
        "partial_correlation": correlation(rows, base),
        "base_wrong_correlation": base_wrong_correlation(base_wrong),
        "training": {f"{r['group']}/{r['style']}/s{r['seed']}": r["train"] for r in runs},
        "base": base,
        "acquisition": acquired,
        "curves": curves(runs, main_set),
    }
    if base_qa:
        result["base_qa"] = base_qa
        result["decomposition"] = decomposition(rows, base, base_qa)
    return result, rows
