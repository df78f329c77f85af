#!/usr/bin/env bash
# The GPU run: one command, prepared before a device is at hand, that proves and measures the CUDA
# path on a machine with no network.
#
#   benchmarks/gpu_run.sh             # the whole run, about 9 minutes
#   benchmarks/gpu_run.sh --smoke     # every part at toy size, under 2 minutes
#   benchmarks/gpu_run.sh --dry-run   # print the parts and their caps, run nothing
#
# Before it, on a machine with network, in the repository root (the folders are git-ignored):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux2014_x86_64 --platform any -d .whl skorch pyod
#   cp -r ../shared/data .gdata        # when ../shared/data will not be beside the checkout
#
# Wheels in .whl/ are installed with --target into a scratch folder (nothing else is touched); the
# data come from $SKLEARN_AE_DATA, ../shared/data or .gdata/. The parts, each under its own wall
# clock cap, each writing its results as it finishes:
#   (a) the CUDA tests (bench_cuda_tests.py)              -> results/cuda_tests_cuda.json
#       then a few seconds' probe of CUDA-graph training      -> results/cuda_graph_probe_cuda.json
#       (if it fails, the parts below train with the eager step, SKLEARN_AE_CUDA_GRAPHS=0)
#   (b) speed on CUDA vs skorch, PyOD, scikit-learn (CPU)  -> results/speed_cuda.json
#   (c) RBM 784-500 CD-25 on binarized MNIST, AIS          -> results/rbm_mnist_cuda.json
#   (d, e) VAE 784-200-200-50, IWAE K=5000 on 10,000 images, with its evaluation time
#                                                          -> results/vae_cuda.json
# When $OUT is set (the device tool's output folder), the results and the log are copied there
# after every part, so a run cut short still returns what it finished.
set -u
cd "$(dirname "$0")/.."

mode=full
dry=0
for arg in "$@"; do
    case "$arg" in
        --smoke) mode=smoke ;;
        --dry-run) dry=1 ;;
        *) echo "usage: $0 [--smoke] [--dry-run]" >&2; exit 2 ;;
    esac
done

export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
DEV=${DEVICE:-cuda}   # DEVICE=cpu checks the plumbing on a machine without a GPU
TAG=${DEV/:/}
LOG=benchmarks/results/gpu_run_${TAG}.log
[ "$mode" = smoke ] && LOG=benchmarks/results/gpu_run_${TAG}_smoke.log
mkdir -p benchmarks/results
[ "$dry" = 1 ] && LOG=/dev/null
: > "$LOG"
say() { echo "$*" | tee -a "$LOG"; }

save() {
    [ -n "${OUT:-}" ] || return 0
    tar czf "$OUT/results_${TAG}.tgz" benchmarks/results/*"${TAG}"* 2>/dev/null
    cp "$LOG" "$OUT/" 2>/dev/null
    return 0
}

part() {  # part NAME CAP_SECONDS COMMAND...
    local name=$1 cap=$2
    shift 2
    say "=== part $name (cap ${cap}s): $*"
    if [ "$dry" = 1 ]; then return 0; fi
    local start=$SECONDS
    # SIGINT first: the scripts keep what they have written; KILL 15 s later if that hangs
    timeout -s INT -k 15 "$cap" "$@" 2>&1 | tee -a "$LOG"
    local rc=${PIPESTATUS[0]}
    LAST_RC=$rc
    say "=== part $name: exit $rc after $((SECONDS - start))s (total $SECONDS s)"
    save
}

probe() {  # the CUDA-graph probe; if graph training fails here, the parts after it train eagerly
    case "$DEV" in cuda*) ;; *) say "(no CUDA-graph probe on $DEV: graphs are for CUDA only)"; return 0 ;; esac
    part probe 45 $PY $B/cuda_graph_probe.py --device $DEV "$@"
    if [ "$dry" = 0 ] && [ "$LAST_RC" != 0 ]; then
        export SKLEARN_AE_CUDA_GRAPHS=0
        say "CUDA-graph training failed the probe: the parts below run with SKLEARN_AE_CUDA_GRAPHS=0"
    fi
}

if [ "$dry" = 0 ]; then
    if compgen -G ".whl/*.whl" >/dev/null; then
        $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/sklearn_ae_site .whl/*.whl || { say "wheel install failed"; exit 1; }
        export PYTHONPATH="/tmp/sklearn_ae_site${PYTHONPATH:+:$PYTHONPATH}"
    fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # the package from this checkout
if [ -z "${SKLEARN_AE_DATA:-}" ] && [ ! -d ../shared/data ] && [ -d .gdata ]; then
    export SKLEARN_AE_DATA="$PWD/.gdata"
fi

say "gpu_run.sh $mode, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null)"
if [ "$dry" = 0 ]; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee -a "$LOG"
    $PY - <<'EOF' 2>&1 | tee -a "$LOG"
import importlib
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))
for name in ("sklearn", "skorch", "pyod", "numpy", "scipy", "sklearn_ae"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as exc:  # noqa: BLE001
        print(name, "missing:", exc)
EOF
fi

B=benchmarks
LAST_RC=0
if [ "$mode" = smoke ]; then
    part tests 60 $PY $B/bench_cuda_tests.py --device $DEV --timeout 45 --workers 8 \
        --name cuda_tests_${TAG}_smoke tests/test_autoencoder.py tests/test_graphs.py
    probe --name cuda_graph_probe_${TAG}_smoke
    part speed 40 $PY $B/bench_speed.py --device $DEV --skip-mnist --skip-targets --skip-memory \
        --epochs 1 --repeats 1 --batch-sizes 1024 --name speed_${TAG}_smoke
    part rbm 30 $PY $B/bench_rbm_mnist.py --device $DEV --train-rows 2000 --epochs 1 \
        --gibbs-steps 1 --betas 500 --ais-runs 16 --bound-rows 20 --raise-betas 200 \
        --name rbm_mnist_${TAG}_smoke
    part vae 30 $PY $B/bench_vae_mnist.py --device $DEV --skip-digits --epochs 1 --n-test 500 \
        --k 100 --k-full 10 --name vae_${TAG}_smoke
else
    part tests 120 $PY $B/bench_cuda_tests.py --device $DEV --timeout 105 --workers 8
    probe
    part speed 170 $PY $B/bench_speed.py --device $DEV --skip-tabular --skip-targets --skip-memory \
        --epochs 1 --repeats 2 --cpu-anchor-rows 8192 --name speed_${TAG}
    part rbm 120 $PY $B/bench_rbm_mnist.py --device $DEV --gibbs-steps 25 --epochs 1000 \
        --time-budget 60 --betas 14500 30000 5000 --bound-rows 100 --raise-betas 5000 \
        --name rbm_mnist_${TAG}
    part vae 150 $PY $B/bench_vae_mnist.py --device $DEV --skip-digits --epochs 1000 \
        --time-budget 75 --k 5000 --name vae_${TAG}
fi
say "gpu_run.sh $mode done in ${SECONDS}s"
save
