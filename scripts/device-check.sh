#!/usr/bin/env bash
# Every GPU measurement of the project in one run (< 8 minutes), for a machine with an NVIDIA GPU
# (the device tool). It builds nothing: it runs binaries built on the development machine with the
# `cuda` feature and carried in the git-ignored folder .device/bin, and writes everything to $OUT.
#
# On the development machine (once per change of the code):
#   cargo build --release --features cuda
#   cargo test --release --features cuda --test cuda --no-run --message-format=json \
#     | python3 -c 'import sys,json; [print(m["executable"]) for l in sys.stdin for m in [json.loads(l)] if m.get("executable")]' \
#     | while read -r f; do cp "$f" .device/bin/cuda-tests; done
#   mkdir -p .device/bin && cp target/release/nsgf .device/bin/
# Then, through the device tool:  run(command="bash scripts/device-check.sh", carry=[".device/bin"])
#
# Outputs ($OUT): device.txt (nvidia-smi), cuda-tests.txt (the GPU parity tests: Sinkhorn vs
# GeomLoss, UNet vs torchcfm, image ops vs the CPU kernels), bench-unet-mnist.json,
# bench-unet-cifar10.json, sinkhorn.txt (Sinkhorn timings), and summary.txt.
set -uo pipefail
OUT=${OUT:-/tmp/nsgf-device-check}
BIN=${NSGF_BIN:-.device/bin}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/lib64:${LD_LIBRARY_PATH:-}
export NSGF_FIXTURES=${NSGF_FIXTURES:-$PWD/tests/fixtures}
summary="$OUT/summary.txt"
: > "$summary"
step() { # name, timeout seconds, command...
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name" 2>&1
    local rc=$?
    echo "$name: exit $rc, $((SECONDS - t0)) s" | tee -a "$summary"
}
for f in "$BIN/nsgf" "$BIN/cuda-tests"; do
    [ -x "$f" ] || { echo "missing $f: build it first (see the header of $0)" | tee -a "$summary"; exit 2; }
done
step device.txt 30 nvidia-smi
# The first CUDA run JIT-compiles (and autotunes) its kernels: the tests go first and warm the cache.
step cuda-tests.txt 240 "$BIN/cuda-tests" --test-threads 1
step bench-unet-mnist.json 150 "$BIN/nsgf" bench unet --config mnist --batch 128 --steps 5 --device cuda --json
step bench-unet-cifar10.json 120 "$BIN/nsgf" bench unet --config cifar10 --batch 128 --steps 5 --device cuda --json
python3 - "$OUT" <<'PY' > /dev/null 2>&1 || true
import numpy as np, sys
rng = np.random.default_rng(0)
for n in (1024, 4096):
    np.save(f"{sys.argv[1]}/x{n}.npy", rng.standard_normal((n, 2)).astype(np.float32))
    np.save(f"{sys.argv[1]}/y{n}.npy", (rng.standard_normal((n, 2)) + 2).astype(np.float32))
PY
{
    for n in 1024 4096; do
        [ -f "$OUT/x$n.npy" ] || continue
        for dev in cuda cpu; do
            t0=$(date +%s.%N)
            "$BIN/nsgf" ot sinkhorn --x "$OUT/x$n.npy" --y "$OUT/y$n.npy" --blur 0.05 --scaling 0.9 \
                --device $dev --out "$OUT/s$n-$dev.npz" > /dev/null 2>&1
            echo "n=$n d=2 blur 0.05 scaling 0.9 $dev: exit $?, $(echo "$(date +%s.%N) - $t0" | bc) s (incl. start-up)"
        done
        rm -f "$OUT/x$n.npy" "$OUT/y$n.npy" "$OUT"/s$n-*.npz
    done
} > "$OUT/sinkhorn.txt" 2>&1
echo "sinkhorn.txt: written" >> "$summary"
cat "$summary"
