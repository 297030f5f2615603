#!/usr/bin/env bash
# The MNIST experiment (the paper's Table 2 on this machine): NSGF++ against I-CFM (= 1-RF) and
# OT-CFM on the paper's MNIST UNet, trained by the same loop with the same budget, each scored by
# FID of N samples against the MNIST test set at several NFE; and S-JKO (issue 14) with the same
# UNet as its one-call generator (NFE = 1), trained for the same minutes.
#
#   scripts/mnist-experiment.sh [train|sample|fid|table|figures|all]     (default: all)
#
# Every stage resumes or skips what is done, so the script can be stopped at any point and run
# again (long runs: start it with nohup in the background). Stages:
#   train   trains (or resumes) runs/mnist-<method> from configs/mnist/<method>.toml;
#   sample  draws N samples per method and NFE into runs/mnist-eval/<method>-nfe<K>.npy (uint8)
#           and the sample grids into results/mnist/ (NFE 20; S-JKO: NFE 1 only);
#   fid     exports the MNIST test images, their Inception statistics, and the FID of every
#           sample file (runs/mnist-eval/*.fid.json);
#   table   writes results/mnist/fid.md and fid.json (FID per method and NFE, with each run's
#           training steps and minutes);
#   figures Fig. 8: nearest training images of each method's samples at the largest NFE.
# Environment: NSGF (binary; default target/release/nsgf, built if missing), RUNS (default runs),
# N (samples, default 10000), NFES (default "10 20 60"), DATA (default ../shared/data/mnist),
# METHODS (default "nsgfpp icfm otcfm sjko"), CONFIGS (folder of <method>.toml, default configs/mnist),
# OUT (tables and figures, default results/mnist).
set -euo pipefail
cd "$(dirname "$0")/.."
NSGF=${NSGF:-target/release/nsgf}
RUNS=${RUNS:-runs}
N=${N:-10000}
NFES=${NFES:-"10 20 60"}
DATA=${DATA:-../shared/data/mnist}
METHODS=${METHODS:-"nsgfpp icfm otcfm sjko"}
CONFIGS=${CONFIGS:-configs/mnist}
OUT=${OUT:-results/mnist}
EVAL="$RUNS/mnist-eval"
stage=${1:-all}
mkdir -p "$OUT" "$EVAL"

# The NFE a method is sampled at: S-JKO is one generator call.
nfes_of() {
    if [ "$1" = sjko ]; then echo 1; else echo "$NFES"; fi
}
# Every NFE of the table's columns.
all_nfes() {
    for m in $METHODS; do nfes_of "$m"; done | tr ' ' '\n' | sort -nu | tr '\n' ' '
}
if [ ! -x "$NSGF" ]; then
    cargo build --release
fi

train() {
    for m in $METHODS; do
        echo "== train $m" >&2
        "$NSGF" train --config "$CONFIGS/$m.toml" --out "$RUNS/mnist-$m" --resume
    done
}

sample() {
    for m in $METHODS; do
        for nfe in $(nfes_of "$m"); do
            f="$EVAL/$m-nfe$nfe.npy"
            [ -f "$f" ] && continue
            echo "== sample $m, NFE $nfe" >&2
            grid=()
            if [ "$nfe" = 20 ] || [ "$m" = sjko ]; then grid=(--grid "$OUT/grid-$m-nfe$nfe.png"); fi
            "$NSGF" sample --run "$RUNS/mnist-$m" --n "$N" --nfe "$nfe" --seed 0 \
                --out "$EVAL/tmp-$m-$nfe.npy" "${grid[@]}"
            mv "$EVAL/tmp-$m-$nfe.npy" "$f"
        done
    done
}

fid() {
    local ref="$EVAL/test-stats.npz"
    if [ ! -f "$ref" ]; then
        "$NSGF" data export --dataset mnist --dir "$DATA" --split test --out "$EVAL/test.npy"
        "$NSGF" eval fid "$EVAL/test.npy" "$EVAL/tmp-stats.npz" --save-stats
        mv "$EVAL/tmp-stats.npz" "$ref"
    fi
    for f in "$EVAL"/*-nfe*.npy; do
        [ -f "$f" ] || continue
        [ -f "$f.fid.json" ] && continue
        echo "== FID $(basename "$f")" >&2
        "$NSGF" eval fid "$f" "$ref" --json > "$f.fid.tmp"
        mv "$f.fid.tmp" "$f.fid.json"
    done
}

# Training steps and minutes of a run (summed over its networks' timing.json).
budget() {
    local run="$RUNS/mnist-$1"
    [ -d "$run" ] || { echo '{"steps": 0, "minutes": 0}'; return; }
    find "$run" -name timing.json -exec jq -s '{steps: (map(.step) | add), minutes: ((map(.seconds) | add) / 60)}' {} +
}

table() {
    local json="$OUT/fid.json"
    {
        echo "["
        local first=1
        for m in $METHODS; do
            for nfe in $(nfes_of "$m"); do
                f="$EVAL/$m-nfe$nfe.npy.fid.json"
                [ -f "$f" ] || continue
                [ $first = 1 ] || echo ","
                first=0
                jq -c --arg m "$m" --argjson nfe "$nfe" --argjson n "$N" \
                    '{method: $m, nfe: $nfe, samples: $n, fid: .fid}' "$f"
            done
        done
        echo "]"
    } | jq . > "$json"
    {
        echo "# MNIST: FID of $N samples against the 10,000 test images (our FID, pytorch-fid conventions)"
        echo
        echo "Made by \`scripts/mnist-experiment.sh\` on $(date -u +%Y-%m-%d) ($(nproc) CPU cores)."
        echo
        local cols
        cols=$(all_nfes)
        printf '| method | training (steps, minutes) |'
        for nfe in $cols; do printf ' NFE %s |' "$nfe"; done
        echo
        printf '|---|---|'
        for _ in $cols; do printf -- '---:|'; done
        echo
        for m in $METHODS; do
            b=$(budget "$m")
            printf '| %s | %s steps, %.0f min |' "$m" "$(jq .steps <<<"$b")" "$(jq .minutes <<<"$b")"
            for nfe in $cols; do
                v=$(jq -r --arg m "$m" --argjson nfe "$nfe" \
                    '.[] | select(.method == $m and .nfe == $nfe) | .fid' "$json")
                if [ -n "$v" ]; then printf ' %.2f |' "$v"; else printf ' – |'; fi
            done
            echo
        done
    } > "$OUT/fid.md"
    cat "$OUT/fid.md"
}

# Fig. 8: the nearest training images of the first 32 samples of each method at its largest NFE.
figures() {
    [ -f "$EVAL/train.npy" ] ||
        "$NSGF" data export --dataset mnist --dir "$DATA" --split train --out "$EVAL/train.npy"
    local top
    for m in $METHODS; do
        top=$(nfes_of "$m" | tr ' ' '\n' | sort -n | tail -1)
        f="$EVAL/$m-nfe$top.npy"
        [ -f "$f" ] || continue
        "$NSGF" eval neighbours "$f" "$EVAL/train.npy" --n 32 \
            --out "$OUT/neighbours-$m-nfe$top.png" --json "$OUT/neighbours-$m-nfe$top.json"
    done
}
case "$stage" in
    train) train ;;
    sample) sample ;;
    fid) fid ;;
    table) table ;;
    figures) figures ;;
    all) train; sample; fid; table; figures ;;
    *) echo "usage: $0 [train|sample|fid|table|figures|all]" >&2; exit 2 ;;
esac
