# Sourced by bench-flanneld.sh and bench-overlay.sh: the lab their Python body measures in
# (tests/lab, driven through the weft-lab command; benchlab.py holds the Python side). The caller
# sets TAG (its name, for messages), prefix (of every namespace it makes) and LOGS (a directory to
# keep the logs in, or empty), then calls lab_check and lab_trap; lab_up makes the underlay and etcd (and sets
# tmp, the lab's directory) and lab_body runs the Python body.
# shellcheck shell=bash disable=SC2154,SC2034 # prefix, TAG and LOGS are the caller's; tmp is theirs to use

LAB=${WEFT_LAB:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/debug/weft-lab}
state=""
tmp=""
py=""

lab_die() { echo "$TAG: $*" >&2; exit 1; }

# lab_check WEFT TOOL...: root, WEFT an executable file (WEFT is set to its full path), the lab
# command, the tools every lab run needs and each TOOL, and br_netfilter (flanneld refuses to
# start without it).
lab_check() {
    local tool
    [ "$(id -u)" = 0 ] || lab_die "needs root (it creates network namespaces)"
    { [ -f "$1" ] && [ -x "$1" ]; } || lab_die "$1 is not an executable file (run 'make static' first)"
    WEFT=$(readlink -f "$1")
    shift
    [ -x "$LAB" ] || lab_die "the lab command $LAB is missing: cargo build -p weft-lab (make bench does)"
    for tool in ip python3 etcd iperf3 ping sysctl "$@"; do
        command -v "$tool" >/dev/null || lab_die "'$tool' not found (make deps)"
    done
    [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] ||
        lab_die "flanneld needs br_netfilter (modprobe br_netfilter)"
}

lab_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # The Python body first (a signal got us out of `wait`): it stops what it started and exits.
    if [ -n "$py" ] && kill -0 "$py" 2>/dev/null; then
        kill -TERM "$py" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$py" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$py" 2>/dev/null || true
    fi
    # Then the lab: whatever still runs in its namespaces (by pid: TERM, then KILL after 5 s),
    # the namespaces (with their links, routes and iptables rules) and the temp dir.
    if [ -n "$state" ] && [ -e "$state" ]; then
        "$LAB" down "$state" ${LOGS:+--logs "$LOGS"} >/dev/null || echo "$TAG: the lab's teardown failed (above)" >&2
    fi
    rm -f "$state"
    exit "$rc"
}

lab_trap() {
    trap lab_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# lab_up NAME: the underlay with etcd (member NAME), its directory on /dev/shm when there is one
# (etcd's fsyncs and /run/flannel are then memory-backed, so the disk does not set the numbers).
lab_up() {
    local base=/tmp out
    [ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
    state="$base/$prefix$1.state"
    out=$("$LAB" up "$state" --prefix "$prefix" --tmp-base "$base" --etcd-name "$1") || exit 1
    tmp=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["dir"])' <<<"$out")
    export WEFT_LAB="$LAB" WEFT_LAB_STATE="$state"
}

# lab_body SCRIPT ARG...: in the background and waited for, so that a signal runs the trap at
# once, not when the body is done.
lab_body() {
    python3 "$@" &
    py=$!
    wait "$py"
}
