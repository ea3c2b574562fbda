import pytest
from conftest import make_record, peaked

from iftscope.probe.coverage import (
    calibration_table,
    coverage,
    coverage_markdown,
    expected_calibration_error,
    letter_table,
)
from iftscope.types import Question


def rec(qid, gold, pred, conf):
    return make_record(qid, gold, peaked(pred, conf))


def test_calibration_and_ece_by_hand():
    records = [rec("a", 0, 0, 0.95), rec("b", 0, 1, 0.92), rec("c", 2, 2, 0.45), rec("d", 3, 3, 0.41)]
    table = calibration_table(records)
    assert [(r["confidence"], r["n"], r["accuracy"]) for r in table] == [
        ("0.4-0.5", 2, 1.0),
        ("0.9-1.0", 2, 0.5),
    ]
    # |0.43 - 1.0| * 2/4 + |0.935 - 0.5| * 2/4
    assert expected_calibration_error(table) == pytest.approx(0.57 / 2 + 0.435 / 2)


def test_letter_table_shows_position_bias():
    records = [rec("a", 1, 0, 0.9), rec("b", 2, 0, 0.8), rec("c", 3, 3, 0.7), rec("d", 0, 0, 0.9)]
    rows = {r["letter"]: r for r in letter_table(records, 4)}
    assert (
        rows["A"]["predicted"] == 0.75
        and rows["A"]["gold"] == 0.25
        and rows["A"]["predicted_when_wrong"] == 1.0
    )


def test_coverage_lists_confident_disagreements_first():
    qs = [Question(q, f"Q {q} | pipe?", ("w", "x", "y", "z"), 0, domain="d") for q in "abc"]
    records = [rec("a", 0, 1, 0.6), rec("b", 0, 2, 0.99), rec("c", 0, 0, 0.9)]
    cov = coverage(records, qs)
    assert [r["id"] for r in cov["suspected_label_errors"]] == ["b", "a"]
    assert cov["suspected_label_errors"][0]["model"] == "y" and cov["known"] == pytest.approx(1 / 3)
    md = coverage_markdown(cov)
    assert "| b | 0.990 | w | y | Q b \\| pipe? |" in md and "## Position bias" in md


def test_ground_truth_agreement_by_hand():
    from iftscope.microworld.groundtruth import agreement

    records = [rec("a", 0, 0, 0.9), rec("b", 0, 0, 0.3), rec("c", 0, 1, 0.9), rec("d", 0, 0, 0.8)]
    truth = {"a": True, "b": True, "c": False, "d": False}
    out = agreement(records, truth)
    assert out["correct"] == {
        "agreement": 0.75,
        "probe_known_truly_unknown": 1,
        "probe_unknown_truly_known": 0,
        "both_known": 2,
    }
    assert out["correct_confident"]["agreement"] == 0.5  # b is missed, d is a false "known"
    # generative: gold probability a 0.9, b 0.3, c 0.1/3, d 0.8 -> b missed, d a false "known"
    assert out["generative"]["agreement"] == 0.5 and out["probe"] == out["generative"]
