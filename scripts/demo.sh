#!/usr/bin/env bash
# `make demo`: a working flannel overlay on one machine, made of weft alone and a real etcd.
#
#   scripts/demo.sh [PATH/TO/weft]   run the demo (default: the static binary `make static` builds)
#   scripts/demo.sh --down [STATE]   tear down what a KEEP=1 run left (`make demo-down`): every
#                                    state file in $DEMO_STATE_DIR, or the one given
#
# What it does, as root: has the lab (`weft-lab up`, tests/lab: the same testbed the tests and
# benchmarks use) make an "underlay" network namespace with a bridge (ul0, 192.168.77.254) and a
# real etcd on it, and three "host" namespaces plugged into that bridge (192.168.77.1-3); installs
# the applets into the lab's temp directory (`weft --install`), starts flanneld in each host, adds
# two "pods" per host through the flannel CNI plugin exactly as a container runtime would (CNI_*
# environment, config on stdin, run from inside the host), shows the leases, subnet.env files and
# what the backend programmed, pings every pod from every pod, runs one iperf3 across hosts, and
# tears everything down again: CNI DEL for the pods, then `weft-lab down` (SIGTERM for flanneld and
# etcd, then the namespaces, whose links, routes and iptables chains go with them, and the temp
# directory). That
# happens on every exit path, failure and Ctrl-C included. Nothing is made in the machine's own
# network namespace, and no packet leaves the namespaces made here.
#
# Environment:
#   BACKEND=vxlan|host-gw|udp  flannel backend (default vxlan)
#   KEEP=1                     leave it running (also after a failure, to look at it) and print
#                              how to explore it and how to remove it (`make demo-down`)
#   NETWORK=10.5.0.0/16        the flannel network (a /16; each host leases a /24 of it)
#   IPERF_TIME=3               seconds of iperf3 (0: skip it)
#   DEMO_ETCD_PORT=2379        etcd's client port (the peer port is the next one)
#   DEMO_STATE_DIR=/run/weft-demo  where a run records what it made (for teardown and demo-down)
#   DEMO_SUMMARY=FILE          write a machine-readable summary there (the state file + results)
#   WEFT_LAB=PATH              the lab command (default target/debug/weft-lab, which `make demo`
#                              builds: cargo build -p weft-lab)
#
# shellcheck disable=SC2317 # (functions called through trap and wait_until are reachable)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE_DIR=${DEMO_STATE_DIR:-/run/weft-demo}
UNDERLAY=192.168.77
ETCD_IP=$UNDERLAY.254
HOSTS=(h1 h2 h3)
PODS=(a b)

if [ -t 1 ]; then bold=$'\033[1m' red=$'\033[31m' green=$'\033[32m' off=$'\033[0m'; else bold='' red='' green='' off=''; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
say() { printf '   %s\n' "$*"; }
indent() { sed 's/^/     /'; }
die() {
    printf '%sdemo: %s%s\n' "$red" "$1" "$off" >&2
    shift
    local l
    for l in "$@"; do printf '      %s\n' "$l" >&2; done
    exit 1
}
plural() { if [ "$1" = 1 ]; then echo "1 $2"; elif [ "$2" = process ]; then echo "$1 processes"; else echo "$1 $2s"; fi; }
now_ms() { date +%s%3N; }
since() { local t=$(($(now_ms) - $1)); printf '%d.%d s' $((t / 1000)) $((t % 1000 / 100)); }

# ---------------------------------------------------------------------------------------------
# Teardown, from a state file alone: the same code for the end of a run, a failure, Ctrl-C and
# `make demo-down`. The state file is the lab's ledger (tests/lab/src/ledger.rs: tmp, netns and
# proc records, each written before the thing is made), to which the demo adds its own:
#   pod HOSTNS CONTAINERID PODNS CONFFILE | result KEY VALUE
LAB=${WEFT_LAB:-$HERE/../target/debug/weft-lab}
need_lab() {
    [ -x "$LAB" ] || die "the lab command $LAB is missing" "build it: cargo build -p weft-lab (make demo does)"
}

teardown() {
    local state=$1 kind a b c d tmpdir="" n_pods=0 out
    local -a pods=()
    [ -f "$state" ] || return 0
    set +e
    while read -r kind a b c d; do
        case $kind in
            tmp) tmpdir=$a ;;
            pod) pods+=("$a $b $c $d") ;;
        esac
    done <"$state"

    # Pods: CNI DEL, newest first, as the runtime would (flannel replays the saved delegate
    # config: bridge removes the veth, host-local releases the address).
    local i host cid podns conf
    for ((i = ${#pods[@]} - 1; i >= 0; i--)); do
        read -r host cid podns conf <<<"${pods[i]}"
        if [ -e "/run/netns/$host" ] && [ -x "$tmpdir/bin/flannel" ] && [ -f "$conf" ]; then
            ip netns exec "$host" env CNI_COMMAND=DEL CNI_CONTAINERID="$cid" \
                CNI_NETNS="/run/netns/$podns" CNI_IFNAME=eth0 CNI_PATH="$tmpdir/bin" \
                "$tmpdir/bin/flannel" <"$conf" >/dev/null 2>"$tmpdir/del.err" ||
                echo "demo: CNI DEL of $cid failed: $(cat "$tmpdir/del.err")" >&2
            n_pods=$((n_pods + 1))
        fi
    done
    # Then the lab: iperf3, flanneld and etcd (newest first, SIGTERM and wait), anything else
    # still running in its namespaces, the namespaces, the temp dir and the state file.
    out=$("$LAB" down "$state") || return 1
    rmdir "$(dirname "$state")" 2>/dev/null
    say "CNI DEL for $(plural "$n_pods" pod), $out"
}

if [ "${1:-}" = --down ]; then
    [ "$(id -u)" = 0 ] || die "demo-down needs root"
    need_lab
    shift
    files=("$@")
    if [ ${#files[@]} -eq 0 ]; then
        shopt -s nullglob
        files=("$STATE_DIR"/*.state)
    fi
    if [ ${#files[@]} -eq 0 ]; then
        echo "no demo to tear down (no state file in $STATE_DIR)"
        exit 0
    fi
    rc=0
    for f in "${files[@]}"; do
        step "tearing down the demo recorded in $f"
        teardown "$f" || rc=1
    done
    exit "$rc"
fi
case ${1:-} in -h | --help) sed -n '2,/^# shellcheck/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac

# ---------------------------------------------------------------------------------------------
# Checks before anything is made.
[ $# -le 1 ] || die "usage: $0 [PATH/TO/weft] | --down [STATEFILE]"
BACKEND=${BACKEND:-vxlan}
NETWORK=${NETWORK:-10.5.0.0/16}
IPERF_TIME=${IPERF_TIME:-3}
KEEP=${KEEP:-}
[ "$KEEP" = 0 ] && KEEP=""
case $BACKEND in
    vxlan | udp | host-gw) ;;
    *) die "unknown BACKEND '$BACKEND'" "use BACKEND=vxlan (default), BACKEND=host-gw or BACKEND=udp" ;;
esac
[[ $NETWORK =~ ^10\.[0-9]+\.0\.0/16$ ]] || die "NETWORK must look like 10.N.0.0/16, not '$NETWORK'"
port=${DEMO_ETCD_PORT:-2379}
if ! [[ $port =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65534 ]; then
    die "DEMO_ETCD_PORT must be a port number (1-65534; etcd's peer port is the next one), not '$port'"
fi
[[ $IPERF_TIME =~ ^[0-9]+$ ]] || die "IPERF_TIME must be a number of seconds, not '$IPERF_TIME'"
[ "$(id -u)" = 0 ] || die "the demo needs root: it creates network namespaces" "run: sudo make demo"
need_lab

bin_arg=${1:-$HERE/../target/static/weft}
{ [ -f "$bin_arg" ] && [ -x "$bin_arg" ]; } ||
    die "$bin_arg is not an executable file" "build it first: make static (make demo does), or pass the binary: $0 target/debug/weft"
WEFT=$(readlink -f "$bin_arg")

declare -A pkg_of=([ip]=iproute2 [bridge]=iproute2 [ss]=iproute2 [etcd]=etcd-server
    [etcdctl]=etcd-client [iperf3]=iperf3 [ping]=iputils-ping [iptables]=iptables [jq]=jq
    [setsid]=util-linux [sysctl]=procps)
missing=()
for t in ip bridge ss etcd etcdctl iperf3 ping iptables jq setsid sysctl; do
    command -v "$t" >/dev/null || missing+=("$t (Debian package ${pkg_of[$t]})")
done
[ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]}" "make deps installs them (or apt-get install the packages named)"
[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] ||
    die "the kernel's br_netfilter is not loaded: flanneld refuses to start without /proc/sys/net/bridge/bridge-nf-call-iptables" \
        "load it with: modprobe br_netfilter" \
        "(this makes bridged traffic pass through iptables, as on every Kubernetes node)"
if [ "$BACKEND" = udp ] && [ ! -c /dev/net/tun ]; then
    die "the udp backend needs a TUN device and /dev/net/tun is missing" \
        "load the driver with: modprobe tun (kernel CONFIG_TUN)"
fi

# ---------------------------------------------------------------------------------------------
# Names and state. Every name carries this run's pid, so runs (and the tests) do not collide.
id=$$
prefix=weft-demo-$id
ul=$prefix-ul
mkdir -p "$STATE_DIR"
state=$STATE_DIR/$id.state
[ ! -e "$state" ] || die "$state already exists (a kept demo with this pid?)" "remove it first: make demo-down"
for ns in $(ip netns list | awk '{print $1}'); do
    [[ $ns != "$prefix"-* ]] || die "namespace $ns already exists" "remove it first: make demo-down"
done
record() { echo "$*" >>"$state"; }
tmp=""
interrupted=""
t_start=$(now_ms)
declare -A host_ip host_ns subnet pod_ip pod_ns fl_pid

on_exit() {
    local rc=$?
    # A second Ctrl-C must not cut the teardown short (it takes about a second).
    trap - EXIT
    trap '' INT TERM
    [ -f "$state" ] && [ -n "${DEMO_SUMMARY:-}" ] && { cp "$state" "$DEMO_SUMMARY"; echo "exit $rc" >>"$DEMO_SUMMARY"; }
    if [ -n "$KEEP" ] && [ -z "$interrupted" ] && [ -f "$state" ]; then
        step "KEEP=1: everything is still running (state: $state)"
        cat <<EOF
   explore it (hosts $prefix-h1..h3, pods $prefix-h1-a..h3-b, underlay + etcd $ul):
     ip netns list | grep $prefix
     ip -n $prefix-h1 route
     ip netns exec $prefix-h1 iptables -t nat -S
     ip netns exec $prefix-h1-a ip addr
     ip netns exec $prefix-h1-a ping ${pod_ip[h3-b]:-<a pod address>}
     ip netns exec $ul env ETCDCTL_API=3 etcdctl --endpoints ${endpoint:-} get --prefix /coreos.com/network
     less $tmp/h1/flanneld.log
   tear it down:
     make demo-down          (or: $0 --down $state)
EOF
        exit "$rc"
    fi
    step "teardown"
    teardown "$state" || rc=1
    say "the whole run took $(since "$t_start")"
    [ -n "$interrupted" ] && echo "demo: interrupted" >&2
    exit "$rc"
}
trap on_exit EXIT
trap 'interrupted=1; exit 130' INT
trap 'interrupted=1; exit 143' TERM

# Waits up to $1 seconds for the command to succeed; fails with the rest of the message.
wait_until() {
    local limit=$1 i
    shift
    for ((i = 0; i < limit * 10; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}
alive() { [ -d "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
ctl() { ip netns exec "$ul" env ETCDCTL_API=3 etcdctl --endpoints "$endpoint" "$@"; }

# ---------------------------------------------------------------------------------------------
step "$("$WEFT" --version): a flannel overlay on this machine, backend $BACKEND"
say "everything lives in network namespaces $prefix-* and in a temp dir;"
say "the machine's own interfaces, routes and firewall are not touched"

step "the lab: underlay $ul (bridge ul0, $ETCD_IP/24, the hosts' \"LAN\"), etcd $(etcd --version | awk '/etcd Version/ {print $3}') on it, three hosts"
say "weft-lab up $state --prefix $prefix- --hosts 3 --etcd-port $port --etcd-name demo"
t=$(now_ms)
# etcd listens inside the underlay namespace, where nothing else runs: its ports are free
# whatever listens on the machine itself.
lab=$("$LAB" up "$state" --prefix "$prefix-" --hosts 3 --etcd-port "$port" --etcd-name demo) ||
    die "the lab did not come up (weft-lab's error above; KEEP=1 keeps what it made)" \
        "the demo needs Debian's etcd-server (3.4): make deps"
tmp=$(jq -r .dir <<<"$lab")
endpoint=$(jq -r .endpoint <<<"$lab")
bin=$tmp/bin
say "etcd healthy on $endpoint (data and log in $tmp/etcd), hosts up, after $(since "$t")"
n=0
for h in "${HOSTS[@]}"; do
    n=$((n + 1))
    host_ns[$h]=$prefix-$h
    host_ip[$h]=$(jq -r ".hosts[$((n - 1))].ip" <<<"$lab")
    say "host $h: namespace ${host_ns[$h]}, eth0 = ${host_ip[$h]}/24 on ul0, default route via $ETCD_IP"
done
if [ "$BACKEND" = vxlan ]; then
    ip -n "$ul" link add wdvx type vxlan id 42 dstport 0 nolearning 2>"$tmp/vxlan.err" ||
        die "the kernel cannot make a vxlan device: $(cat "$tmp/vxlan.err")" \
            "load the driver with: modprobe vxlan (kernel CONFIG_VXLAN), or try BACKEND=host-gw"
    ip -n "$ul" link del wdvx
fi
config=$(printf '{"Network":"%s","SubnetLen":24,"Backend":{"Type":"%s"}}' "$NETWORK" "$BACKEND")
say "ETCDCTL_API=3 etcdctl put /coreos.com/network/config '$config'"
ctl put /coreos.com/network/config "$config" >/dev/null

step "weft --install $bin"
"$WEFT" --install "$bin" >"$tmp/install.log" 2>&1 || die "weft --install failed: $(cat "$tmp/install.log")"
say "applets: $(find "$bin" -type l -printf '%f\n' | sort | tr '\n' ' ')"

# ---------------------------------------------------------------------------------------------
step "flanneld in each host"
say "flanneld -etcd-endpoints=$endpoint -iface=eth0 -ip-masq -subnet-file=$tmp/hN/subnet.env"
for h in "${HOSTS[@]}"; do
    setsid ip netns exec "${host_ns[$h]}" "$bin/flanneld" -etcd-endpoints="$endpoint" -iface=eth0 \
        -ip-masq -subnet-file="$tmp/$h/subnet.env" </dev/null >/dev/null 2>"$tmp/$h/flanneld.log" &
    fl_pid[$h]=$!
    record proc "${fl_pid[$h]}" flanneld
done
t=$(now_ms)
# Ready: subnet.env written (or flanneld gone: no point waiting).
ready() { [ -s "$tmp/$1/subnet.env" ] || ! alive "${fl_pid[$1]}"; }
for h in "${HOSTS[@]}"; do
    if ! wait_until 30 ready "$h" || [ ! -s "$tmp/$h/subnet.env" ]; then
        echo "demo: flanneld on $h $(alive "${fl_pid[$h]}" && echo "wrote no subnet.env in 30 s" || echo exited); the end of its log:" >&2
        tail -n 15 "$tmp/$h/flanneld.log" | indent >&2
        die "flanneld failed on $h" "see its log above (the whole log: $tmp/$h/flanneld.log; KEEP=1 keeps it)"
    fi
    subnet[$h]=$(sed -n 's/^FLANNEL_SUBNET=//p' "$tmp/$h/subnet.env")
    say "$h: wrote subnet.env, FLANNEL_SUBNET=${subnet[$h]} ($(since "$t"))"
done

# Each host learns the others' leases through its etcd watch and programs them: wait until every
# host has a way to every other host's subnet (a route per peer; for udp, the peer is known to
# flanneld itself, and the kernel only has one route to the network via flannel0).
peer_net() { local s=${subnet[$1]%/*}; echo "${s%.*}.0/24"; }
programmed() {
    local h=$1 p=$2
    if [ "$BACKEND" = udp ]; then
        ip -n "${host_ns[$h]}" route get "${subnet[$p]%/*}" 2>/dev/null | grep -q "dev flannel0"
    else
        ip -n "${host_ns[$h]}" route show exact "$(peer_net "$p")" | grep -q .
    fi
}
t=$(now_ms)
for h in "${HOSTS[@]}"; do
    for p in "${HOSTS[@]}"; do
        [ "$h" = "$p" ] && continue
        wait_until 20 programmed "$h" "$p" ||
            die "flanneld on $h has programmed no route to $p's subnet $(peer_net "$p") after 20 s" \
                "its log: $tmp/$h/flanneld.log (KEEP=1 keeps it)"
    done
done
say "every host has routes to the other two hosts' subnets ($(since "$t"))"

# ---------------------------------------------------------------------------------------------
step "the leases in etcd (etcdctl get --prefix /coreos.com/network/subnets)"
ctl get --prefix /coreos.com/network/subnets | paste -d' ' - - | sed 's/^/   /' 

for h in "${HOSTS[@]}"; do
    ns=${host_ns[$h]}
    step "host $h ($ns, ${host_ip[$h]}): lease $(peer_net "$h")"
    say "subnet.env:"
    indent <"$tmp/$h/subnet.env"
    say "ip -n $ns route"
    ip -n "$ns" route | indent
    case $BACKEND in
        vxlan)
            say "bridge -n $ns fdb show dev flannel.1   (peer VTEP MAC -> peer's underlay IP)"
            bridge -n "$ns" fdb show dev flannel.1 | indent
            say "ip -n $ns neigh show dev flannel.1     (peer VTEP IP -> VTEP MAC)"
            ip -n "$ns" neigh show dev flannel.1 | indent
            ;;
        udp)
            say "ip -n $ns -d link show flannel0"
            ip -n "$ns" -d link show flannel0 | indent
            ;;
    esac
done

step "iptables rules flanneld keeps in each host (h1's; -ip-masq and the forward rules)"
for table in filter nat; do
    ip netns exec "${host_ns[h1]}" iptables -w -t "$table" -S | grep -E -- '-[AN] FLANNEL|-j FLANNEL' |
        sed "s/^/   [$table] /"
done

# ---------------------------------------------------------------------------------------------
step "pods: two per host, through the flannel CNI plugin, as a runtime calls it"
conf_of() { echo "$tmp/$1/flannel.conf"; }
for h in "${HOSTS[@]}"; do
    cat >"$(conf_of "$h")" <<JSON
{"cniVersion":"1.1.0","name":"weft-demo","type":"flannel",
 "subnetFile":"$tmp/$h/subnet.env","dataDir":"$tmp/$h/flannel",
 "delegate":{"hairpinMode":true,"isDefaultGateway":true},
 "ipam":{"dataDir":"$tmp/$h/ipam"}}
JSON
done
say "config on stdin (h1's; the others differ in their paths):"
indent <"$(conf_of h1)"
say "ip netns exec $prefix-h1 env CNI_COMMAND=ADD CNI_CONTAINERID=$prefix-h1-a \\"
say "    CNI_NETNS=/run/netns/$prefix-h1-a CNI_IFNAME=eth0 CNI_PATH=$bin $bin/flannel < flannel.conf"
first=1
for h in "${HOSTS[@]}"; do
    for p in "${PODS[@]}"; do
        pod=$h-$p
        ns=$prefix-$pod
        pod_ns[$pod]=$ns
        record netns "$ns"
        ip netns add "$ns"
        record pod "${host_ns[$h]}" "$ns" "$ns" "$(conf_of "$h")"
        if ! ip netns exec "${host_ns[$h]}" env CNI_COMMAND=ADD CNI_CONTAINERID="$ns" \
            CNI_NETNS="/run/netns/$ns" CNI_IFNAME=eth0 CNI_PATH="$bin" \
            "$bin/flannel" <"$(conf_of "$h")" >"$tmp/$pod.json" 2>"$tmp/$pod.err"; then
            die "CNI ADD for pod $pod failed: $(cat "$tmp/$pod.json" "$tmp/$pod.err")"
        fi
        if [ -n "$first" ]; then
            say "result of h1-a's ADD:"
            jq -c . "$tmp/$pod.json" | indent
            first=""
        fi
        pod_ip[$pod]=$(jq -r '.ips[0].address | split("/")[0]' "$tmp/$pod.json")
    done
done
say "pod    address      netns                         host side"
for h in "${HOSTS[@]}"; do
    for p in "${PODS[@]}"; do
        pod=$h-$p
        printf '   %-6s %-12s %-29s %s\n' "$pod" "${pod_ip[$pod]}" "${pod_ns[$pod]}" \
            "$(jq -r '[.interfaces[] | select(.sandbox == null) | .name] | join(" + ")' "$tmp/$pod.json")"
    done
done
say "inside h1-a: $(ip -n "${pod_ns[h1-a]}" route | paste -sd';' - | sed 's/;/; /g')"

# ---------------------------------------------------------------------------------------------
# One packet, 2 s timeout, and one retry: a first packet may wait for ARP on the underlay.
all_pods=()
for h in "${HOSTS[@]}"; do for p in "${PODS[@]}"; do all_pods+=("$h-$p"); done; done
reach() { ip netns exec "${pod_ns[$1]}" ping -c 1 -W 2 "${pod_ip[$2]}" >/dev/null 2>&1; }
step "ping matrix: row pings column (ping -c 1 -W 2, one retry)"
printf '   %-6s' ""
for to in "${all_pods[@]}"; do printf '%6s' "$to"; done
echo
ok=0 pairs=0 cross_ok=0 cross=0
t=$(now_ms)
for from in "${all_pods[@]}"; do
    printf '   %-6s' "$from"
    for to in "${all_pods[@]}"; do
        if [ "$from" = "$to" ]; then printf '%6s' "-"; continue; fi
        pairs=$((pairs + 1))
        [ "${from%-*}" != "${to%-*}" ] && cross=$((cross + 1))
        if reach "$from" "$to" || reach "$from" "$to"; then
            ok=$((ok + 1))
            [ "${from%-*}" != "${to%-*}" ] && cross_ok=$((cross_ok + 1))
            printf '%s%6s%s' "$green" ok "$off"
        else
            printf '%s%6s%s' "$red" FAIL "$off"
        fi
    done
    echo
done
say "$ok/$pairs pairs reachable ($cross_ok/$cross across hosts) in $(since "$t")"
record result pairs "$pairs"
record result reachable "$ok"
record result cross_pairs "$cross"
record result cross_reachable "$cross_ok"

# ---------------------------------------------------------------------------------------------
rate=""
if [ "$IPERF_TIME" -gt 0 ]; then
    src=h1-a dst=h3-a
    step "iperf3: pod $src (${pod_ip[$src]}) -> pod $dst (${pod_ip[$dst]}), $IPERF_TIME s, over $BACKEND"
    setsid ip netns exec "${pod_ns[$dst]}" iperf3 -s -1 --logfile "$tmp/iperf3-server.log" \
        </dev/null >/dev/null 2>&1 &
    record proc $! iperf3
    listening() { ip netns exec "${pod_ns[$dst]}" ss -Hltn "sport = :5201" | grep -q .; }
    wait_until 10 listening || die "iperf3 -s did not start in ${pod_ns[$dst]}: $(cat "$tmp/iperf3-server.log")"
    if ip netns exec "${pod_ns[$src]}" iperf3 -c "${pod_ip[$dst]}" -t "$IPERF_TIME" -J \
        >"$tmp/iperf3.json" 2>&1; then
        read -r bps mib retr < <(jq -r '[(.end.sum_received.bits_per_second | floor),
            (.end.sum_received.bytes / 1048576 | floor), .end.sum_sent.retransmits] | @tsv' "$tmp/iperf3.json")
        rate=$(awk -v b="$bps" 'BEGIN { if (b >= 1e9) printf "%.2f Gbit/s", b / 1e9; else printf "%.0f Mbit/s", b / 1e6 }')
        say "received $mib MiB in $IPERF_TIME s: $rate ($retr TCP retransmits)"
        record result iperf_bps "$bps"
    else
        say "iperf3 failed: $(jq -r '.error // empty' "$tmp/iperf3.json" 2>/dev/null || cat "$tmp/iperf3.json")"
        record result iperf_bps 0
    fi
fi

# ---------------------------------------------------------------------------------------------
step "verdict"
if [ "$ok" = "$pairs" ] && { [ "$IPERF_TIME" = 0 ] || [ -n "$rate" ]; }; then
    verdict="OK: $ok/$pairs pod pairs reachable over $BACKEND (3 hosts, 2 pods each)${rate:+, iperf3 h1-a -> h3-a $rate}; set-up and checks took $(since "$t_start")"
    printf '%s%s%s\n' "$green" "$verdict" "$off"
    record result verdict OK
    exit 0
fi
verdict="FAILED: $ok/$pairs pod pairs reachable over $BACKEND${rate:+, iperf3 $rate}${rate:-, iperf3 failed}"
printf '%s%s%s\n' "$red" "$verdict" "$off"
say "the flanneld logs: $tmp/h*/flanneld.log (run with KEEP=1 to keep everything and look)"
record result verdict FAILED
exit 1
