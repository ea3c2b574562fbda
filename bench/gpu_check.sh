#!/usr/bin/env bash
# The prepared GPU check (bench/gpu_check.py; docs/gpu-check.md), in two steps:
#
#   bench/gpu_check.sh prepare        HERE, in the checkout's root, with its venv active: fills the
#                                     git-ignored folder .gpucheck/ with what the GPU machine lacks:
#                                     wheels (lm-eval, TRL, datasets ... pinned to this venv's
#                                     versions), the real SentencePiece file tokenizer.model.v1
#                                     (instead of the whole mistral-common wheel) and the Xiezhi
#                                     engineering files. About 15 MiB; it travels as `carry: [.gpucheck]`.
#   bench/gpu_check.sh run [BUDGET]   THERE, in the repository root: installs the wheels into
#                                     /tmp/site (no network), puts src/ on the path and runs every
#                                     stage within BUDGET seconds (default 420) into $OUT/gpu_check
#                                     (or ./gpu_check_out), one JSON per stage as each ends, and
#                                     log.txt: 8 files, what the device tool brings back.
set -uo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
kit="$here/.gpucheck"
# Missing from the GPU image (the device tool's KINDS.md package list) and needed by the check:
# lm-eval and TRL with their own needs, and datasets (which both read data with).
WHEELS="datasets dill multiprocess lm-eval evaluate trl pydantic pydantic-core pydantic-extra-types
annotated-types typing-inspection jsonschema jsonschema-specifications referencing rpds-py sqlitedict
pytablewriter dataproperty mbstrdecoder pathvalidate tabledata tcolorpy typepy chardet rouge-score nltk
word2number more-itertools defusedxml tzdata httpx2 httpcore2 truststore"

prepare() {
  grep -qx '/.gpucheck/' "$here/.git/info/exclude" 2>/dev/null || echo '/.gpucheck/' >>"$here/.git/info/exclude"
  mkdir -p "$kit/whl" "$kit/xiezhi"
  local name version
  for name in $WHEELS; do
    version="$(python -c "import importlib.metadata as m; print(m.version('$name'))" 2>/dev/null)" || {
      echo "skip $name: not installed here (pip install -e '.[bench]' first)"; continue; }
    python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$kit/whl" "$name==$version" \
      || echo "could not download $name==$version"
  done
  python -c "import mistral_common, pathlib, shutil; shutil.copy(pathlib.Path(mistral_common.__file__).parent / 'data' / 'tokenizer.model.v1', '$kit/')"
  [ -d "$here/../shared/data/xiezhi/engineering" ] && cp -r "$here/../shared/data/xiezhi/engineering" "$kit/xiezhi/"
  # the GPU machine gets the working tree without .git: say which commit (and whether src/ differs)
  (cd "$here" && git rev-parse HEAD && git status --porcelain -- src | head -20) >"$kit/commit"
  du -sh "$kit"
}

run() {
  local budget="${1:-420}" out="${OUT:-$here/gpu_check_out}/gpu_check"
  shift || true  # the rest goes to gpu_check.py (a rerun: --stages 3,6)
  cd "$here" || exit 1
  if ls "$kit"/whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      "$kit"/whl/*.whl || echo "some wheels did not install: the stages that need them will say so"
    export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
  fi
  export PYTHONPATH="$here/src:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
  [ -f "$kit/commit" ] && export GPU_CHECK_COMMIT="$(tr '\n' ' ' <"$kit/commit")"
  local extra=()
  [ -f "$kit/tokenizer.model.v1" ] && extra+=(--tokenizer-model "$kit/tokenizer.model.v1")
  [ -d "$kit/xiezhi/engineering" ] && extra+=(--data "$kit/xiezhi")
  mkdir -p "$out"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$out/log.txt" 2>&1
  # the script stops starting stages at BUDGET; the hard limit leaves a minute for the stage in flight
  timeout $((budget + 90)) python3 bench/gpu_check.py --out "$out" --budget "$budget" "${extra[@]}" "$@" 2>&1 \
    | tee -a "$out/log.txt" | grep --line-buffered -E '^\[gpu_check\]|Error|error'
  echo "exit ${PIPESTATUS[0]}; files:"; ls -la "$out"
}

case "${1:-}" in
  prepare) prepare ;;
  run) shift; run "$@" ;;
  *) echo "usage: $0 prepare | run [BUDGET_SECONDS]"; exit 2 ;;
esac
