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
#   scripts/bench-flanneld.sh target/static/weft [REPORT.md]
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
if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPORT=${2:-$HERE/../target/bench/flanneld.md}
prefix="wfb-$$-"
TAG=bench-flanneld.sh
LOGS=${BENCH_FLANNELD_LOGS:-}
# shellcheck source=scripts/benchlab.sh
. "$HERE/benchlab.sh"
lab_check "$1" bridge iptables-restore
lab_trap

start=$SECONDS
lab_up wfb
lab_body "$HERE/bench-flanneld.py" "$tmp" "$WEFT" "$prefix" "$REPORT"
line="flanneld benchmark run time: $((SECONDS - start)) s (set-up included, clean-up not)."
echo "$line" | tee -a "$REPORT"
echo "bench-flanneld.sh: report written to $(readlink -f "$REPORT")" >&2
