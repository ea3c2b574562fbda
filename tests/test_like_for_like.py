"""Issue 15 (items 1, 3, 4, 5): both instruments and the decomposition of QA change, one rule
family for H and I, confidence-matched groups, the groups' make-up, confidence categories as
groups, and the early-stopping view. Hand-made records, no model."""

import random

import pytest
from conftest import make_record, peaked
from scipy import stats

from iftscope.analyse.instruments import curves, decomposition, instrument_columns
from iftscope.analyse.makeup import group_makeup
from iftscope.intervene.groups import InterveneConfig, build_groups, candidate_pools
from iftscope.intervene.matching import composition, match_report
from iftscope.probe.knowledge import CONFIDENCE_CATEGORIES
from iftscope.study.recipe import load_recipe
from iftscope.study.validate import problems
from iftscope.types import Question


def _rows(accuracy, probe_accuracy, group="I", s="T"):
    return [
        {"group": group, "style": "answer", "seed": seed, "set": s, "accuracy": a, "probe_accuracy": p}
        for seed, (a, p) in enumerate(zip(accuracy, probe_accuracy, strict=True))
    ]


def test_decomposition_sums_to_the_qa_change():
    rows = _rows([0.32, 0.30, 0.35], [0.80, 0.78, 0.84]) + _rows([0.9, 0.88, 0.91], [0.95, 0.96, 0.94], "H")
    base, base_qa = {"T": {"accuracy": 0.97}}, {"T": {"accuracy": 0.26}}
    dec = decomposition(rows, base, base_qa)
    i = dec["I/answer"]["T"]
    assert i["qa_change"]["values"] == pytest.approx([0.32 - 0.26, 0.30 - 0.26, 0.35 - 0.26])
    assert i["knowledge_change"]["values"] == pytest.approx([0.80 - 0.97, 0.78 - 0.97, 0.84 - 0.97])
    for cell in (dec["I/answer"]["T"], dec["H/answer"]["T"]):
        parts = [cell[x]["values"] for x in ("qa_change", "knowledge_change", "pathway_change")]
        for q, k, p in zip(*parts, strict=True):
            assert q == pytest.approx(k + p)
        assert cell["qa_change"]["mean"] == pytest.approx(
            cell["knowledge_change"]["mean"] + cell["pathway_change"]["mean"]
        )
        assert cell["qa_change"]["ci"] is not None and cell["seeds"] == [0, 1, 2]
    # the pathway change is (tuned QA - tuned probe) - (base QA - base probe)
    assert i["pathway_change"]["values"][0] == pytest.approx((0.32 - 0.80) - (0.26 - 0.97))
    assert decomposition(rows, base, None) is None  # the base was not read in QA format
    assert decomposition(_rows([0.3], [None]), base, base_qa) is None  # no run read by the probe


def test_instrument_columns_keep_the_mixed_comparison_apart():
    probe = {"accuracy": 0.8, "consistency": {"spearman": 0.9, "kl_base_tuned": 0.1, "argmax_agreement": 0.7}}
    cols = instrument_columns(probe, {"spearman": 0.2, "kl_base_tuned": 2.0})
    assert cols["probe_spearman"] == 0.9 and cols["mixed_spearman"] == 0.2 and cols["probe_accuracy"] == 0.8
    assert set(instrument_columns({}, None).values()) == {None}


def _q(qid, metadata=None):
    return Question(qid, f"question {qid}?", ("a", "b", "c", "d"), 0, domain="d", metadata=metadata or {})


def _questions(n, known):
    meta = {"known": known, "split": "known_ift" if known else "unknown_ift"}
    return [_q(f"q{i}-{known}", meta) for i in range(n)]


def _skewed_pools(seed=0):
    """H right and nearly always very sure; I wrong with confidence spread over (0.5, 1)."""
    rng = random.Random(seed)
    qs_h, qs_i = _questions(300, True), _questions(120, False)
    recs = [make_record(q.id, 0, peaked(0, 1 - 10 ** rng.uniform(-4, -0.4))) for q in qs_h]
    recs += [make_record(q.id, 0, peaked(1, rng.uniform(0.51, 0.999))) for q in qs_i]
    return qs_h + qs_i, recs


def _ks(groups):
    conf = {g.name: [it.base_confidence for it in g.items] for g in groups}
    return stats.ks_2samp(conf["H"], conf["I"]).statistic, conf


def test_matched_groups_have_closer_confidence_distributions():
    qs, recs = _skewed_pools()
    base = InterveneConfig(mixtures=(), micro_world=False, contextualized=False)
    plain = build_groups(qs, recs, base)
    matched = build_groups(qs, recs, InterveneConfig(**{**base.__dict__, "match_confidence": True}))
    ks_plain, _ = _ks(plain)
    ks_matched, conf = _ks(matched)
    assert ks_matched < ks_plain / 2 and ks_matched < 0.2
    assert len(conf["H"]) == len(conf["I"]) == len(matched[2].items)  # S keeps I's items, one size
    assert [g.items for g in matched] == [
        g.items
        for g in build_groups(qs, recs, InterveneConfig(**{**base.__dict__, "match_confidence": True}))
    ]  # seeded
    report = match_report(candidate_pools(qs, recs, base), conf)
    assert report["ks_after"] == pytest.approx(ks_matched) and report["ks_before"] > report["ks_after"]
    with pytest.raises(ValueError, match="overlap in only"):
        build_groups(qs, recs, InterveneConfig(**{**base.__dict__, "match_confidence": True, "size": 119}))


def test_one_rule_family_for_h_and_i_and_the_old_rule_selectable():
    qs = _questions(4, True)
    recs = [  # right and sure but not "known" by the generative rule; right and unsure; wrong and sure
        make_record(qs[0].id, 0, peaked(0, 0.9), known=False),
        make_record(qs[1].id, 0, peaked(0, 0.4), known=True),
        make_record(qs[2].id, 0, peaked(1, 0.9)),
        make_record(qs[3].id, 0, peaked(1, 0.45)),
    ]
    pools = candidate_pools(qs, recs, InterveneConfig(confidence=0.5))
    assert [q.id for q, _ in pools["H"]] == [qs[0].id] and [q.id for q, _ in pools["I"]] == [qs[2].id]
    old = candidate_pools(qs, recs, InterveneConfig(confidence=0.5, rule="known"))
    assert [q.id for q, _ in old["H"]] == [qs[1].id]
    with pytest.raises(ValueError, match="intervene.rule"):
        candidate_pools(qs, recs, InterveneConfig(rule="nope"))


def test_confidence_categories_are_selectable_groups_and_checked():
    qs = _questions(6, True)
    cats = ["AllViewsRight", "SomeViewsRight"] * 3
    recs = [make_record(q.id, 0, peaked(0, 0.9), category=c) for q, c in zip(qs, cats, strict=True)]
    cfg = InterveneConfig(confidence=0.0, mixtures=(), micro_world=False, categories=("SomeViewsRight",))
    recs += [make_record(f"w{i}", 0, peaked(1, 0.9)) for i in range(3)]
    qs += [_q(f"w{i}") for i in range(3)]
    groups = {g.name: g for g in build_groups(qs, recs, cfg)}
    by_id = {r.question_id: r for r in recs}
    assert {by_id[it.question_id].category for it in groups["cat-SomeViewsRight"].items} == {"SomeViewsRight"}
    assert all(it.target == it.gold for it in groups["cat-SomeViewsRight"].items)
    assert set(CONFIDENCE_CATEGORIES) == {
        "AllViewsRight",
        "SomeViewsRight",
        "GoldPlausible",
        "GoldImplausible",
    }
    cfg, _ = load_recipe(
        None, ["intervene.categories=[HighlyKnown]", "intervene.rule=x", "groups=[cat-AllViewsRight]"]
    )
    found = "\n".join(problems(cfg))
    assert "intervene.categories[0]: 'HighlyKnown'" in found and "intervene.rule: 'x'" in found
    assert "unknown group 'cat-AllViewsRight'" in found  # only the categories asked for are groups


def test_composition_and_the_computed_note_on_i():
    meta = {"known": True, "split": "known_ift"}
    right = [_q(f"h{i}", meta) for i in range(10)]
    wrong = _questions(4, True) + _questions(16, False)
    qs = right + wrong
    recs = [make_record(q.id, 0, peaked(0, 0.9), category="AllViewsRight") for q in right]
    recs += [make_record(q.id, 0, peaked(1, 0.8), category="GoldImplausible") for q in wrong]
    cfg = InterveneConfig(mixtures=(), micro_world=False, contextualized=False, size=10)
    i_group = next(g for g in build_groups(qs, recs, cfg) if g.name == "I")
    comp = composition(i_group, {q.id: q for q in qs}, {r.question_id: r for r in recs})
    by_id = {q.id: q for q in qs}
    never = sum(not by_id[it.question_id].metadata["known"] for it in i_group.items)
    assert comp["never_pretrained_share"] == pytest.approx(never / 10)
    assert comp["categories"] == {"GoldImplausible": 1.0}
    assert comp["confidence_quartiles"] == pytest.approx([0.8, 0.8, 0.8])

    def seed(share):
        return {"groups": {"I": {"size": 10, "composition": {**comp, "never_pretrained_share": share}}}}

    made = group_makeup({0: seed(0.9), 1: seed(0.7)})
    assert made["composition"]["I"]["never_pretrained_share"] == pytest.approx(0.8)
    assert made["composition"]["I"]["seeds"] == 2 and made["composition"]["I"]["size"] == 10
    assert len(made["composition_notes"]) == 1 and "80%" in made["composition_notes"][0]
    assert group_makeup({0: seed(0.2)})["composition_notes"] == []


def test_curves_give_every_step_and_the_end():
    runs = [
        {"group": "I", "style": "answer", "seed": s, "train": {"qa_curve": [[10, 0.2 + s / 10], [20, 0.4]]},
         "metrics": {"T": {"accuracy": 0.5 + s / 10}}}
        for s in range(3)
    ]  # fmt: skip
    c = curves(runs, "T")["I/answer"]
    assert c["steps"] == [10, 20]
    assert c["accuracy"][0]["mean"] == pytest.approx(0.3) and c["accuracy"][1]["values"] == [0.4] * 3
    assert c["end"]["mean"] == pytest.approx(0.6) and c["end"]["ci"] is not None
    assert "acquisition" not in c  # no acquisition curve recorded: none reported


def test_curves_give_acquisition_at_every_step_beside_qa():
    runs = [
        {"group": "I", "style": "answer", "seed": s,
         "train": {"qa_curve": [[10, 0.2], [20, 0.4]], "acquisition_curve": [[10, 0.3 + s / 10], [20, 0.9]]},
         "metrics": {"T": {"accuracy": 0.5}, "_acquisition": {"reworded": {"accuracy": 0.8 + s / 20}}}}
        for s in range(3)
    ]  # fmt: skip
    c = curves(runs, "T")["I/answer"]
    assert c["acquisition"][0]["mean"] == pytest.approx(0.4) and c["acquisition"][1]["values"] == [0.9] * 3
    assert c["acquisition_end"]["mean"] == pytest.approx(0.85)
    from iftscope.report.sections import curve_table

    head, rows = curve_table({"curves": {"I/answer": c}, "main_set": "T"})
    assert head[-1].startswith("end (T; taught")
    assert [r[0] for r in rows] == ["I/answer: QA", "I/answer: taught facts, reworded"]
    assert rows[1][1:3] == ["0.400", "0.900"] and rows[1][-1].startswith("0.850 [")
