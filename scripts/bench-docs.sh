#!/usr/bin/env bash
# Writes docs/benchmarks.md: the hand-written method (docs/benchmarks-method.md), then the tables
# `make bench` just printed (target/bench/encap.md and target/bench/results.md).
#
#   scripts/bench-docs.sh     (run by `make bench` after the benchmarks)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="$root/docs/benchmarks.md"
{
    cat "$root/docs/benchmarks-method.md"
    printf '\n## Latest figures\n\n'
    cat "$root/target/bench/results.md"
    if [ -s "$root/target/bench/encap.md" ]; then
        printf '\n## Per-packet work (cargo bench --bench encap)\n\n```\n'
        cat "$root/target/bench/encap.md"
        printf '```\n'
    fi
} >"$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out"
