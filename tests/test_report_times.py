"""The report's "where the time went" table: walls and shares add up to the total, the parts summed
over workers carry no share, and a summary without stage times gives no table."""

from iftscope.report import sections

SECONDS = {"curve": 25.5, "evaluate": 466.5, "load": 5.0, "probe": 9.5, "total": 1119.0,
           "train": 1023.0, "train_and_evaluate_wall": 768.0, "workers": 2, "world": 327.3}  # fmt: skip


def test_walls_and_other_add_up_to_the_total():
    rows = sections.time_rows({"stage_seconds": SECONDS})
    walls = [float(r[1]) for r in rows if r[2] and r[0] != "total"]
    assert abs(sum(walls) - SECONDS["total"]) < 0.2
    assert rows[-1] == ["total", "1119.0", "100%"]
    other = next(r for r in rows if r[0].startswith("other"))
    assert float(other[1]) == 14.2
    summed = [r for r in rows if "summed over workers" in r[0]]
    assert [r[1] for r in summed] == ["1023.0", "466.5"] and all(r[2] == "" for r in summed)
    assert any("(2 workers)" in r[0] for r in rows)


def test_no_stage_times_no_table():
    assert sections.time_rows({}) == []
    assert sections.time_rows({"stage_seconds": {"world": 3.0}}) == []  # no total yet
