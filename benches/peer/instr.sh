#!/usr/bin/env bash
# Instructions per message of every path of the peer bench, counted by callgrind: unlike
# wall-clock medians they do not move when other work shares the machine's cores.
#
#   benches/peer/instr.sh [ITERS]      (default 2000 messages per path)
#
# Each (message, path) runs in its own valgrind process with only `instr_loop` collected; the
# figure is collected instructions / ITERS (the `dyn` call of the loop adds a few per message
# to every path alike).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
iters=${1:-2000}
bin=$(cargo bench --manifest-path "$here/Cargo.toml" --bench peer --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*/peer-[0-9a-f]*"' | tail -1 | cut -d'"' -f4)
[ -x "$bin" ] || { echo "instr.sh: bench binary not found" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

count() { # case path -> instructions per message, or — when the path does not exist for it
    local out="$tmp/cg.out"
    if PEER_BENCH_INSTR="$2" PEER_BENCH_CASE="$1" PEER_BENCH_ITERS="$iters" \
        valgrind --tool=callgrind --collect-atstart=no --toggle-collect='peer::instr_loop*' \
        --callgrind-out-file="$out" "$bin" >/dev/null 2>"$tmp/err"; then
        awk -v n="$iters" '/^(summary|totals):/ { printf "%.0f", $2 / n; exit }' "$out"
    else
        printf '—'
    fi
}

echo "| message | crossbar Ir/msg | barter-data Ir/msg | barter-data deser Ir/msg | serde_json Ir/msg | barter / crossbar | serde_json / crossbar |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for case in "bookTicker" "bookTicker combined" "trade" "depthUpdate 5+5 spot" "depthUpdate 5+5 usdm"; do
    ours=$(count "$case" crossbar)
    peer=$(count "$case" barter_data)
    deser=$(count "$case" barter_data_deser)
    serde=$(count "$case" serde_json_baseline)
    ratio() { [[ "$1" =~ ^[0-9]+$ && "$2" =~ ^[0-9]+$ ]] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f×", a / b }' || printf '—'; }
    echo "| \`$case\` | $ours | $peer | $deser | $serde | $(ratio "$peer" "$ours") | $(ratio "$serde" "$ours") |"
done
