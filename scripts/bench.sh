#!/usr/bin/env bash
# Benchmark: weft's loopback, host-local, bridge and ptp applets against the Go reference plugins
# (Debian containernetworking-plugins, /usr/lib/cni), both run exactly as a container runtime runs
# them: exec'd under the plugin's name, CNI_* environment, config JSON on stdin, CNI_PATH the
# implementation's own directory (so weft's bridge/ptp run host-local in-process, Go's exec it).
#
#   scripts/bench.sh target/static/weft     (as root; `make bench`)
#
# Environment: BENCH_N (measured iterations per op, default 200), BENCH_WARMUP (default 5),
# BENCH_PODS (throughput pods, default 500), BENCH_CONC (throughput concurrency, default 16).
# Latency: every iteration runs weft and Go alternately (which goes first alternates), so drift
# hits both; a static C launcher (scripts/bench-run.c) forks and execs the plugin and reports the
# wall time (CLOCK_MONOTONIC) from fork until the plugin is reaped and its stdout and stderr are
# closed (libcni waits for both), and wait4's ru_maxrss. (Timing from python3 directly
# would not do: a child's ru_maxrss keeps the RSS of the process it was forked from, so every
# plugin would report python's ~14 MiB.) bridge and ptp run in a per-implementation "host"
# network namespace the launcher setns()es into before the clock starts.
# Throughput: BENCH_PODS pods into one bridge, BENCH_CONC ADDs in flight, then as many DELs, by
# the same launcher, rounds weft, Go, Go, weft, Go, weft, weft, Go.
# Every invocation must exit 0 and do what it should (lo up/down, eth0 with the address, reservation
# written/removed, no veth left); anything else aborts. scripts/bench.py does the work and prints
# the markdown report, also written to target/bench/results.md.
# Then scripts/bench-flanneld.sh (flanneld: start-up, lease-to-route latency, RSS with 1000 peers,
# pod-to-pod iperf3 over vxlan and host-gw against the same paths made by hand) appends its tables
# to the same report; BENCH_FLANNELD=0 skips it, BENCH_FLANNELD_* tune it (see that script).
# Then scripts/bench-overlay.sh (pod-to-pod iperf3 TCP 1/4 streams and 64-byte UDP packets/s over
# flanneld udp, udp with WEFT_UDP_OFFLOAD=0, vxlan, host-gw and the raw underlay; about 4 minutes)
# appends its tables and writes the chart target/bench/overlay.svg, copied to
# docs/bench-overlay.svg; BENCH_OVERLAY=0 skips it, BENCH_OVERLAY_* tune it (see that script).
# Everything the plugins touch is inside network namespaces named wtb-<pid>-*, which this script
# makes and removes (with their links, routes and iptables rules) on every exit path, with its temp
# dir. It touches no interface, route or firewall rule of the machine's own.
set -euo pipefail

usage() { echo "usage: $0 PATH/TO/weft   (env: BENCH_N, BENCH_WARMUP, BENCH_PODS, BENCH_CONC)" >&2; exit 2; }
[ $# -eq 1 ] || usage
[ "$(id -u)" = 0 ] || { echo "bench.sh needs root (it creates network namespaces)" >&2; exit 1; }
[ -x "$1" ] || { echo "bench.sh: $1 is not an executable file (run 'make static' first)" >&2; exit 1; }
WEFT=$(readlink -f "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RESULTS="$HERE/../target/bench/results.md"
GO_DIR=/usr/lib/cni
N=${BENCH_N:-200}
WARMUP=${BENCH_WARMUP:-5}
PODS=${BENCH_PODS:-500}
CONC=${BENCH_CONC:-16}
for v in N PODS CONC; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "bench.sh: BENCH_$v must be a positive integer" >&2; exit 2; }
done
[[ $WARMUP =~ ^[0-9]+$ ]] || { echo "bench.sh: BENCH_WARMUP must be a non-negative integer" >&2; exit 2; }
for tool in ip python3 cc dpkg-query; do
    command -v "$tool" >/dev/null || { echo "bench.sh: '$tool' not found (make deps)" >&2; exit 1; }
done
for p in loopback host-local bridge ptp; do
    [ -x "$GO_DIR/$p" ] || { echo "bench.sh: $GO_DIR/$p missing (apt-get install containernetworking-plugins)" >&2; exit 1; }
done

prefix="wtb-$$-"
tmp=""
shm=""
cleanup() {
    local rc=$? left
    trap - EXIT INT TERM
    # Deleting a namespace takes its links, routes and iptables rules with it; veth peers in
    # other namespaces go too. One `ip -batch` for speed, then one by one for any that stayed.
    ip netns list 2>/dev/null | awk '{print $1}' | grep -- "^$prefix" | sed 's/^/netns del /' |
        ip -force -batch - >/dev/null 2>&1 || true
    left=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -- "^$prefix" || true)
    for ns in $left; do
        ip netns del "$ns" 2>/dev/null || echo "bench.sh: could not delete netns $ns" >&2
    done
    if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
    if [ -n "$shm" ]; then rm -rf "$shm"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$SECONDS
tmp=$(mktemp -d /tmp/weft-bench.XXXXXX)
# The launcher's per-pod stdout/stderr files in the throughput runs go to tmpfs when there is one:
# creating 4 files per pod on this VM's disk cost the launcher a fifth of both CPUs, which
# weighs on whichever implementation is faster. IPAM data stays on disk, as in production.
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
    shm=$(mktemp -d /dev/shm/weft-bench.XXXXXX)
fi
export BENCH_OUT_DIR=${shm:-$tmp/tp}
mkdir "$tmp/bin" "$tmp/data" "$tmp/tp"
if ! out=$("$WEFT" --install "$tmp/bin" 2>&1); then
    echo "bench.sh: '$WEFT --install' failed: $out" >&2
    exit 1
fi
cc -O2 -Wall -static -o "$tmp/bench-run" "$HERE/bench-run.c" 2>/dev/null ||
    cc -O2 -Wall -o "$tmp/bench-run" "$HERE/bench-run.c"

python3 "$HERE/bench.py" "$tmp" "$GO_DIR" "$N" "$WARMUP" "$prefix" "$WEFT" "$PODS" "$CONC" "$RESULTS"
if [ "${BENCH_FLANNELD:-1}" != 0 ]; then
    # Its own namespaces (wfb-<pid>-*), processes and temp dir, cleaned up by itself.
    "$HERE/bench-flanneld.sh" "$WEFT" "$tmp/flanneld.md"
    { echo; cat "$tmp/flanneld.md"; echo; } >> "$RESULTS"
fi
if [ "${BENCH_OVERLAY:-1}" != 0 ]; then
    # The same, in namespaces wob-<pid>-*; also writes target/bench/overlay.svg (and .json) and
    # copies the chart to docs/bench-overlay.svg.
    "$HERE/bench-overlay.sh" "$WEFT" "$tmp/overlay.md"
    { echo; cat "$tmp/overlay.md"; echo; } >> "$RESULTS"
fi

line="Run time: $((SECONDS - start)) s (namespace set-up included, clean-up not)."
echo "$line" | tee -a "$RESULTS"
echo "bench.sh: report written to $(readlink -f "$RESULTS")" >&2
