#!/bin/bash
# A tiny study (2 jobs) through submitit's local executor, its main process stopped with SIGTERM
# while the first job runs, then rerun; compared with the same study on the local executor.
#   bench/submitit_kill_resume.sh OUT_DIR [sigint]
# With `sigint`, the main process runs with SIGINT at its default (as in a terminal), so the jobs it
# leaves get SIGINT and stop, and the rerun submits them again; without it (a background job of a
# non-interactive shell, SIGINT ignored) the job outlives the main process and the rerun waits for
# it (its controller pid in submitit/jobs.json). Either way no job runs twice at once and the
# result must equal the local executor's (bench/compare_runs.py prints IDENTICAL).
set -u
OUT=$1; MODE=${2:-}
rm -rf "$OUT"; mkdir -p "$OUT"
ARGS=(name=tiny seeds=[0] world.world.people=20 world.world.unknown=10
  'world.model={hidden: 32, layers: 2, heads: 2, mlp: 64, max_positions: 128}'
  'world.pretrain={steps: 12, batch_size: 4, seq_len: 32, warmup: 2, eval_every: 5, checkpoint_every: 5}'
  probe.known_rule=argmax intervene.confidence=0.0 intervene.size=4
  'train={steps: 3, batch_size: 4, checkpoint_every: 0}' generation_questions=5 workers=1
  groups=[H,S] render.styles=[answer])
SUB=(executor.kind=submitit-local executor.gpus_per_job=0 executor.cpus_per_job=1
  executor.poll_seconds=0.5 executor.max_running=1)
iftscope run "${ARGS[@]}" --out "$OUT/local" --quiet > "$OUT/local.log" 2>&1 || exit 1
if [ "$MODE" = sigint ]; then
  PRE=(python -c "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])")
else
  PRE=()
fi
"${PRE[@]}" iftscope run "${ARGS[@]}" "${SUB[@]}" --out "$OUT/submitit" --quiet > "$OUT/first.log" 2>&1 &
MAIN=$!
for _ in $(seq 1 900); do [ -f "$OUT/submitit/submitit/jobs.json" ] && break; sleep 1; done
sleep 3
JOB=$(python -c "import json, sys; print(json.load(open(sys.argv[1]))['H/answer/s0']['id'])" "$OUT/submitit/submitit/jobs.json")
alive() { [ -r "/proc/$1/cmdline" ] && grep -q submitit "/proc/$1/cmdline" && echo yes || echo no; }
echo "main pid $MAIN; first job's controller $JOB running: $(alive "$JOB")"
kill -TERM "$MAIN"; wait "$MAIN"; echo "main process exit $? ($(grep -o 'terminated.*' "$OUT/first.log" | head -1))"
sleep 2
echo "first job's controller still running after the main process ended: $(alive "$JOB")"
echo "jobs finished before the rerun: $(ls "$OUT"/submitit/eval/*/answer/s0/metrics.json 2>/dev/null | wc -l)"
iftscope run "${ARGS[@]}" "${SUB[@]}" --out "$OUT/submitit" --quiet > "$OUT/rerun.log" 2>&1; echo "rerun exit $?"
echo "jobs.json: $(python -c "import json, sys; print(json.load(open(sys.argv[1])))" "$OUT/submitit/submitit/jobs.json")"
echo "submitit job folders (one per process started): $(ls "$OUT/submitit/submitit" | grep -v -e jobs.json -e '%j' | tr '\n' ' ')"
python "$(dirname "$0")/compare_runs.py" "$OUT/local" "$OUT/submitit"
