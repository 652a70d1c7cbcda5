#!/usr/bin/env bash
# How long `portico apply --check` takes on the embedded default against a
# fixture tree, against an anchor measured in the same run: `nginx -t` on the
# same rendered configuration (what every careful operator runs anyway).
#
#   benches/apply-check.sh [RUNS]     (default 10; needs root for the nginx -t anchor)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
cargo build --release --quiet
bin=target/release/portico
tree=tests/fixtures/trees/debian12

median_ms() { # command...: prints the median wall time of $runs runs, in ms
  local times=()
  for _ in $(seq "$runs"); do
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m/1000}'
}

portico_ms=$(median_ms "$bin" apply --check --root "$tree")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -a "$tree/." "$work/"
"$bin" apply --root "$work" >/dev/null
anchor_ms=$(median_ms unshare -m sh -c "mount --bind $work/etc/nginx /etc/nginx && mount --bind $work/etc/ssl /etc/ssl && nginx -t")

echo "runs: $runs (median wall time)"
echo "portico apply --check --root $tree (embedded default): ${portico_ms} ms"
echo "anchor: nginx -t on the same rendered config:              ${anchor_ms} ms"
awk -v p="$portico_ms" -v a="$anchor_ms" 'BEGIN { printf "ratio portico/anchor: %.2f (goal: portico under 50 ms)\n", p/a }'
