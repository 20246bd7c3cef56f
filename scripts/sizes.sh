#!/usr/bin/env bash
# Prints each shipped binary's size as `make install` ships it (stripped) against the 25 MB budget;
# exits 1 if one is over. Usage: sizes.sh BIN_DIR
set -euo pipefail
bin=$1 budget=$((25 * 1000 * 1000)) over=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for b in kvsupervisor kvctl kvnode; do
    strip -o "$tmp/$b" "$bin/$b"
    size=$(stat -c %s "$tmp/$b")
    verdict=ok; ((size > budget)) && { verdict="OVER"; over=1; }
    awk -v n="$b" -v s="$size" -v f="$(stat -c %s "$bin/$b")" -v v="$verdict" \
        'BEGIN { printf "%-13s %6.1f MB stripped (%6.1f MB built)  budget 25.0 MB  %s\n", n, s / 1e6, f / 1e6, v }'
done
exit $over
