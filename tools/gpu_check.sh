#!/usr/bin/env bash
# Prepared GPU check: one run on a fresh GPU machine prints the environment, the bench at
# the published sn64 size (reference, torch paths, Triton path; rays/s and the projected
# sn64 rendering time), the CUDA parity and precision-bound tests, an end-to-end sharded
# render + metrics with objects/s, the training section, the published trainer's steps/s
# beside ours, the Triton kernel's errors and times, and renderer.compile: max-autotune
# against compile: true, each time-boxed, then a summary. See
# docs/performance.md.
#
#   bash tools/gpu_check.sh             # on the GPU machine (python3 with torch + Triton)
#   bash tools/gpu_check.sh --dry-run   # the same steps at tiny sizes on the CPU
#                                       # (also: GPU_CHECK_DEVICE=cpu)
#   GPU_CHECK_ONLY=e2e,training bash tools/gpu_check.sh   # only these sections (and env,
#                                       # install), e.g. to rerun what a first run skipped
#
# Before a device run, here: bash tools/gpu_check_prepare.sh (wheels the image lacks, the
# reference vectors and the published code, into .gpu_check/, which the device call carries).
set -u
# The whole script is one block, so that bash has read all of it before it runs any: an
# edit of the file during a run cannot change the run.
{
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEVICE=${GPU_CHECK_DEVICE:-cuda}
[ "${1:-}" = "--dry-run" ] && DEVICE=cpu
PY=${PYTHON:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
export PYTHONUNBUFFERED=1 GPU_CHECK_DEVICE=$DEVICE
START=$(date +%s)
SUMMARY=()

BUDGET=${GPU_CHECK_BUDGET:-470}  # seconds for the whole run: a device call has 8 minutes

# selected NAME: whether GPU_CHECK_ONLY (when set) names the section; env and install
# always run.
selected() {
    case "$1" in env|install) return 0 ;; esac
    [ -z "${GPU_CHECK_ONLY:-}" ] || [[ ",$GPU_CHECK_ONLY," == *",$1,"* ]]
}

# section NAME SECONDS COMMAND...: run COMMAND under a time limit (cut to what is left of
# the budget; a section with under 10 s left is skipped, and says so), record its outcome.
section() {
    local name=$1 limit=$2; shift 2
    if ! selected "$name"; then
        SUMMARY+=("$(printf '%-10s %-16s %5s' "$name" "not selected" -)")
        return
    fi
    local begin=$(date +%s)
    local left=$(( BUDGET - (begin - START) ))
    if [ "$left" -lt 10 ]; then
        echo; echo "=== $name: SKIPPED, the ${BUDGET} s budget is spent"
        SUMMARY+=("$(printf '%-10s %-16s %5s' "$name" "SKIPPED (time)" -)")
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo
    echo "=== $name (limit ${limit} s, $(date -u +%H:%M:%S) UTC)"
    timeout --kill-after=10 "$limit" "$@"
    local rc=$? status=ok
    [ $rc -eq 124 ] || [ $rc -eq 137 ] && status="TIMEOUT"
    [ $rc -ne 0 ] && [ "$status" = ok ] && status="FAIL (exit $rc)"
    SUMMARY+=("$(printf '%-10s %-16s %5d s' "$name" "$status" $(( $(date +%s) - begin )))")
}

# tests_named FILE...: where each test file is under tests/ (the folders may change); a
# missing one stays in the list under its bare name, so that pytest reports it.
tests_named() {
    local name found
    for name in "$@"; do
        found=$(find tests -name "$name" -print -quit)
        echo "${found:-tests/$name}"
    done
}

# note NAME STATUS: a section that did not run, recorded as such (never silently).
note() { SUMMARY+=("$(printf '%-10s %-16s %5s' "$1" "$2" -)"); }

if [ "$DEVICE" = cpu ]; then
    SIZE=tiny
    BENCH=(--config config/experiments/demo.yaml --device cpu --objects 1 --views 1
           --image-size 8 --paths reference,fp32+torch)
    E2E=(--device cpu --tiny --categories 1 --objects-per-category 3 --shards 1)
    TESTS=($(tests_named test_parity_model.py) -k "cpu and coarse")
    TRITON=(env TRITON_INTERPRET=1 "$PY" tools/gpu_check_triton.py --device cpu --tiny)
    AUTOTUNE=(--config config/experiments/demo.yaml --device cpu --objects 1 --views 1
              --image-size 8)
    AUTOTUNE_PATHS=(fp32+torch+autotune fp32+torch+compile)
else
    SIZE="published sn64"
    # auto (the experiment's defaults) before the explicit Triton path: a Triton kernel that
    # fails on the device stops that path, after the auto row (which falls back) is out.
    BENCH=(--device cuda --objects 4
           --paths reference,bf16+torch+eager,auto,bf16+triton)
    E2E=(--device cuda --objects-per-category 4 --shards 2)
    TESTS=($(tests_named test_parity_model.py test_parity_render.py test_fast_render.py) -k cuda)
    TRITON=("$PY" tools/gpu_check_triton.py --device cuda --budget 75)
    AUTOTUNE=(--device cuda --objects 2)
    AUTOTUNE_PATHS=(bf16+torch+autotune bf16+torch+compile)
fi
echo "gpu_check: device $DEVICE, $SIZE sizes, work folder $WORK, $(date -u '+%Y-%m-%d %H:%M') UTC"

section env 60 "$PY" - <<'PY'
import platform, subprocess, torch
print("python", platform.python_version(), "| torch", torch.__version__, end="")
try:
    import triton
    print(" | triton", triton.__version__)
except ImportError as exc:
    print(" | triton missing:", exc)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"GPU {p.name}: {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs, "
          f"capability {p.major}.{p.minor}, CUDA {torch.version.cuda}")
    print(subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,clocks.sm,clocks.mem",
                          "--format=csv,noheader"], capture_output=True, text=True).stdout.strip())
else:
    print("no CUDA device; CPU threads:", torch.get_num_threads())
PY

# The image lacks some of the project's Python dependencies: carried wheels go to a
# folder of their own on PYTHONPATH; the project itself installs without dependencies.
if [ "$DEVICE" = cpu ]; then
    note install "skipped (dry run)"
    echo "install: dry run, the checkout's own environment ($PY)"
else
    install() {
        if ls .gpu_check/wheels/*.whl >/dev/null 2>&1; then
            "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
                --target /tmp/gpu_check_site .gpu_check/wheels/*.whl || return 1
        else
            echo "install: no .gpu_check/wheels (run tools/gpu_check_prepare.sh here first)"
        fi
        "$PY" -m pip install -q --no-deps --no-build-isolation -e . || return 1
        "$PY" -c "import pixelnerf.cli, jsonschema, pytest, yaml, skimage, imageio; print('install: ok')"
    }
    export PYTHONPATH=/tmp/gpu_check_site${PYTHONPATH:+:$PYTHONPATH}
    section install 180 bash -c "$(declare -f install); PY='$PY' install"
fi

# The parity tests read the reference vectors: ../shared/reference beside a checkout, or
# the copy that tools/gpu_check_prepare.sh put under .gpu_check/.
for candidate in "${PIXELNERF_REFERENCE_DIR:-}" ../shared/reference .gpu_check/reference; do
    if [ -n "$candidate" ] && [ -f "$candidate/model_forward.npz" ]; then
        export PIXELNERF_REFERENCE_DIR=$(cd "$candidate" && pwd)
        break
    fi
done
echo "reference vectors: ${PIXELNERF_REFERENCE_DIR:-MISSING (the parity tests will fail)}"

# Sections in the order of what they decide: the throughput goal, the precision bounds,
# the end-to-end rate, training; then the kernel-level detail and max-autotune, which a
# second call runs where the budget ran out (GPU_CHECK_ONLY=triton,autotune).
section bench 150 "$PY" -m pixelnerf.cli bench "${BENCH[@]}"
section tests 110 "$PY" -m pytest -q -rs -p no:cacheprovider "${TESTS[@]}"
section e2e 130 "$PY" tools/gpu_check_e2e.py "$WORK/e2e" "${E2E[@]}"

# --- training ---
# tools/gpu_train_check.py (written for the multi-GPU issue) prints training speed and
# the bf16/TF32 against fp32 comparison; it reads GPU_CHECK_DEVICE for its sizes.
# Its data and rows stay in $WORK/train for the next section.
if [ -f tools/gpu_train_check.py ]; then
    section training 120 "$PY" tools/gpu_train_check.py --work "$WORK/train" \
        --json "$WORK/train/rows.json"
else
    echo
    echo "=== training: tools/gpu_train_check.py is not in this checkout"
    note training "absent"
fi

# --- the published trainer beside ours ---
# tools/published_train_bench.py runs sxyu/pixel-nerf's train/train.py, unedited, on the
# training section's data for a 45 s time box and prints its steps/s beside that section's
# rows (without them, as under GPU_CHECK_ONLY=published, it makes the data and measures our
# fp32 row itself). tools/gpu_check_prepare.sh puts the code and its wheels into
# .gpu_check/; CI has neither, so the dry run notes a missing copy, while on the device it
# fails.
PUBLISHED=.gpu_check/published
if [ "$DEVICE" = cpu ] && [ ! -f "$PUBLISHED/train/train.py" ] && selected published; then
    echo
    echo "=== published: NOTE published code not prepared ($PUBLISHED: tools/gpu_check_prepare.sh)"
    note published "NOTE (not prepared)"
else
    OURS=()
    [ -f "$WORK/train/rows.json" ] && OURS=(--ours "$WORK/train/rows.json")
    section published 75 "$PY" tools/published_train_bench.py --published "$PUBLISHED" \
        --wheels .gpu_check/published_wheels --work "$WORK/train" ${OURS[@]+"${OURS[@]}"}
fi

section triton 90 "${TRITON[@]}"

# --- renderer.compile: max-autotune ---
# A section of its own, last: its first call autotunes the matmuls (expected to take
# minutes on a GPU; not yet measured), more than the bench section can also hold. A first
# process pays that with an empty Inductor cache (warm-up s); a second process with the
# same cache shows what a later render job of a workflow run pays, then compile: true
# beside it. The compiles column of the autotune path must end in +0 (nothing compiled
# in the timed renders).
autotune() {
    "$PY" -m pixelnerf.cli bench "${AUTOTUNE[@]}" --paths "${AUTOTUNE_PATHS[0]}" || return 1
    echo "autotune: a second process, with the first one's Inductor cache"
    "$PY" -m pixelnerf.cli bench "${AUTOTUNE[@]}" --paths "$(IFS=,; echo "${AUTOTUNE_PATHS[*]}")"
}
section autotune 240 env TORCHINDUCTOR_CACHE_DIR="$WORK/inductor" bash -c \
    "$(declare -f autotune; declare -p AUTOTUNE AUTOTUNE_PATHS); PY='$PY' autotune"

echo
echo "=== summary ($DEVICE, $(( $(date +%s) - START )) s in all)"
failed=0
for line in "${SUMMARY[@]}"; do
    echo "$line"
    case "$line" in *FAIL*|*TIMEOUT*|*SKIPPED*) failed=1 ;; esac
done
rm -rf "$WORK"
exit $failed
}
