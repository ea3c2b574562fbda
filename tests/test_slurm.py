"""The study's jobs through submitit (issue 18 item 2): the sbatch file is what the recipe says; a
study run with submitit's local executor (the same pickled-job path as Slurm, less the scheduler)
gives the summary.json and runs.csv of the local executor; the waiting loop throttles, lists failed
jobs with their logs, re-attaches to Slurm jobs still alive and leaves them running when stopped."""

import sys
from pathlib import Path

import pytest
from test_study import TINY

from iftscope import extras
from iftscope.runfolder import Job, RunFolder
from iftscope.runs import atomic_write_json, read_json
from iftscope.study import slurm
from iftscope.study.recipe import load_recipe
from iftscope.study.runner import Study
from iftscope.study.validate import problems

submitit = pytest.importorskip("submitit")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import compare_runs  # noqa: E402

ONE_JOB = [*TINY, "seeds=[0]", "groups=[H]", "render.styles=[answer]"]
LOCAL_SUBMITIT = ["executor.kind=submitit-local", "executor.gpus_per_job=0", "executor.cpus_per_job=1"]
LOCAL_SUBMITIT += ["executor.poll_seconds=0.2"]


def test_the_sbatch_file_says_what_the_recipe_says(tmp_path, monkeypatch):
    from submitit.slurm.slurm import SlurmExecutor

    monkeypatch.setattr(SlurmExecutor, "affinity", classmethod(lambda cls: 2))  # no srun on this machine
    cfg, _ = load_recipe(None, [
        "name=big", "executor.kind=slurm", "executor.partition=gpu", "executor.account=lab",
        "executor.gpus_per_job=4", "executor.cpus_per_job=32", "executor.mem_gb=200", "executor.time_min=720",
        "executor.sbatch={qos: high, constraint: a100}",
        "executor.setup=[module load cuda, source venv/bin/activate]",
    ])  # fmt: skip
    run = RunFolder(tmp_path)
    text = slurm.make_executor(cfg, run)._executor._make_submission_file_text("COMMAND", "uid")
    options = {
        line.split("=")[0]: line.split("=", 1)[1] for line in text.splitlines() if line.startswith("#SBATCH")
    }
    assert options["#SBATCH --partition"] == "gpu" and options["#SBATCH --account"] == "lab"
    assert options["#SBATCH --gpus-per-node"] == "4" and options["#SBATCH --cpus-per-task"] == "32"
    assert options["#SBATCH --mem"] == "200GB" and options["#SBATCH --time"] == "720"
    assert options["#SBATCH --qos"] == "high" and options["#SBATCH --constraint"] == "a100"
    assert options["#SBATCH --nodes"] == "1" and options["#SBATCH --ntasks-per-node"] == "1"
    assert options["#SBATCH --job-name"] == "iftscope-big"
    assert options["#SBATCH --output"].startswith(str(tmp_path / "submitit"))
    assert "module load cuda\nsource venv/bin/activate\n" in text and text.rstrip().endswith("COMMAND")
    assert slurm.in_allocation(cfg).launch.processes == 4  # trains on its 4 GPUs under accelerate launch
    one, _ = load_recipe(None, ["executor.kind=slurm", "executor.gpus_per_job=1"])
    assert slurm.in_allocation(one).launch.processes == 1 and "#SBATCH --partition" not in (
        slurm.make_executor(one, run)._executor._make_submission_file_text("C", "u")
    )


@pytest.mark.slow  # about 80 s on 2 busy cores: two studies, the second's job in its own process
def test_a_study_through_submitit_gives_the_local_executors_results(tmp_path):
    local, _ = load_recipe(None, ONE_JOB)
    through, _ = load_recipe(None, [*ONE_JOB, *LOCAL_SUBMITIT])
    Study(local, tmp_path / "local", progress=False).run()
    Study(through, tmp_path / "submitit", progress=False).run()
    assert compare_runs.main([str(tmp_path / "local"), str(tmp_path / "submitit")]) == 0
    run = RunFolder(tmp_path / "submitit")
    recorded = read_json(run.submitted)
    assert list(recorded) == ["H/answer/s0"] and recorded["H/answer/s0"]["kind"] == "submitit-local"
    job_id = recorded["H/answer/s0"]["id"]
    assert (run.submitit / job_id / f"{job_id}_0_result.pkl").exists()
    # a rerun finds every job done in the run folder and submits nothing
    Study(through, run.root, progress=False).run()
    assert read_json(run.submitted) == recorded
    assert compare_runs.main([str(tmp_path / "local"), str(run.root)]) == 0


def test_a_job_runs_in_its_own_process_and_its_error_comes_back_with_its_log(tmp_path):
    """The real submitit path, quickly: the job is pickled, run by a fresh Python process, and
    fails there at once (its data file is missing); the error and the log come back."""
    cfg, _ = load_recipe(None, [*LOCAL_SUBMITIT, "data.model=/nowhere", f"data.ift=[{tmp_path}/ift.jsonl]"])
    run = RunFolder(tmp_path / "run")
    with pytest.raises(RuntimeError) as e:
        slurm.run_submitted(cfg, run, None, [Job(0, "H", "answer")], progress=False)
    job_id = read_json(run.submitted)["H/answer/s0"]["id"]
    log = run.submitit / job_id / f"{job_id}_0_log.err"
    assert f"H/answer/s0 (job {job_id}): " in str(e.value) and "ift.jsonl" in str(e.value)
    assert f"log: {log}" in str(e.value) and "ift.jsonl" in log.read_text()


class FakeHandle:
    """A submitit job handle that ends after `polls` checks, with a result or an error."""

    def __init__(self, job_id, outcome, polls=1):
        self.job_id, self.outcome, self.polls, self.cancelled = job_id, outcome, polls, False
        self.paths = type("Paths", (), {"stderr": Path(f"/logs/{job_id}.err")})()

    def done(self):
        self.polls -= 1
        return self.polls < 0

    def result(self):
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome

    def cancel(self, check=True):
        self.cancelled = True


class FakeExecutor:
    def __init__(self, outcomes, polls=1):
        self.outcomes, self.polls, self.handles, self.live, self.most = outcomes, polls, [], 0, 0

    def submit(self, fn, cfg, root, job):
        handle = FakeHandle(str(100 + len(self.handles)), self.outcomes[job.group], self.polls)
        self.handles.append(handle)
        return handle


def _fake(monkeypatch, tmp_path, outcomes, recipe=(), polls=1):
    cfg, _ = load_recipe(None, [*LOCAL_SUBMITIT, *recipe])
    executor = FakeExecutor(outcomes, polls)
    monkeypatch.setattr(slurm, "make_executor", lambda cfg, run: executor)
    monkeypatch.setattr(slurm, "_collect", lambda *a: ([], {}))
    jobs = [Job(0, g, "answer") for g in outcomes]
    return cfg, RunFolder(tmp_path), jobs, executor


def test_failed_jobs_are_listed_with_their_logs_after_the_others_end(tmp_path, monkeypatch):
    ok = {"train_seconds": 1.0, "evaluate_seconds": 2.0, "load_seconds": 0.0, "curve_seconds": 0.0}
    cfg, run, jobs, executor = _fake(
        monkeypatch, tmp_path, {"H": ok, "S": RuntimeError("boom\nCUDA out of memory")}
    )
    with pytest.raises(RuntimeError) as e:
        slurm.run_submitted(cfg, run, None, jobs, progress=False)
    assert "1 job(s) failed" in str(e.value)
    assert "S/answer/s0 (job 101): CUDA out of memory; log: /logs/101.err" in str(e.value)
    assert read_json(run.submitted) == {
        "H/answer/s0": {"id": "100", "kind": "submitit-local"},
        "S/answer/s0": {"id": "101", "kind": "submitit-local"},
    }


def test_max_running_throttles_the_submissions(tmp_path, monkeypatch):
    ok = dict.fromkeys(("train_seconds", "evaluate_seconds", "load_seconds", "curve_seconds"), 0.0)
    cfg, run, jobs, executor = _fake(
        monkeypatch, tmp_path, {g: ok for g in ("H", "I", "S")}, ["executor.max_running=1"], polls=2
    )
    submitted_when = []
    real = executor.submit
    monkeypatch.setattr(executor, "submit", lambda *a: submitted_when.append(
        sum(not h.polls < 0 for h in executor.handles)) or real(*a))  # fmt: skip
    slurm.run_submitted(cfg, run, None, jobs, progress=False)
    assert len(executor.handles) == 3 and submitted_when == [0, 0, 0]  # one at a time


def test_stopped_main_process_cancels_local_jobs_and_leaves_slurm_jobs_running(tmp_path, monkeypatch, capsys):
    ok = dict.fromkeys(("train_seconds", "evaluate_seconds", "load_seconds", "curve_seconds"), 0.0)
    for kind, cancelled in (("submitit-local", True), ("slurm", False)):
        cfg, run, jobs, executor = _fake(
            monkeypatch, tmp_path / kind, {"H": ok}, [f"executor.kind={kind}"], 99
        )
        monkeypatch.setattr(slurm.time, "sleep", lambda s: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            slurm.run_submitted(cfg, run, None, jobs, progress=False)
        assert executor.handles[0].cancelled is cancelled
    assert "1 job(s) still queued or running on Slurm (100); rerun" in capsys.readouterr().err


def test_a_rerun_reattaches_to_jobs_still_alive_and_resubmits_the_others(tmp_path, monkeypatch):
    import subprocess

    states = {"7": "RUNNING", "8": "FAILED", "9": "PENDING"}

    class FakeSlurmJob:
        def __init__(self, folder, job_id):
            self.job_id, self.state = job_id, states[job_id]

    monkeypatch.setattr(submitit, "SlurmJob", FakeSlurmJob)
    # a submitit-local controller left by a main process that was killed: still running
    controller = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "submitit"])
    try:
        run = RunFolder(tmp_path)
        atomic_write_json(run.submitted, {
            "H/answer/s0": {"id": "7", "kind": "slurm"}, "I/answer/s0": {"id": "8", "kind": "slurm"},
            "S/answer/s0": {"id": str(controller.pid), "kind": "submitit-local"},
            "H/explained/s0": {"id": "999999999", "kind": "submitit-local"},
        })  # fmt: skip
        recorded = slurm._recorded(run)
        cfg, _ = load_recipe(None, ["executor.kind=slurm"])
        assert slurm._reattach(cfg, run, Job(0, "H", "answer"), recorded).job_id == "7"
        assert slurm._reattach(cfg, run, Job(0, "I", "answer"), recorded) is None  # ended: submit again
        assert slurm._reattach(cfg, run, Job(0, "S", "answer"), recorded) is None  # another executor's
        assert slurm._reattach(cfg, run, Job(0, "S", "explained"), recorded) is None  # never submitted
        local, _ = load_recipe(None, LOCAL_SUBMITIT)
        assert slurm._reattach(local, run, Job(0, "H", "answer"), recorded) is None
        assert slurm._reattach(local, run, Job(0, "H", "explained"), recorded) is None  # no such process
        handle = slurm._reattach(local, run, Job(0, "S", "answer"), recorded)
        assert handle.job_id == str(controller.pid) and not handle.done()
        controller.terminate()
        controller.wait(timeout=30)
        assert handle.done()
    finally:
        controller.kill()
        controller.wait()


def test_the_executor_block_is_checked_before_any_work(monkeypatch):
    bad, _ = load_recipe(None, [
        "executor.kind=pbs", "executor.mem_gb=0", "executor.sbatch={--qos: high}", "executor.max_running=-1",
    ])  # fmt: skip
    found = problems(bad)
    assert "executor.kind: 'pbs' (allowed: local, slurm, submitit-local)" in found
    assert "executor.mem_gb: 0 (must be >= 1)" in found and "executor.max_running: -1 (must be >= 0)" in found
    assert any(p.startswith("executor.sbatch.--qos: an option name without dashes") for p in found)
    clash, _ = load_recipe(None, ["executor.kind=slurm", "executor.gpus_per_job=4", "launch.processes=2"])
    assert any(p.startswith("launch.processes: 2 but executor.gpus_per_job 4") for p in problems(clash))
    shared, _ = load_recipe(None, ["executor.kind=slurm", "adapters_per_pass=4"])
    assert any(p.startswith("adapters_per_pass: 4 with executor.kind slurm") for p in problems(shared))
    real = extras.has
    monkeypatch.setattr(extras, "has", lambda *m: "submitit" not in m and real(*m))
    cfg, _ = load_recipe(None, ["executor.kind=slurm"])
    assert [p for p in problems(cfg) if p.startswith("executor")] == [
        "executor.kind: slurm: the study's jobs through submitit needs submitit, which is not installed: "
        'pip install "iftscope[slurm]" (or "iftscope[scale]" for every scale-out extra)'
    ]
    default, _ = load_recipe(None, [])
    assert default.executor.kind == "local" and not [p for p in problems(default) if p.startswith("executor")]
