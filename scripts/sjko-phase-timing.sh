#!/usr/bin/env bash
# S-JKO's training cost per phase must not grow with the number of phases K (the reference map
# is one frozen generator, not a chain of K maps): train K = 5, 10 and 20 phases of the same
# number of iterations on one problem and tabulate the seconds of every phase (timing.json).
#
#   scripts/sjko-phase-timing.sh [iterations per phase, default 100]
# Environment: NSGF (binary, default target/release/nsgf), PROBLEM (default moons),
# RUNS (default runs/sjko-timing), OUT (default results/sjko/phase-timing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
NSGF=${NSGF:-target/release/nsgf}
PROBLEM=${PROBLEM:-moons}
RUNS=${RUNS:-runs/sjko-timing}
OUT=${OUT:-results/sjko/phase-timing.md}
ITERS=${1:-100}
[ -x "$NSGF" ] || cargo build --release
mkdir -p "$RUNS" "$(dirname "$OUT")"
{
    echo "# S-JKO: seconds per phase against the number of phases K ($PROBLEM, $ITERS iterations per phase)"
    echo
    echo "Made by \`scripts/sjko-phase-timing.sh $ITERS\` on $(date -u +%Y-%m-%d), $(nproc) CPU cores; load while it ran: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo
    echo "| K | mean s/phase | min | max | first half mean | second half mean |"
    echo "|---:|---:|---:|---:|---:|---:|"
} > "$OUT"
for K in 5 10 20; do
    cfg="$RUNS/k$K.toml"
    sed "s/^phases = .*/phases = $K/" "configs/sjko/$PROBLEM.toml" > "$cfg"
    rm -rf "$RUNS/k$K"
    "$NSGF" train --config "$cfg" --out "$RUNS/k$K" --steps "$ITERS" > /dev/null
    jq -r --argjson k "$K" '.phase_seconds as $s | ($s | length) as $n
        | ($s[0:($n/2|floor)] | add / length) as $a | ($s[($n/2|floor):] | add / length) as $b
        | "| \($k) | \($s | add / $n | . * 100 | round / 100) | \($s | min | . * 100 | round / 100) | \($s | max | . * 100 | round / 100) | \($a * 100 | round / 100) | \($b * 100 | round / 100) |"' \
        "$RUNS/k$K/timing.json" >> "$OUT"
done
cat "$OUT"
