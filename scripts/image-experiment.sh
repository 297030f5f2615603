#!/usr/bin/env bash
# The image experiments (the paper's Tables 2-3 on this machine): NSGF++ against I-CFM (= 1-RF)
# and OT-CFM on the same UNet, trained by the same loop with the same budget, each scored by FID
# of N samples against the test set at several NFE; and S-JKO (issue 14) with the same UNet as
# its one-call generator (NFE = 1). scripts/mnist-experiment.sh (the paper's MNIST setting) and
# scripts/cifar10-small.sh (CIFAR-10 end to end at a CPU size) call it.
#
#   scripts/image-experiment.sh [train|sample|fid|reference|table|figures|all|status]     (default: all)
#
# Every stage resumes or skips what is done, so the script can be stopped at any point and run
# again (long runs: start it with nohup in the background). `all` takes one method at a time
# through train, then sample and fid at each NFE up to EARLY_NFE in the order NFES gives; then
# every method's larger NFEs; then the reference, table and figures. Stages:
#   train   trains (or resumes) runs/<PREFIX>-<method> from <CONFIGS>/<method>.toml;
#   sample  draws N samples per method and NFE into runs/<PREFIX>-eval/<method>-nfe<K>.npy
#           (uint8; `.run` beside it: the run's identity, so that a file drawn from an earlier
#           state of the run is drawn again) and the sample grids into <OUT> (NFE 20; S-JKO:
#           NFE 1 only);
#   fid     exports the test images (REF_N of them, evenly spaced, when set), their Inception
#           statistics, and the FID of every sample file (runs/<PREFIX>-eval/*.fid.json, each
#           with the test set it is against: another REF_N scores the files again); with
#           KEEP_SAMPLES=1 each scored sample file is copied to <OUT>/samples-<method>-nfe<K>.npy;
#   reference  the floor of this FID at N: N training images (evenly spaced) scored against
#           the test statistics like a method's samples; its score is kept in
#           <OUT>/reference.json, which stands on later machines (same N and REF_N);
#   table   writes <OUT>/fid.md and fid.json (FID per method and NFE, with each run's training
#           steps and minutes, the CPU, and the reference when scored); the cells of earlier
#           runs (the previous fid.json; run folders do not outlive their machine) stay, on rows
#           of their own, until this machine scores the same method and NFE;
#   figures FID against NFE (<OUT>/fid_vs_nfe.png, from fid.json); Fig. 8: nearest training
#           images of each method's samples at its largest NFE (the kept samples of its best
#           cell where that file is not on this machine); with KEEP_SAMPLES=1, the sample
#           file behind each method's best FID copied to <OUT>/samples-<method>-nfe<K>.npy (uint8,
#           so that anyone can recompute the number with any FID tool).
#   status  where each method stands: the step of every checkpoint of its run, and each cell
#           (scored with its FID, drawn, being drawn, or not started); changes nothing.
# Environment: DATASET (mnist or cifar10, default mnist), PREFIX (run-name prefix, default
# DATASET), NSGF (binary; default target/release/nsgf, built if missing), RUNS (default runs),
# N (samples, default 10000), NFES (default "10 20 60"), DATA (default ../shared/data/DATASET),
# METHODS (default "nsgfpp icfm otcfm sjko"), CONFIGS (folder of <method>.toml, default
# configs/PREFIX), OUT (tables and figures, default results/PREFIX), REF_N (reference images,
# default all), KEEP_SAMPLES (default 0), EARLY_NFE (`all`'s first round, default 20), ORDER (the
# order in which `all` takes the methods, default METHODS; the table keeps METHODS' order).
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET=${DATASET:-mnist}
PREFIX=${PREFIX:-$DATASET}
NSGF=${NSGF:-target/release/nsgf}
RUNS=${RUNS:-runs}
N=${N:-10000}
NFES=${NFES:-"10 20 60"}
DATA=${DATA:-../shared/data/$DATASET}
METHODS=${METHODS:-"nsgfpp icfm otcfm sjko"}
CONFIGS=${CONFIGS:-configs/$PREFIX}
OUT=${OUT:-results/$PREFIX}
REF_N=${REF_N:-}
KEEP_SAMPLES=${KEEP_SAMPLES:-0}
EARLY_NFE=${EARLY_NFE:-20}
ORDER=${ORDER:-$METHODS}
EVAL="$RUNS/$PREFIX-eval"
STATS="$EVAL/test-stats.npz"           # the test images' Inception statistics
TEST_SET=${REF_N:-all}                  # which test images: REF_N evenly spaced, or all
REFERENCE="$EVAL/reference-train.npy"  # N training images, scored by `reference`
KEPT_REFERENCE="$OUT/reference.json"   # its score, kept past this machine (see keep_reference)
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
    local m
    for m in $METHODS; do
        echo "== train $m" >&2
        "$NSGF" train --config "$CONFIGS/$m.toml" --out "$RUNS/$PREFIX-$m" --resume
    done
}

# Identity of a trained run: its config.toml and every state.json (steps and file hashes).
run_id() {
    [ -d "$RUNS/$PREFIX-$1" ] || { echo none; return; }
    find "$RUNS/$PREFIX-$1" -maxdepth 2 \( -name config.toml -o -name state.json \) -type f \
        -print0 2>/dev/null | sort -z | xargs -0 -r cat | sha256sum | cut -c1-16
}

sample() {
    local m nfe f grid id
    for m in $METHODS; do
        id=$(run_id "$m")
        for nfe in $(nfes_of "$m"); do
            f="$EVAL/$m-nfe$nfe.npy"
            # A sample file drawn from an earlier state of the run (retrained, resumed further)
            # is drawn again, and its FID dropped.
            if [ -f "$f" ] && [ -f "$f.run" ] && [ "$(cat "$f.run")" != "$id" ]; then
                echo "== $m changed since $(basename "$f") was drawn: drawing it again" >&2
                rm -f "$f" "$f.fid.json"
            fi
            [ -f "$f" ] && continue
            echo "== sample $m, NFE $nfe" >&2
            grid=()
            if [ "$nfe" = 20 ] || [ "$m" = sjko ]; then grid=(--grid "$OUT/grid-$m-nfe$nfe.png"); fi
            "$NSGF" sample --run "$RUNS/$PREFIX-$m" --n "$N" --nfe "$nfe" --seed 0 \
                --out "$EVAL/tmp-$m-$nfe.npy" "${grid[@]}"
            echo "$id" > "$f.run"
            mv "$EVAL/tmp-$m-$nfe.npy" "$f"
        done
    done
}

# The test images and their Inception statistics (made once per test set: `$STATS.set` names
# the set they are of, and another REF_N makes them again).
test_stats() {
    [ -f "$STATS" ] && [ "$(cat "$STATS.set" 2>/dev/null)" = "$TEST_SET" ] && return 0
    rm -f "$STATS.set"
    "$NSGF" data export --dataset "$DATASET" --dir "$DATA" --split test --out "$EVAL/test.npy" \
        ${REF_N:+--limit "$REF_N"}
    "$NSGF" eval fid "$EVAL/test.npy" "$EVAL/tmp-stats.npz" --save-stats
    mv "$EVAL/tmp-stats.npz" "$STATS"
    echo "$TEST_SET" > "$STATS.set"
}

# Whether images file $1 has a score against this test set (`$1.fid.json`, whose `test_set`
# the scoring recorded; a score against another REF_N is no score here).
scored() {
    [ -f "$1.fid.json" ] && [ "$(jq -r '.test_set // ""' "$1.fid.json")" = "$TEST_SET" ]
}

# FID of images file $1 against the test statistics into `$1.fid.json`, with the test set.
score_file() {
    "$NSGF" eval fid "$1" "$STATS" --json | jq -c --arg s "$TEST_SET" '. + {test_set: $s}' \
        > "$1.fid.tmp"
}

fid() {
    local f
    test_stats
    for f in "$EVAL"/*-nfe*.npy; do
        [ -f "$f" ] || continue
        scored "$f" && continue
        echo "== FID $(basename "$f")" >&2
        score_file "$f"
        keep_cell "$f"
        mv "$f.fid.tmp" "$f.fid.json"
    done
}

# The floor of this FID at N samples: N training images (evenly spaced over the set) scored
# against the same test statistics, as if they were a model's samples.
reference() {
    local f=$REFERENCE
    # Scored here, or on an earlier machine with the same N and test set (that score stands;
    # delete <OUT>/reference.json to score it again).
    if ! scored "$f" && ! kept_reference > /dev/null; then
        test_stats
        if [ ! -f "$f" ]; then
            "$NSGF" data export --dataset "$DATASET" --dir "$DATA" --split train \
                --out "$EVAL/tmp-reference-train.npy" --limit "$N"
            mv "$EVAL/tmp-reference-train.npy" "$f"
        fi
        echo "== FID reference: $N training images" >&2
        score_file "$f"
        mv "$f.fid.tmp" "$f.fid.json"
    fi
    keep_reference
}

# <OUT>/reference.json: {samples, ref_n, fid, cpu, scored}, the reference's score copied out of
# the run folders, which do not outlive their machine (like the cells in fid.json); written by
# `reference` only, read by `table` and `status`.
keep_reference() {
    local f="$REFERENCE.fid.json"
    scored "$REFERENCE" || return 0
    jq --argjson n "$N" --arg r "$REF_N" --arg cpu "$(cpu_name)" \
        --arg day "$(date -u -r "$f" +%Y-%m-%d)" \
        '{samples: $n, ref_n: $r, fid: .fid, cpu: $cpu, scored: $day}' "$f" > "$KEPT_REFERENCE.tmp"
    mv "$KEPT_REFERENCE.tmp" "$KEPT_REFERENCE"
}

# The kept reference when it was scored with this N and test set (fails when there is none).
kept_reference() {
    [ -f "$KEPT_REFERENCE" ] &&
        jq -ce --argjson n "$N" --arg r "$REF_N" \
            'select(.samples == $n and (.ref_n // "") == $r)' "$KEPT_REFERENCE"
}

# With KEEP_SAMPLES=1, a finished cell's samples go to <OUT> at once (to be committed: run
# folders do not outlive their machine); `figures` later keeps only each method's best.
keep_cell() {
    [ "$KEEP_SAMPLES" = 1 ] || return 0
    local name
    name=$(basename "$1")
    cp "$1" "$OUT/tmp-$name"
    mv "$OUT/tmp-$name" "$OUT/samples-$name"
}

# Training steps and minutes of a run (summed over its networks' timing.json).
budget() {
    local run="$RUNS/$PREFIX-$1"
    [ -d "$run" ] || { echo '{"steps": 0, "minutes": 0}'; return; }
    find "$run" -name timing.json -exec jq -s '{steps: (map(.step) | add), minutes: ((map(.seconds) | add) / 60)}' {} +
}

# The CPU that trains and scores here (the table's provenance).
cpu_name() {
    awk -F': ' '/^model name/ {n = $2} /^cpu family/ {f = $2} /^model\t/ {m = $2}
        END {printf "%s (family %s, model %s)", n, f, m}' /proc/cpuinfo 2>/dev/null || echo unknown
}

# fid.json: one entry per method and NFE, {method, nfe, samples, fid, steps, minutes, run, cpu,
# scored}, `run` the identity of the run behind the cell. Run folders do not outlive their
# machine, so the cells of an earlier run (in the previous fid.json, their run not here) stay
# until this machine scores the same method and NFE; fid.md lists them on rows of their own.
table() {
    local m nfe f b id cpu cur earlier
    local json="$OUT/fid.json"
    cpu=$(cpu_name)
    cur=$(
        for m in $METHODS; do
            b=$(budget "$m")
            id=$(run_id "$m")
            for nfe in $(nfes_of "$m"); do
                f="$EVAL/$m-nfe$nfe.npy"
                scored "$f" || continue
                f="$f.fid.json"
                jq -c --arg m "$m" --argjson nfe "$nfe" --argjson n "$N" --argjson b "$b" \
                    --arg run "$id" --arg cpu "$cpu" --arg day "$(date -u -r "$f" +%Y-%m-%d)" \
                    '{method: $m, nfe: $nfe, samples: $n, fid: .fid, steps: $b.steps,
                      minutes: $b.minutes, run: $run, cpu: $cpu, scored: $day}' "$f"
            done
        done | jq -s .
    )
    earlier='[]'
    if [ -f "$json" ]; then
        earlier=$(jq --argjson cur "$cur" \
            '[.[] | .run //= "unrecorded" | .scored //= "an unrecorded date" | . as $e
              | select($cur | all(.method != $e.method or .nfe != $e.nfe))]' "$json")
    fi
    jq -n --argjson a "$cur" --argjson b "$earlier" '$a + $b' > "$json.tmp"
    mv "$json.tmp" "$json"
    {
        local refs
        refs=$(head -c 256 "$EVAL/test.npy" 2>/dev/null | grep -ao "'shape': ([0-9]*" | grep -o "[0-9]*$" || echo "the")
        echo "# $DATASET ($PREFIX): FID of $N samples against $refs test images (our FID, pytorch-fid conventions)"
        echo
        echo "Made by \`${MADE_BY:-scripts/image-experiment.sh}\` on $(date -u +%Y-%m-%d) ($(nproc) CPU cores, $cpu)."
        echo
        local cols
        cols=$(all_nfes)
        printf '| method | training (steps, minutes) |'
        for nfe in $cols; do printf ' NFE %s |' "$nfe"; done
        echo
        printf '|---|---|'
        for _ in $cols; do printf -- '---:|'; done
        echo
        # A row: label, budget ({steps, minutes}), then the cells of method $m and run $id.
        row() {
            printf '| %s | %s |' "$1" "$(jq -r '"\(.steps // "?") steps, \(.minutes // null
                | if type == "number" then (. + 0.5 | floor) else "?" end) min"' <<<"$2")"
            for nfe in $cols; do
                v=$(jq -r --arg m "$m" --arg run "$id" --argjson nfe "$nfe" \
                    '.[] | select(.method == $m and .run == $run and .nfe == $nfe) | .fid' "$json")
                if [ -n "$v" ]; then printf ' %.2f |' "$v"; else printf ' – |'; fi
            done
            echo
        }
        local notes=()
        for m in $METHODS; do
            b=$(budget "$m")
            id=$(run_id "$m")
            if [ -d "$RUNS/$PREFIX-$m" ] ||
                [ "$(jq --arg m "$m" '[.[] | select(.method == $m)] | length' "$json")" = 0 ]; then
                row "$m" "$b"
            fi
            while IFS= read -r id; do
                [ -n "$id" ] || continue
                b=$(jq -c --arg m "$m" --arg run "$id" \
                    '[.[] | select(.method == $m and .run == $run)] | first' "$json")
                row "$m (earlier run)" "$b"
                notes+=("$m (earlier run): scored $(jq -r --arg m "$m" --arg run "$id" \
                    '[.[] | select(.method == $m and .run == $run)]
                     | "\(map(.scored) | unique | join(", ")) on \(map(.cpu // "an unrecorded CPU") | unique | join(", "))"' \
                    "$json"), run $id; its folder is not on this machine (lost with an earlier machine, or trained again since).")
            done < <(jq -r --arg m "$m" --arg run "$(run_id "$m")" \
                '[.[] | select(.method == $m and .run != $run) | .run] | unique | .[]' "$json")
        done
        if [ ${#notes[@]} -gt 0 ]; then
            echo
            printf '%s\n' "${notes[@]}"
        fi
        local r
        if r=$(kept_reference); then
            echo
            printf 'Reference: %s training images (evenly spaced) scored as samples, FID %.2f: the floor of this FID at %s samples (scored %s on %s).\n' \
                "$N" "$(jq .fid <<<"$r")" "$N" "$(jq -r .scored <<<"$r")" "$(jq -r .cpu <<<"$r")"
        fi
    } > "$OUT/fid.md"
    cat "$OUT/fid.md"
}

# The NFE of method $1's best cell in <OUT>/fid.json (empty when it has none).
best_nfe() {
    jq -r --arg m "$1" '[.[] | select(.method == $m)] | min_by(.fid) | .nfe // empty' "$OUT/fid.json"
}

# FID against NFE; Fig. 8: the nearest training images of the first 32 samples of each method
# at its largest NFE (where that file is not on this machine: the kept samples of its best cell);
# the samples behind each method's best FID (KEEP_SAMPLES=1).
figures() {
    local m entries=0
    [ -f "$OUT/fid.json" ] && entries=$(jq length "$OUT/fid.json")
    if [ "$entries" -gt 0 ]; then
        local n
        n=$(jq -r '[.[].samples] | unique | map(tostring) | join("/")' "$OUT/fid.json")
        # One curve per run: the cells of an earlier run (table) on a curve of their own.
        local ids='{}'
        for m in $METHODS; do
            ids=$(jq -c --arg m "$m" --arg id "$(run_id "$m")" '. + {($m): $id}' <<<"$ids")
        done
        jq --argjson ids "$ids" \
            'map(if .run == $ids[.method] then . else .method += " (earlier run)" end)' \
            "$OUT/fid.json" > "$EVAL/fid-curve.json"
        "$NSGF" eval fid-curve "$EVAL/fid-curve.json" --out "$OUT/fid_vs_nfe.png" \
            --title "$DATASET ($PREFIX): FID of $n samples against NFE"
    fi
    if [ "$KEEP_SAMPLES" = 1 ] && [ "$entries" -gt 0 ]; then
        local best src nfe
        for m in $METHODS; do
            best=$(best_nfe "$m")
            [ -n "$best" ] || continue
            src="$EVAL/$m-nfe$best.npy"
            [ -f "$src" ] || { echo "not kept: $src is missing" >&2; continue; }
            cp "$src" "$OUT/tmp-samples-$m.npy"
            mv "$OUT/tmp-samples-$m.npy" "$OUT/samples-$m-nfe$best.npy"
            # Only the cells of this table that are not the best: a kept file of a cell the
            # table does not hold (its run lost with a machine) stays.
            for nfe in $(jq -r --arg m "$m" '.[] | select(.method == $m) | .nfe' "$OUT/fid.json"); do
                [ "$nfe" = "$best" ] || rm -f "$OUT/samples-$m-nfe$nfe.npy"
            done
        done
    fi
    [ -f "$EVAL/train.npy" ] ||
        "$NSGF" data export --dataset "$DATASET" --dir "$DATA" --split train --out "$EVAL/train.npy"
    local top
    for m in $METHODS; do
        top=$(nfes_of "$m" | tr ' ' '\n' | sort -n | tail -1)
        f="$EVAL/$m-nfe$top.npy"
        if [ ! -f "$f" ] && [ "$entries" -gt 0 ]; then
            # Not drawn on this machine (its run lost with an earlier one): the samples kept
            # for the method's best cell.
            top=$(best_nfe "$m")
            f="$OUT/samples-$m-nfe$top.npy"
        fi
        [ -f "$f" ] || continue
        "$NSGF" eval neighbours "$f" "$EVAL/train.npy" --n 32 \
            --out "$OUT/neighbours-$m-nfe$top.png" --json "$OUT/neighbours-$m-nfe$top.json"
    done
}
# Samples and scores method $1 at each of its NFEs that is -$2 (le or gt) EARLY_NFE, the table
# rewritten after every cell.
score() {
    local m=$1 op=$2 nfe
    for nfe in $(nfes_of "$m"); do
        [ "$nfe" "-$op" "$EARLY_NFE" ] || continue
        METHODS=$m NFES=$nfe sample
        fid
        table > /dev/null
    done
}

status() {
    local m nfe f st run
    for m in $METHODS; do
        run="$RUNS/$PREFIX-$m"
        echo "$m:"
        [ -d "$run" ] || { echo "  not trained yet"; continue; }
        while IFS= read -r -d '' st; do
            echo "  checkpoint ${st#"$run"/}: step $(jq .step "$st")"
        done < <(find "$run" -maxdepth 2 -name state.json -print0 | sort -z)
        for nfe in $(nfes_of "$m"); do
            f="$EVAL/$m-nfe$nfe.npy"
            if scored "$f"; then echo "  NFE $nfe: FID $(jq .fid "$f.fid.json")"
            elif [ -f "$f" ]; then echo "  NFE $nfe: drawn, not scored${REF_N:+ against $REF_N test images}"
            elif [ -d "$EVAL/tmp-$m-$nfe.npy.parts" ]; then echo "  NFE $nfe: being drawn"
            else echo "  NFE $nfe: not started"
            fi
        done
    done
    local r
    if r=$(kept_reference); then
        echo "reference ($N training images): FID $(jq .fid <<<"$r")"
    else
        echo "reference ($N training images): not scored"
    fi
}

case "$stage" in
    train) train ;;
    sample) sample ;;
    fid) fid ;;
    reference) reference ;;
    table) table ;;
    figures) figures ;;
    status) status ;;
    all)
        # Two rounds over the methods, one method at a time: first train it and score its NFEs
        # up to EARLY_NFE (the paper's head-to-head at <= 20 NFE, and S-JKO's single call), then
        # the larger NFEs of every method; the table is rewritten after every scored cell. A run
        # spread over many sessions so finishes the <= 20-NFE columns (and, with KEEP_SAMPLES=1,
        # their sample files) before the long NFE-60 draws.
        for m in $ORDER; do
            METHODS=$m train
            score "$m" le
        done
        for m in $ORDER; do
            score "$m" gt
        done
        reference
        table
        figures
        ;;
    *) echo "usage: $0 [train|sample|fid|reference|table|figures|all|status]" >&2; exit 2 ;;
esac
