#!/usr/bin/env bash
# The main job until the overlay demo exists: a throwaway "host" network namespace with three
# "pods", wired by weft's bridge and ptp plugins exactly as a container runtime would call them
# (CNI_* environment, config on stdin), then a reachability check and a clean teardown (also on
# failure). Touches nothing outside its own namespaces and a temp directory.
set -euo pipefail
WEFT=$(readlink -f "${1:-target/debug/weft}")
[ "$(id -u)" = 0 ] || { echo "demo needs root (network namespaces)" >&2; exit 1; }

id=$$
host="weft-demo-host-$id"
pods=("weft-demo-a-$id" "weft-demo-b-$id" "weft-demo-c-$id")
tmp=$(mktemp -d /tmp/weft-demo.XXXXXX)
cleanup() {
    for ns in "${pods[@]}" "$host"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

"$WEFT" --install "$tmp/bin" >/dev/null
for ns in "$host" "${pods[@]}"; do ip netns add "$ns"; done
export CNI_IFNAME=eth0 CNI_PATH=$tmp/bin

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# cni PLUGIN COMMAND POD CONFIG: one plugin call, run inside the host namespace like a runtime.
cni() {
    echo "$4" | ip netns exec "$host" env CNI_COMMAND="$2" CNI_CONTAINERID="$3" \
        CNI_NETNS="/run/netns/$3" "$tmp/bin/$1"
}

bridge_conf=$(cat <<JSON
{"cniVersion":"1.1.0","name":"demo-bridge","type":"bridge","bridge":"cni0",
 "isDefaultGateway":true,"ipMasq":true,"hairpinMode":true,
 "ipam":{"type":"host-local","dataDir":"$tmp/ipam",
         "ranges":[[{"subnet":"10.250.0.0/24"}],[{"subnet":"fd00:250::/64"}]]}}
JSON
)
ptp_conf=$(cat <<JSON
{"cniVersion":"1.1.0","name":"demo-ptp","type":"ptp","ipMasq":true,"mtu":1400,
 "ipam":{"type":"host-local","dataDir":"$tmp/ipam","subnet":"10.251.0.0/24",
         "routes":[{"dst":"0.0.0.0/0"}]}}
JSON
)

step "$("$WEFT" --version)"
echo "applets: $("$WEFT" --list | tr '\n' ' ')"

step "bridge ADD for pod ${pods[0]} (cniVersion 1.1.0, dual-stack host-local)"
cni bridge ADD "${pods[0]}" "$bridge_conf" | tee "$tmp/a.json"
echo
cni bridge ADD "${pods[1]}" "$bridge_conf" > "$tmp/b.json"
echo "(and pod ${pods[1]} the same way)"

step "the host: bridge cni0 holds the gateways, one veth per pod, masquerade chains"
ip -n "$host" -br addr
ip netns exec "$host" iptables -t nat -S POSTROUTING | grep CNI- || true

step "inside pod ${pods[0]}"
ip -n "${pods[0]}" -br addr show eth0
ip -n "${pods[0]}" route

addr() { grep -o "\"address\": \"$2[^/]*" "$1" | head -1 | cut -d'"' -f4; }
a4=$(addr "$tmp/a.json" 10.) b4=$(addr "$tmp/b.json" 10.) b6=$(addr "$tmp/b.json" fd00)
step "ptp ADD for pod ${pods[2]}: a /32 host route instead of a bridge"
cni ptp ADD "${pods[2]}" "$ptp_conf" > "$tmp/c.json"
c4=$(addr "$tmp/c.json" 10.)
ip -n "${pods[2]}" route
ip -n "$host" route show "$c4"

step "reachability"
fails=0
check() {
    local from=$1 to=$2 what=$3
    if ip netns exec "$from" ping -c 1 -W 2 "$to" >/dev/null 2>&1; then
        printf '  %-34s ok\n' "$what"
    else
        printf '  %-34s FAILED\n' "$what"; fails=$((fails + 1))
    fi
}
check "${pods[0]}" "$b4" "pod a -> pod b (IPv4, $b4)"
check "${pods[0]}" "$b6" "pod a -> pod b (IPv6, $b6)"
check "${pods[1]}" 10.250.0.1 "pod b -> gateway on cni0"
check "$host" "$a4" "host -> pod a"
check "${pods[2]}" 10.251.0.1 "ptp pod c -> its host end"
check "${pods[2]}" "$a4" "ptp pod c -> bridge pod a (routed)"

step "CHECK pod a (prevResult = its ADD result), then DEL everything"
conf_with_prev=$(printf '%s' "$bridge_conf" | sed '$ s/}$//'; printf ',"prevResult":%s}' "$(cat "$tmp/a.json")")
cni bridge CHECK "${pods[0]}" "$conf_with_prev" && echo "CHECK ok"
cni bridge DEL "${pods[0]}" "$bridge_conf"
cni bridge DEL "${pods[1]}" "$bridge_conf"
cni ptp DEL "${pods[2]}" "$ptp_conf"
echo "host links left: $(ip -n "$host" -br link | awk '{print $1}' | tr '\n' ' ')(the bridge stays, as with the reference)"
echo "reservations left: $(find "$tmp/ipam" -name '10.*' -o -name 'fd00*' | wc -l)"
echo "masquerade rules left: $(ip netns exec "$host" iptables -t nat -S | grep -c CNI- || true)"

step "a bad request gets the spec's error object on stdout and a non-zero exit"
set +e
cni bridge ADD "${pods[0]}" '{"cniVersion":"1.1.0","name":"demo-bridge","type":"bridge","vlan":5000}'
echo " (exit $?)"
set -e

step "verdict"
if [ "$fails" = 0 ]; then echo "all pods reachable; everything cleaned up"; else echo "$fails checks FAILED"; exit 1; fi
