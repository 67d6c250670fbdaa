#!/usr/bin/env bash
# Installs the given Debian packages if any is missing, then checks that every file and command
# the build, the tests, the demo and the benchmarks use is really there, naming the package that
# provides each one that is not. Needs root (CI and the README run as root).
#
# The check is what makes a missing install step visible: a package left out of DEB_PACKAGES
# (Makefile) is not installed on a fresh machine, and the check then stops with its name instead
# of the build or a test failing somewhere later with a message about a file.
#
# Usage: scripts/ensure-deps.sh PACKAGE...
set -euo pipefail

# What the project needs, as "probe package": a probe is a command name or an absolute path.
needs=(
    "cc build-essential"
    "pkg-config pkg-config"
    "protoc protobuf-compiler"
    # etcd-client's build compiles its .proto files against the well-known types, which
    # Debian ships apart from protoc.
    "/usr/include/google/protobuf/descriptor.proto libprotobuf-dev"
    # cargo (crates.io) and rustup (the musl target) fetch over TLS.
    "/etc/ssl/certs/ca-certificates.crt ca-certificates"
    "musl-gcc musl-tools"
    "ip iproute2"
    "bridge iproute2"
    "ss iproute2"
    "iptables iptables"
    "iptables-legacy iptables"
    "iptables-restore iptables"
    "nft nftables"
    "sysctl procps"
    "/usr/lib/cni/bridge containernetworking-plugins"
    "etcd etcd-server"
    "etcdctl etcd-client"
    "openssl openssl"
    "curl curl"
    "dockerd docker.io"
    "docker docker.io"
    "systemd-analyze systemd"
    "shellcheck shellcheck"
    "ping iputils-ping"
    "iperf3 iperf3"
    "jq jq"
    "file file"
    "hyperfine hyperfine"
    "/usr/bin/time time"
    "python3 python3"
    # The portmap test's real client: podman's CNI backend driving weft's plugins.
    "podman podman"
)

missing=()
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # etcd-server and docker.io would start host-wide daemons (and docker would rewrite the
    # host's firewall); the tests start their own, inside namespaces. Keep apt from starting
    # services.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

listed=" $* "
absent=()
for row in "${needs[@]}"; do
    probe=${row% *}
    pkg=${row##* }
    if [[ $probe == /* ]]; then
        [ -e "$probe" ] && continue
    else
        command -v "$probe" >/dev/null && continue
    fi
    if [[ $listed == *" $pkg "* ]]; then
        absent+=("  $probe: Debian package $pkg is installed but does not provide it")
    else
        absent+=("  $probe: from Debian package $pkg, which DEB_PACKAGES (Makefile) does not list")
    fi
done
if [ ${#absent[@]} -gt 0 ]; then
    echo "ensure-deps: the build and the tests need what is missing here:" >&2
    printf '%s\n' "${absent[@]}" >&2
    exit 1
fi
