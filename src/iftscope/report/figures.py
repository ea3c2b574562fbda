"""The report's figures, drawn with matplotlib and returned as base64 PNGs (works offline)."""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

GROUP_ORDER = ("base", "H", "S", "mix", "I", "I-context", "counterfactual", "unknown-gold")


def row_order(key: str) -> tuple:
    """Base first, then H, S, the mixtures (most self-aligning first), I and the rest."""
    group, _, style = key.partition("/")
    head = "mix" if group.startswith("mix-") else group
    rank = GROUP_ORDER.index(head) if head in GROUP_ORDER else len(GROUP_ORDER)
    ratio = -float(group[4:]) if head == "mix" else 0.0
    return rank, ratio, group, style


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def accuracy_bars(result: dict[str, Any]) -> str:
    """Groups x test sets: mean accuracy with 95% CI over seeds, the base model as a line."""
    table = result["table"]
    keys = sorted((k for k in table if k != "base"), key=row_order)  # the table's order
    sets = sorted({s for k in keys for s in table[k]})
    fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets), 3.6), squeeze=False)
    for ax, s in zip(axes[0], sets, strict=True):
        means = [table[k].get(s, {}).get("accuracy", {}).get("mean", float("nan")) for k in keys]
        errs = []
        for k, m in zip(keys, means, strict=True):
            ci = table[k].get(s, {}).get("accuracy", {}).get("ci")
            errs.append((m - ci[0], ci[1] - m) if ci else (0, 0))
        ax.bar(
            range(len(keys)),
            means,
            yerr=list(zip(*errs, strict=True)) if errs else None,
            capsize=3,
            color="#4c78a8",
        )
        base = table["base"].get(s, {}).get("accuracy", {}).get("mean")
        if base is not None:
            ax.axhline(base, color="#e45756", linestyle="--", label="base")
            ax.legend(fontsize=8)
        ax.set_xticks(range(len(keys)), keys, rotation=60, ha="right", fontsize=8)
        ax.set_ylim(0, 1.03)  # a bar at 1.0 stays visible above the frame
        ax.set_title(s, fontsize=10)
        ax.set_ylabel("accuracy")
    return _png(fig)


def consistency_scatter(result: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """Consistency with the base model (Spearman) vs tuned accuracy, one point per run and set."""
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    pc = result.get("partial_correlation")
    x = (pc or {}).get("x", "spearman")  # the instrument the correlation used (probe vs probe, if read)
    for s in sorted({r["set"] for r in rows}):
        rs = [r for r in rows if r["set"] == s and r.get(x) is not None]
        ax.scatter([r[x] for r in rs], [r["accuracy"] for r in rs], label=s, s=18, alpha=0.8)
    title = "consistency vs accuracy"
    if pc and pc.get("r") == pc.get("r"):
        title += f"\nr within test sets = {pc['r']:.2f}, p = {pc['p_value']:.3g}"
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(f"{x}: Spearman(base, tuned) option distributions")
    ax.set_ylabel("tuned QA accuracy")
    ax.legend(fontsize=7)
    return _png(fig)


def loss_curves(result: dict[str, Any]) -> str:
    """Training loss and held-out QA accuracy at checkpoints per group (first seed, main style)."""
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    style, seen = result["main_style"], set()
    for key, tr in sorted(result["training"].items(), key=lambda kv: row_order(kv[0].rsplit("/", 1)[0])):
        group, st, _ = key.split("/")
        if st != style or group in seen or not tr.get("loss_curve"):
            continue
        seen.add(group)
        (line,) = ax.plot(range(1, len(tr["loss_curve"]) + 1), tr["loss_curve"], label=group, linewidth=1)
        if tr.get("qa_curve"):
            steps, acc = zip(*tr["qa_curve"], strict=True)
            ax2.plot(steps, acc, marker="o", markersize=3, color=line.get_color(), label=group, linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (response tokens)")
    ax.set_title(f"training loss, style '{style}'", fontsize=9)
    ax.legend(fontsize=7)
    ax2.set_xlabel("step")
    ax2.set_ylabel(f"QA accuracy ({result['main_set']}, sample)")
    ax2.set_ylim(0, 1.03)
    ax2.set_title("held-out QA accuracy during training", fontsize=9)
    return _png(fig)


def coverage_bars(probe: dict[str, Any]) -> str:
    """What the base model already knew, per domain."""
    per = probe.get("per_domain", {})
    names = list(per)
    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    ax.bar(
        range(len(names)),
        [per[n].get("known", per[n]["accuracy"]) for n in names],
        color="#72b7b2",
        label="known",
    )
    ax.plot(range(len(names)), [per[n]["accuracy"] for n in names], "o", color="#333", label="accuracy")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title("base model coverage", fontsize=9)
    ax.legend(fontsize=7)
    return _png(fig)


def token_shift(result: dict[str, Any]) -> str:
    """URIAL: fractions of unshifted / marginal / shifted tokens, answer token vs the rest."""
    table, s = result["table"], result["main_set"]
    keys = [k for k in table if k != "base" and table[k].get(s, {}).get("answer_unshifted") is not None]
    keys.sort(key=row_order)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    colours = {"unshifted": "#54a24b", "marginal": "#eeca3b", "shifted": "#e45756"}
    for ax, part in zip(axes, ("answer", "other"), strict=True):
        bottom = [0.0] * len(keys)
        for level, colour in colours.items():
            vals = [table[k][s].get(f"{part}_{level}") or 0.0 for k in keys]
            ax.bar(range(len(keys)), vals, bottom=bottom, color=colour, label=level)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        ax.set_xticks(range(len(keys)), keys, rotation=60, ha="right", fontsize=7)
        ax.set_title(f"{'answer token' if part == 'answer' else 'other tokens'} ({s})", fontsize=9)
    axes[0].set_ylabel("fraction of tokens")
    axes[1].legend(fontsize=7)
    return _png(fig)


def dose_response(result: dict[str, Any]) -> str | None:
    """Accuracy against the share of self-aligning targets among I's items (I = 0, nested mixtures,
    S = 1): each seed's line, the mean with its 95% t interval, the slope test in the title."""
    dr = result.get("dose_response")
    if not dr:
        return None
    r, acc = dr["r"], dr["accuracy"]
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    for i in range(len(acc[0]["values"])):
        ax.plot(r, [a["values"][i] for a in acc], color="#bbb", lw=0.8, label="one seed" if i == 0 else None)
    means = [a["mean"] for a in acc]
    lo = [a["ci"][0] if a.get("ci") else a["mean"] for a in acc]
    hi = [a["ci"][1] if a.get("ci") else a["mean"] for a in acc]
    ax.fill_between(r, lo, hi, color="#4c78a8", alpha=0.2, lw=0)
    ax.plot(r, means, "o-", color="#4c78a8", label="mean over seeds")
    for x, g, m in zip(r, dr["groups"], means, strict=True):
        ax.annotate(g, (x, m), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
    p = f"p = {dr['p_value']:.3g}" if dr["p_value"] is not None else f"{dr['seeds']} seed(s): no test"
    ax.set_title(f"{dr['set']}: slope {dr['slope']:+.3f} per unit of r ({p})", fontsize=9)
    ax.set_xlabel("share of I's items with the model's own answer as target (r)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.03)
    ax.legend(fontsize=7)
    return _png(fig)
