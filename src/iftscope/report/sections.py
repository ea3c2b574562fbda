"""The report's tables for both instruments, the decomposition of QA change, the groups' make-up
and the early-stopping view: plain rows of text cells, shared by the HTML and the Markdown."""

from __future__ import annotations

from typing import Any

from iftscope.report.figures import row_order


def _num(x: float | None, fmt: str = "{:.3f}") -> str:
    return "–" if x is None or x != x else fmt.format(x)


def _mean(cell: dict[str, Any] | None, fmt: str = "{:+.3f}") -> str:
    """A mean with its interval over seeds, when there is one."""
    if not cell:
        return "–"
    ci = cell.get("ci")
    return fmt.format(cell["mean"]) + (f" [{fmt.format(ci[0])}, {fmt.format(ci[1])}]" if ci else "")


INSTRUMENT_HEAD = (
    "group/style", "QA accuracy", "probe accuracy", "QA change vs base", "stored knowledge change",
    "answering pathway change", "probe-vs-probe Spearman", "QA-vs-QA Spearman",
)  # fmt: skip


def instrument_rows(result: dict[str, Any]) -> list[list[str]]:
    """On the main set: each model read with both instruments, and the QA change vs the base split
    into stored knowledge (the probe, base vs tuned) and answering pathway (the rest)."""
    s, table, dec = result["main_set"], result["table"], result.get("decomposition") or {}
    base_qa = (result.get("base_qa") or {}).get(s, {}).get("accuracy")
    rows = [["base", _num(base_qa), _num(result["base"][s]["accuracy"]), "", "", "", "", ""]]
    for key in sorted((k for k in table if k != "base"), key=row_order):
        c, d = table[key].get(s), dec.get(key, {}).get(s, {})
        if not c:
            continue
        rows.append([
            key, _mean(c["accuracy"], "{:.3f}"), _num(c.get("probe_accuracy")), _mean(d.get("qa_change")),
            _mean(d.get("knowledge_change")), _mean(d.get("pathway_change")),
            _num(c.get("probe_spearman")), _num(c.get("spearman")),
        ])  # fmt: skip
    return rows


MAKEUP_HEAD = ("group", "size", "never pretrained", "confidence categories", "base confidence quartiles")


def makeup_rows(result: dict[str, Any]) -> list[list[str]]:
    """Each group's make-up, mean over seeds (analyse.makeup)."""
    rows = []
    for name, c in sorted((result.get("composition") or {}).items(), key=lambda kv: row_order(kv[0])):
        cats = ", ".join(f"{k} {v:.0%}" for k, v in (c.get("categories") or {}).items())
        quart = ", ".join(f"{x:.3f}" for x in c.get("confidence_quartiles") or [])
        share = c.get("never_pretrained_share")
        rows.append(
            [name, _num(c.get("size"), "{:.0f}"), "–" if share is None else f"{share:.0%}", cats, quart]
        )
    return rows


def matching_text(result: dict[str, Any]) -> str:
    """How alike H's and I's base confidences are, before (the pools) and after (the groups)."""
    m = result.get("matching")
    if not m or m.get("ks_before") is None:
        return ""
    how = (
        "matched (intervene.match_confidence)"
        if m["matched"]
        else "not matched (intervene.match_confidence off)"
    )
    q = m["quartiles_after"]
    return (
        f"H and I {how}: Kolmogorov-Smirnov distance of the base model's confidence {m['ks_before']:.3f} "
        f"between the candidate pools, {_num(m['ks_after'])} between the groups drawn (quartiles H "
        f"{', '.join(f'{x:.3f}' for x in q['H'] or [])}; I {', '.join(f'{x:.3f}' for x in q['I'] or [])})."
    )


def curve_table(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows): QA accuracy on the curve questions at every curve step (mean over seeds) and
    the end value on the whole main set, per group/style; where the acquisition curve was read
    (micro-world), a second row per group/style with the taught facts asked reworded."""
    curves = result.get("curves") or {}
    steps = sorted({st for c in curves.values() for st in c["steps"]})
    rows = []
    for key in sorted(curves, key=row_order):
        c = curves[key]
        at = dict(zip(c["steps"], c["accuracy"], strict=True))
        rows.append([key if "acquisition" not in c else f"{key}: QA"]
                    + [_num(at[st]["mean"]) if st in at else "–" for st in steps]
                    + [_mean(c["end"], "{:.3f}")])  # fmt: skip
        if "acquisition" in c:
            taught = dict(zip(c["steps"], c["acquisition"], strict=True))
            rows.append([f"{key}: taught facts, reworded"]
                        + [_num(taught[st]["mean"]) if taught.get(st) else "–" for st in steps]
                        + [_mean(c.get("acquisition_end"), "{:.3f}")])  # fmt: skip
    taught = any("acquisition" in c for c in curves.values())
    end = f"end ({result['main_set']}{'; taught: the whole reworded set' if taught else ''})"
    return ["group/style"] + [f"step {st}" for st in steps] + [end], rows


CONDITIONS_HEAD = ("condition", "what", "value")
MADE_OF = {
    "target_is_gold": "its own targets that are the gold answer",
    "probe_known": "items the probe calls known",
    "truly_known": "facts the base model recalls (ground truth)",
    "target_is_gold_known": "target accuracy on the recalled facts",
    "target_is_gold_unknown": "target accuracy on the rest",
    "mean_confidence": "mean confidence of the model in its own answers",
    "confident_share": "its own answers with confidence above 0.5",
    "accepted_share": "items written that the parser accepted",
}
WRITTEN_NOTE = "questions written by the model; no gold: confidence only"


def conditions_rows(result: dict[str, Any]) -> list[list[str]]:
    """What the optional conditions add beside the groups' rows (study.conditions): the proxy's
    larger base M untuned on the main set, and how much of the self-instruct data the model knew."""
    cond, s = result.get("conditions") or {}, result["main_set"]
    rows = []
    if "large_base" in cond:
        acc = (cond["large_base"].get(s) or {}).get("accuracy")
        rows.append(["proxy", f"larger base M, untuned: accuracy on {s}", _num(acc)])
    made = (cond.get("self_instruct") or {}).get("mean") or {}
    if made.get("written"):
        rows.append(["self-instruct", "make-up", WRITTEN_NOTE])
    rows += [["self-instruct", what, _num(made[k])] for k, what in MADE_OF.items() if k in made]
    return rows


TIME_HEAD = ["stage", "seconds", "share of the wall time"]
# (key in stage_seconds, label, counted in the wall time): the walls add up to `total` with "other";
# the parts inside the train+evaluate stage are summed over its worker processes, so no share
TIME_PARTS = (
    ("world", "world: generate and pretrain the base model", True),
    ("probe", "probe the base model", True),
    ("train_and_evaluate_wall", "train and evaluate every job (wall)", True),
    ("train", "  training, summed over workers", False),
    ("load", "    of which model loading", False),
    ("curve", "    of which the QA curve", False),
    ("evaluate", "  evaluation, summed over workers", False),
)


def time_rows(result: dict[str, Any]) -> list[list[str]]:
    """Where the study's time went (summary.json's stage_seconds): each stage's wall seconds and
    share, the train+evaluate stage split into what its workers spent, and the rest (inputs,
    groups, the base model's evaluation, analysis) as "other"."""
    sec = result.get("stage_seconds") or {}
    total = sec.get("total")
    if not total:
        return []
    rows, walls = [], 0.0
    for key, label, wall in TIME_PARTS:
        if key not in sec:
            continue
        walls += sec[key] if wall else 0.0
        share = f"{sec[key] / total:.0%}" if wall else ""
        workers = f" ({sec.get('workers', 1)} workers)" if key == "train_and_evaluate_wall" else ""
        rows.append([label + workers, f"{sec[key]:.1f}", share])
    other = max(0.0, total - walls)
    rows += [["other (inputs, groups, base evaluation, analysis)", f"{other:.1f}", f"{other / total:.0%}"]]
    return rows + [["total", f"{total:.1f}", "100%"]]


def markdown_table(head, rows) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)] + [
        "| " + " | ".join(r) + " |" for r in rows
    ]


def markdown_sections(result: dict[str, Any]) -> list[str]:
    """The Markdown summary's sections for both instruments, make-up and training length."""
    lines = ["", f"## Both instruments and the decomposition of QA change ({result['main_set']})", ""]
    lines += markdown_table(INSTRUMENT_HEAD, instrument_rows(result))
    if result.get("composition"):
        lines += ["", "## Group make-up (mean over seeds)", ""]
        notes = result.get("composition_notes") or []
        lines += [*notes, ""] if notes else []
        lines += markdown_table(MAKEUP_HEAD, makeup_rows(result))
        text = matching_text(result)
        lines += ["", text] if text else []
    if conditions_rows(result):
        lines += ["", "## Optional conditions (mean over seeds)", ""]
        lines += markdown_table(CONDITIONS_HEAD, conditions_rows(result))
    head, rows = curve_table(result)
    if rows and len(head) > 2:
        lines += ["", "## QA accuracy by training length (early-stopping view)", ""]
        lines += markdown_table(head, rows)
    return lines
