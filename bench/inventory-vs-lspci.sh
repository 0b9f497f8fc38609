#!/usr/bin/env bash
# Inventory to first answer: graced started over a generated sysfs tree until `GET /gpus` lists every
# GPU, against `lspci -A linux-sysfs -O sysfs.path=TREE/bus/pci -vmm -D` over the same tree, at each
# size given (default 8 72 4096), alternating the two over ROUNDS rounds. graced runs twice per
# round: on a fresh database (first start: every GPU's row and layout written) and again on the
# database the first run left (a restart). Prints the medians and the ratio.
#
#   bench/inventory-vs-lspci.sh [ROUNDS=5] [SIZES...]
source "$(dirname "$0")/common.sh"
ROUNDS=${1:-5}
shift || true
SIZES=${*:-8 72 4096}
build_release
WORK=$(mktemp -d /tmp/grace-inventory-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
machine
median() { sort -n | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

for N in $SIZES; do
    TREE="$WORK/tree-$N"
    "$BIN/grace-bench" make-tree "$N" "$TREE"
    : >"$WORK/lspci"; : >"$WORK/fresh"; : >"$WORK/restart"
    for round in $(seq "$ROUNDS"); do
        start=$(date +%s%N)
        lspci -A linux-sysfs -O "sysfs.path=$TREE/bus/pci" -vmm -D >"$WORK/lspci.out"
        echo $(( ($(date +%s%N) - start) / 1000 )) | awk '{printf "%.1f\n", $1/1000}' >>"$WORK/lspci"
        rm -f "$WORK/db"*
        PORT=$(free_port)
        GRACED=("$BIN/graced" serve --sysfs "$TREE" --listen "127.0.0.1:$PORT" --no-auth --db "$WORK/db"
            --rescan-interval 0 --log-level error)
        python3 "$BENCH_DIR/first-answer.py" "http://127.0.0.1:$PORT/gpus" "$N" -- "${GRACED[@]}" >>"$WORK/fresh"
        python3 "$BENCH_DIR/first-answer.py" "http://127.0.0.1:$PORT/gpus" "$N" -- "${GRACED[@]}" >>"$WORK/restart"
    done
    FUNCTIONS=$(grep -c '^Slot:' "$WORK/lspci.out")
    L=$(median <"$WORK/lspci"); F=$(median <"$WORK/fresh"); R=$(median <"$WORK/restart")
    echo "$N GPUs ($FUNCTIONS functions listed by lspci), medians of $ROUNDS: lspci $L ms | graced first start $F ms ($(awk -v a="$F" -v b="$L" 'BEGIN{printf "%.2f", a/b}')x) | graced restart $R ms ($(awk -v a="$R" -v b="$L" 'BEGIN{printf "%.2f", a/b}')x)"
done
