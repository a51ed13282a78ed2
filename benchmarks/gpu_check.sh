#!/usr/bin/env bash
# One short GPU check of the reference model for a lent H100 / H200 (at most BUDGET=520 s, < 9 minutes).
#
#   OUT=/path/to/results bash benchmarks/gpu_check.sh      # run from the repository root
#
# Installs the project without touching torch (the machine has a CUDA build and no network),
# runs the gpu-marked tests, GPU statistics and GPU near-duplicate search against the CPU path
# (benchmarks/bench_gpu.py), the training-throughput benchmark (fp32 eager vs bf16 + fused
# AdamW vs bf16 + fused + torch.compile, 2,048 / 4,096 / 8,192 queries x 20 candidates a
# step) and one full `audit run --model reference --device cuda` (clean data, full preset).
# Everything is logged to $OUT (8 files at most, what the device tool returns): gpu_check.log,
# gpu_tests.xml, bench_{gpu,eager,raw_inputs,audit,compile}.json and audit_results.json.
# Dry run of the plumbing on a machine without a GPU (tiny sizes, the quick-preset audit, no
# compile row; about 2 minutes):
#   DEVICE=cpu PYTHON=.venv/bin/python OUT=/tmp/gpu_dry bash benchmarks/gpu_check.sh
# Each step has its own timeout, so one hang cannot eat the machine's time; the script
# always exits 0 and the log says what failed.
set -u
# the device image's interpreter is python3 (no plain `python` guaranteed)
PY="${PYTHON:-$(command -v python3 || command -v python)}"
OUT="${OUT:-$(mktemp -d /tmp/gpu_check.XXXX)}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
t0=$(date +%s)
DEVICE="${DEVICE:-cuda}"
if [ "$DEVICE" = cpu ]; then
  SMALL=(--small); Q_EAGER=(--queries 16 32 --steps 1 --warmup 1); Q_ONE=(--queries 16 --steps 1 --warmup 1)
else
  SMALL=(); Q_EAGER=(--queries 2048 8192 --steps 20 --warmup 5); Q_ONE=(--queries 4096 --steps 20 --warmup 5)
fi
BUDGET=${BUDGET:-520}  # seconds for the whole script (< 9 minutes)
stamp() { echo "== [$(( $(date +%s) - t0 ))s] $*"; }
# cap CAP: a step's timeout, never past the overall budget (0 = no time left: skip the step)
cap() { local left=$(( BUDGET - ($(date +%s) - t0) )); (( left < 20 )) && { echo 0; return; }; (( $1 < left )) && echo "$1" || echo "$left"; }
run() { local t; t=$(cap "$1"); shift; if [ "$t" = 0 ]; then echo "skipped: out of time"; return 1; fi; timeout "$t" "$@"; }

stamp "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "nvidia-smi not found"
"$PY" - <<'PY'
import sys, torch
print("python", sys.version.split()[0], "| torch", torch.__version__, "| cuda", torch.version.cuda,
      "| available", torch.cuda.is_available(), "|", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
PY

stamp "install (pip --no-deps: keeps the machine's torch; no network needed)"
run 60 "$PY" -m pip install --no-deps --no-build-isolation -e . > /tmp/gpu_check_pip.log 2>&1 \
  && echo "installed" || { tail -5 /tmp/gpu_check_pip.log; echo "editable install failed; continuing with PYTHONPATH"; }
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PY" - <<'PY'
import importlib.util
mods = ("numpy", "scipy", "statsmodels", "sklearn", "click", "jinja2", "rich", "pyarrow", "pytest")
missing = [m for m in mods if importlib.util.find_spec(m) is None]
print("missing dependencies:", ", ".join(missing) if missing else "none")
PY

stamp "gpu tests (pytest -m gpu)"
if "$PY" -c "import pytest" 2>/dev/null; then
  run 120 "$PY" -m pytest tests/test_reference_model.py tests/test_stats.py tests/test_neighbors.py -m gpu -q -p no:cacheprovider \
    --junitxml="$OUT/gpu_tests.xml" 2>&1 | tail -15 || echo "gpu tests failed or timed out"
else
  echo "pytest is not installed here: gpu tests skipped"
fi

stamp "GPU statistics (B = 100,000 and 1,000,000) and GPU cosine NN (200,000 x 50,000 x 512) vs the CPU path"
run 90 "$PY" benchmarks/bench_gpu.py --device "$DEVICE" "${SMALL[@]}" --json "$OUT/bench_gpu.json" || echo "bench_gpu failed, disagreed or timed out"

stamp "throughput, eager rows (2,048 and 8,192 queries a step)"
run 80 "$PY" benchmarks/bench_reference.py --device "$DEVICE" "${Q_EAGER[@]}" \
  --no-compile --json "$OUT/bench_eager.json" || echo "eager throughput failed or timed out"

stamp "throughput, eager rows with the seed's raw 512/512/256/512 input layer (4,096 queries a step)"
run 60 "$PY" benchmarks/bench_reference.py --device "$DEVICE" "${Q_ONE[@]}" \
  --no-compile --raw-inputs --json "$OUT/bench_raw_inputs.json" || echo "raw-input throughput failed or timed out"

stamp "full audit: audit run --model reference --device cuda (clean, full preset)"
run 150 "$PY" benchmarks/bench_reference.py --device "$DEVICE" --skip-throughput --audit --audit-timeout 140 \
  --audit-out /tmp/gpu_check_audit --json "$OUT/bench_audit.json" || echo "audit row failed or timed out"
cp /tmp/gpu_check_audit/results.json "$OUT/audit_results.json" 2>/dev/null || echo "no results.json from the audit"

stamp "throughput with torch.compile (4,096 queries a step)"
if [ "$DEVICE" = cpu ]; then echo "skipped in the dry run"; else
run 130 "$PY" benchmarks/bench_reference.py --device cuda --queries 4096 --steps 30 --warmup 5 \
  --compile --json "$OUT/bench_compile.json" || echo "compiled throughput failed or timed out"
fi

stamp "done; results in $OUT"
ls -la "$OUT"
exit 0
