#!/usr/bin/env bash
# The main job until the overlay demo exists: make a throwaway network namespace, run the loopback
# and host-local applets through weft exactly as a container runtime would, print what they return,
# and clean up (also on failure). Touches nothing outside the namespace and a temp directory.
set -euo pipefail
WEFT=$(readlink -f "${1:-target/debug/weft}")
[ "$(id -u)" = 0 ] || { echo "demo needs root (network namespaces)" >&2; exit 1; }

ns="weft-demo-$$"
tmp=$(mktemp -d /tmp/weft-demo.XXXXXX)
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

"$WEFT" --install "$tmp/bin" 2>/dev/null
ip netns add "$ns"
export CNI_CONTAINERID=demo-container CNI_NETNS=/run/netns/$ns CNI_IFNAME=eth0 CNI_PATH=$tmp/bin

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "$("$WEFT" --version)"
echo "applets: $("$WEFT" --list | tr '\n' ' ')"

step "loopback ADD (cniVersion 1.1.0) in netns $ns"
echo '{"cniVersion":"1.1.0","name":"demo-lo","type":"loopback"}' | CNI_COMMAND=ADD "$tmp/bin/loopback"
echo
ip -n "$ns" -br addr show lo

conf=$(cat <<JSON
{"cniVersion":"1.1.0","name":"demo-net","type":"bridge",
 "ipam":{"type":"host-local","dataDir":"$tmp/ipam",
         "ranges":[[{"subnet":"10.250.0.0/24"}],[{"subnet":"fd00:250::/64"}]],
         "routes":[{"dst":"0.0.0.0/0"}]}}
JSON
)
step "host-local ADD: one IPv4 and one IPv6 address"
echo "$conf" | CNI_COMMAND=ADD "$tmp/bin/host-local"
echo
step "the same result as an old runtime asking for cniVersion 0.2.0 sees it"
echo "$conf" | sed 's/"1.1.0"/"0.2.0"/' | CNI_COMMAND=ADD CNI_CONTAINERID=demo-old "$tmp/bin/host-local"
echo
step "reservations on disk (same layout as the reference host-local)"
for f in "$tmp/ipam/demo-net"/*; do printf '%-28s %q\n' "$(basename "$f")" "$(cat "$f")"; done

step "host-local CHECK, then DEL"
echo "$conf" | CNI_COMMAND=CHECK "$tmp/bin/host-local" && echo "CHECK ok"
echo "$conf" | CNI_COMMAND=DEL "$tmp/bin/host-local" && echo "DEL ok"
ls "$tmp/ipam/demo-net"

step "a bad request gets the spec's error object on stdout and a non-zero exit"
set +e
echo '{"cniVersion":"1.1.0","name":"demo-net","ipam":{"type":"host-local","subnet":"10.250.0.5/24"}}' |
    CNI_COMMAND=ADD "$tmp/bin/host-local"
echo " (exit $?)"
set -e

step "loopback DEL"
echo '{"cniVersion":"1.1.0","name":"demo-lo","type":"loopback"}' | CNI_COMMAND=DEL "$tmp/bin/loopback" && echo "DEL ok"
ip -n "$ns" -br link show lo
