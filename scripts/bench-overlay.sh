#!/usr/bin/env bash
# Benchmark: the flanneld data plane, pod to pod across two "hosts" in network namespaces, for
# every path at once: udp (TUN offloads on, the default), udp with WEFT_UDP_OFFLOAD=0 (one packet
# per TUN read and write, what the tun-tap crate could do), vxlan, host-gw, and the raw underlay
# (host to host over eth0, MTU 1500). Per path: iperf3 TCP throughput with 1 and 4 streams,
# 64-byte UDP packets/s (receiver's count) and loss; flanneld's CPU and memory on the udp hosts.
#
#   scripts/bench-overlay.sh target/static/weft [REPORT.md]
#
# As root. The report (markdown) goes to stdout and to REPORT.md (default target/bench/overlay.md),
# the chart to target/bench/overlay.svg (copied to docs/bench-overlay.svg for README.md unless
# BENCH_OVERLAY_DOCS=0), the raw samples to target/bench/overlay.json. `make bench`
# (scripts/bench.sh) runs this after the flanneld benchmark and appends it to
# target/bench/results.md.
# Environment: BENCH_OVERLAY_SECS (measured seconds per TCP run, plus 1 s omitted; default 5),
# BENCH_OVERLAY_UDP_SECS (seconds per UDP run, default 3), BENCH_OVERLAY_ROUNDS (default 3),
# BENCH_OVERLAY_DOCS (0: leave docs/bench-overlay.svg alone), BENCH_OVERLAY_LOGS (a directory to
# keep the flanneld, etcd and iperf3 logs in; by default they go with the temp dir).
# Each path has its own pair of hosts, every flanneld runs for the whole benchmark and the iperf3
# runs interleave in rounds (the order rotating), so drift on a shared machine hits every path.
# Everything runs inside network namespaces named wob-<pid>-*: an underlay with bridge ul0 and
# etcd at 192.168.77.254:2379, hosts at 192.168.77.N, one pod behind each host's cni0; etcd's
# data, the subnet files and the logs live in a temp dir (on /dev/shm when there is one). On every
# exit path (failure and Ctrl-C included) every process still inside one of those namespaces
# (etcd, flanneld, iperf3) is killed by pid, the namespaces are deleted (with their links, routes
# and iptables rules) and the temp dir is removed. Nothing touches the machine's own interfaces,
# routes or firewall rules, and no traffic leaves the namespaces made here.
set -euo pipefail

usage() { echo "usage: $0 PATH/TO/weft [REPORT.md]" >&2; exit 2; }
if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT="$(cd "$HERE/.." && pwd)/target/bench"
REPORT=${2:-$OUT/overlay.md}
for v in BENCH_OVERLAY_SECS BENCH_OVERLAY_UDP_SECS BENCH_OVERLAY_ROUNDS; do
    [[ ${!v:-1} =~ ^[1-9][0-9]*$ ]] || { echo "bench-overlay.sh: $v must be a positive integer" >&2; exit 2; }
done
prefix="wob-$$-"
TAG=bench-overlay.sh
LOGS=${BENCH_OVERLAY_LOGS:-}
# shellcheck source=scripts/benchlab.sh
. "$HERE/benchlab.sh"
lab_check "$1" ss iptables
[ -c /dev/net/tun ] || lab_die "the udp backend needs /dev/net/tun (modprobe tun)"
lab_trap

start=$SECONDS
lab_up wob
mkdir -p "$OUT"
lab_body "$HERE/bench-overlay.py" "$tmp" "$WEFT" "$prefix" "$REPORT" "$OUT/overlay.svg" "$OUT/overlay.json"
if [ "${BENCH_OVERLAY_DOCS:-1}" != 0 ]; then
    mkdir -p "$HERE/../docs"
    cp "$OUT/overlay.svg" "$HERE/../docs/bench-overlay.svg"
    echo "bench-overlay.sh: chart copied to $(readlink -f "$HERE/../docs/bench-overlay.svg")" >&2
fi
line="Overlay benchmark run time: $((SECONDS - start)) s (set-up included, clean-up not)."
echo "$line" | tee -a "$REPORT"
echo "bench-overlay.sh: report written to $(readlink -f "$REPORT")" >&2
