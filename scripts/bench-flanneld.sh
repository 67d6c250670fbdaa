#!/usr/bin/env bash
# Benchmark: weft's flanneld (etcd v3 mode, vxlan and host-gw) in throwaway network namespaces
# against a real etcd (Debian etcd-server):
#   1. start to subnet.env written (first boot of a host, and a restart), vxlan and host-gw;
#   2. lease put into etcd -> route programmed on two other hosts (p50/p99 over BENCH_FLANNELD_LEASES
#      fake peers, put one at a time), vxlan and host-gw;
#   3. RSS and CPU of flanneld with BENCH_FLANNELD_PEERS fake peer leases (vxlan), and a restart;
#   4. pod-to-pod iperf3 TCP throughput (1 and 4 streams) over flanneld's vxlan and host-gw, over
#      the same paths made by hand with `ip`, and over the bare underlay, interleaved in rounds.
#
#   scripts/bench-flanneld.sh target/x86_64-unknown-linux-gnu/release/weft [REPORT.md]
#
# As root. The report (markdown) goes to stdout and to REPORT.md (default target/bench/flanneld.md),
# the raw samples to REPORT.md.json;
# `make bench` (scripts/bench.sh) runs this after the CNI benchmarks and appends it to
# target/bench/results.md.
# Environment: BENCH_FLANNELD_STARTS (starts per backend and kind, default 20),
# BENCH_FLANNELD_LEASES (default 200), BENCH_FLANNELD_PEERS (default 1000),
# BENCH_FLANNELD_IPERF_SECS (measured seconds per iperf3 run, default 5),
# BENCH_FLANNELD_ROUNDS (iperf3 rounds, default 3), BENCH_FLANNELD_LOGS (a directory to keep the
# flanneld, etcd and iperf3 logs in; by default they go with the temp dir).
# Everything runs inside network namespaces named wfb-<pid>-*: an underlay with bridge ul0 and
# etcd at 192.168.77.254:2379, hosts at 192.168.77.N, pods behind their cni0; etcd's data, the
# subnet files and the logs live in a temp dir (on /dev/shm when there is one: etcd's fsyncs and
# /run/flannel are memory-backed, so the disk does not set the numbers). On every exit path
# (failure and Ctrl-C included) every process still inside one of those namespaces (etcd, flanneld,
# iperf3, ip monitor) is killed by pid, the namespaces are deleted (with their links, routes and
# iptables rules) and the temp dir is removed. Nothing touches the machine's own interfaces,
# routes or firewall rules, and no traffic leaves the namespaces made here.
set -euo pipefail

usage() { echo "usage: $0 PATH/TO/weft [REPORT.md]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
[ "$(id -u)" = 0 ] || { echo "bench-flanneld.sh needs root (it creates network namespaces)" >&2; exit 1; }
[ -x "$1" ] || { echo "bench-flanneld.sh: $1 is not an executable file (run 'make static' first)" >&2; exit 1; }
WEFT=$(readlink -f "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPORT=${2:-$HERE/../target/bench/flanneld.md}
for tool in ip bridge python3 etcd iperf3 iptables-restore ping sysctl; do
    command -v "$tool" >/dev/null || { echo "bench-flanneld.sh: '$tool' not found (make deps)" >&2; exit 1; }
done
[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] ||
    { echo "bench-flanneld.sh: flanneld needs br_netfilter (modprobe br_netfilter)" >&2; exit 1; }

prefix="wfb-$$-"
tmp=""
py=""
ours() { ip netns list 2>/dev/null | awk '{print $1}' | grep -- "^$prefix" || true; }
cleanup() {
    local rc=$? pids left ns i
    trap - EXIT INT TERM
    # The Python body first (a signal got us out of `wait`): it stops what it started and exits.
    if [ -n "$py" ] && kill -0 "$py" 2>/dev/null; then
        kill -TERM "$py" 2>/dev/null || true
        for i in $(seq 100); do kill -0 "$py" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$py" 2>/dev/null || true
    fi
    # Then whatever still runs in our namespaces (deleting a namespace does not stop what runs in
    # it), by pid: TERM, and KILL what is still there after 5 s.
    pids=$(for ns in $(ours); do ip netns pids "$ns" 2>/dev/null; done | grep -vx "$$" | sort -u || true)
    if [ -n "$pids" ]; then
        kill -TERM $pids 2>/dev/null || true
        for i in $(seq 50); do
            left=$(for p in $pids; do [ -d "/proc/$p" ] && echo "$p"; done || true)
            [ -z "$left" ] && break
            sleep 0.1
        done
        [ -n "${left:-}" ] && kill -KILL $left 2>/dev/null || true
    fi
    ours | sed 's/^/netns del /' | ip -force -batch - >/dev/null 2>&1 || true
    for ns in $(ours); do
        ip netns del "$ns" 2>/dev/null || echo "bench-flanneld.sh: could not delete netns $ns" >&2
    done
    if [ -n "$tmp" ]; then
        if [ -n "${BENCH_FLANNELD_LOGS:-}" ]; then
            mkdir -p "$BENCH_FLANNELD_LOGS" &&
                (cd "$tmp" && find . -name '*.log' -exec cp --parents {} "$BENCH_FLANNELD_LOGS" \;) ||
                echo "bench-flanneld.sh: could not copy the logs to $BENCH_FLANNELD_LOGS" >&2
        fi
        rm -rf "$tmp"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$SECONDS
base=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
tmp=$(mktemp -d "$base/weft-bench-flanneld.XXXXXX")
# In the background and waited for, so that a signal runs the trap at once, not when it is done.
python3 "$HERE/bench-flanneld.py" "$tmp" "$WEFT" "$prefix" "$REPORT" &
py=$!
wait "$py"
line="flanneld benchmark run time: $((SECONDS - start)) s (set-up included, clean-up not)."
echo "$line" | tee -a "$REPORT"
echo "bench-flanneld.sh: report written to $(readlink -f "$REPORT")" >&2
