"""Experiment trackers (issue 18 item 3): a tiny study with `report_to: [tensorboard, mlflow]`
writes one run per job under one experiment named after the study, read back offline here from
TensorBoard's event files and MLflow's local file store: the loss and learning rate of every step,
the QA accuracy at the curve points and the final metrics, the numbers of train.json and
metrics.json."""

import json

import pytest
from test_study import TINY

from iftscope import extras
from iftscope.runfolder import Job, RunFolder
from iftscope.study.recipe import load_recipe
from iftscope.study.runner import Study
from iftscope.study.validate import problems

pytest.importorskip("tensorboard")
mlflow = pytest.importorskip("mlflow")

RECIPE = [*TINY, "name=tracked", "seeds=[0]", "groups=[H]", "render.styles=[answer]", "train.steps=6"]
RECIPE += ["curve_points=3", "report_to=[tensorboard, mlflow]"]
JOB = Job(0, "H", "answer")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("tracked-study")
    cfg, _ = load_recipe(None, RECIPE)
    Study(cfg, out, progress=False).run()
    run = RunFolder(out)
    log = json.loads((run.train(JOB) / "train.json").read_text())["log"]
    metrics = json.loads((run.eval(JOB) / "metrics.json").read_text())
    return cfg, run, log, metrics


def test_tensorboard_events_hold_the_training_log_and_final_metrics(study):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg, run, log, metrics = study
    folder = run.trackers / "tensorboard" / "tracked" / "H" / "answer" / "s0"
    events = EventAccumulator(str(folder))
    events.Reload()
    scalars = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    assert [s for s, _ in scalars["train/loss"]] == [r["step"] for r in log] == list(range(1, 7))
    assert [v for _, v in scalars["train/loss"]] == pytest.approx([r["loss"] for r in log], rel=1e-6)
    assert [v for _, v in scalars["train/lr"]] == pytest.approx([r["lr"] for r in log], rel=1e-6)
    curve = [(r["step"], r["qa_accuracy"]) for r in log if "qa_accuracy" in r]
    assert [s for s, _ in curve] == [2, 4, 6]
    assert scalars["train/qa_accuracy"] == [(s, pytest.approx(v, rel=1e-6)) for s, v in curve]
    for test_set in ("known-heldout", "unknown", "heldout-attribute"):
        got = scalars[f"eval/{test_set}/accuracy"]
        assert got == [(6, pytest.approx(metrics[test_set]["accuracy"], rel=1e-6))]


def test_mlflow_file_store_holds_one_run_per_job_under_the_study(study):
    cfg, run, log, metrics = study
    mlflow.set_tracking_uri((run.trackers / "mlflow").resolve().as_uri())
    runs = mlflow.search_runs(experiment_names=["tracked"], output_format="list")
    assert [r.info.run_name for r in runs] == ["H/answer/s0"]
    r = runs[0]
    assert r.data.tags["group"] == "H" and r.data.params["train.steps"] == "6"
    assert r.data.params["seed"] == "0" and r.data.params["study"] == "tracked"
    history = mlflow.MlflowClient().get_metric_history(r.info.run_id, "train/loss")
    assert [(m.step, m.value) for m in history] == [(x["step"], pytest.approx(x["loss"])) for x in log]
    assert r.data.metrics["eval/known-heldout/accuracy"] == pytest.approx(
        metrics["known-heldout"]["accuracy"]
    )
    kappa = metrics["known-heldout"]["consistency"]["kappa"]
    assert r.data.metrics["eval/known-heldout/consistency/kappa"] == pytest.approx(kappa)
    # a rerun finds the job finished and opens no second run
    Study(cfg, run.root, progress=False).run()
    mlflow.set_tracking_uri((run.trackers / "mlflow").resolve().as_uri())
    assert len(mlflow.search_runs(experiment_names=["tracked"], output_format="list")) == 1


def test_report_to_is_checked_before_any_work(monkeypatch):
    bad, _ = load_recipe(None, ["report_to=[tensorbord, mlflow, mlflow]"])
    found = problems(bad)
    assert "report_to[0]: 'tensorbord' (allowed: tensorboard, mlflow, wandb)" in found
    assert any(p.startswith("report_to: ['tensorbord', 'mlflow', 'mlflow'] repeats") for p in found)
    real = extras.has
    monkeypatch.setattr(extras, "has", lambda *m: "mlflow" not in m and "wandb" not in m and real(*m))
    cfg, _ = load_recipe(None, ["report_to=[tensorboard, mlflow, wandb]"])
    found = [p for p in problems(cfg) if p.startswith("report_to")]
    assert found == [
        "report_to[1]: mlflow: MLflow logging needs mlflow, which is not installed: pip install "
        '"iftscope[trackers]" (or "iftscope[scale]" for every scale-out extra)',
        "report_to[2]: wandb: Weights & Biases logging needs wandb, which is not installed: "
        "pip install wandb",
    ]
