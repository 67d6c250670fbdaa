#!/usr/bin/env bash
# Benchmark: weft's loopback and host-local applets against the Go reference plugins
# (Debian containernetworking-plugins, /usr/lib/cni), both run exactly as a container runtime runs
# them: exec'd under the plugin's name, CNI_* environment, config JSON on stdin.
#
#   scripts/bench.sh target/x86_64-unknown-linux-gnu/release/weft     (as root; `make bench`)
#
# Environment: BENCH_N (measured iterations, default 200), BENCH_WARMUP (default 5).
# Every iteration runs weft and Go alternately (which goes first alternates), so drift hits both.
# Latency and max RSS come from one run of each invocation: a tiny static C launcher forks and execs
# the plugin and reports the fork->wait4 wall time (CLOCK_MONOTONIC) and wait4's ru_maxrss. (Timing
# from python3 directly would not do: a child's ru_maxrss keeps the RSS of the process it was
# forked from, so every plugin would report python's ~14 MiB.)
# Every invocation must exit 0 and do what it should (lo up/down, reservation written/removed);
# anything else aborts. The script makes 2*(N+WARMUP) namespaces wtb-<pid>-<i> and one temp dir,
# and removes them on every exit path. It touches no host interface.
set -euo pipefail

usage() { echo "usage: $0 PATH/TO/weft   (env: BENCH_N, BENCH_WARMUP)" >&2; exit 2; }
[ $# -eq 1 ] || usage
[ "$(id -u)" = 0 ] || { echo "bench.sh needs root (it creates network namespaces)" >&2; exit 1; }
[ -x "$1" ] || { echo "bench.sh: $1 is not an executable file (run 'make static' first)" >&2; exit 1; }
WEFT=$(readlink -f "$1")
GO_DIR=/usr/lib/cni
N=${BENCH_N:-200}
WARMUP=${BENCH_WARMUP:-5}
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "bench.sh: BENCH_N must be a positive integer" >&2; exit 2; }
[[ $WARMUP =~ ^[0-9]+$ ]] || { echo "bench.sh: BENCH_WARMUP must be a non-negative integer" >&2; exit 2; }
for tool in ip python3 cc; do
    command -v "$tool" >/dev/null || { echo "bench.sh: '$tool' not found (make deps)" >&2; exit 1; }
done
for p in loopback host-local bridge ptp; do
    [ -x "$GO_DIR/$p" ] || { echo "bench.sh: $GO_DIR/$p missing (apt-get install containernetworking-plugins)" >&2; exit 1; }
done

prefix="wtb-$$-"
tmp=""
cleanup() {
    local ns
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -- "^$prefix" || true); do
        ip netns del "$ns" 2>/dev/null || echo "bench.sh: could not delete netns $ns" >&2
    done
    if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$SECONDS
tmp=$(mktemp -d /tmp/weft-bench.XXXXXX)
mkdir "$tmp/bin" "$tmp/weft" "$tmp/go"
if ! out=$("$WEFT" --install "$tmp/bin" 2>&1); then
    echo "bench.sh: '$WEFT --install' failed: $out" >&2
    exit 1
fi

# The launcher: run-one FD PLUGIN. Forks, execs PLUGIN with the inherited environment, stdin,
# stdout and stderr, waits, and writes "<wall ns> <maxrss KiB> <wait status>" to FD.
cat >"$tmp/run-one.c" <<'C'
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>

int main(int argc, char **argv) {
    struct timespec a, b;
    struct rusage ru;
    int status;
    if (argc != 3) return 125;
    int fd = atoi(argv[1]);
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid = fork();
    if (pid < 0) return 126;
    if (pid == 0) {
        close(fd);
        execv(argv[2], argv + 2);
        _exit(127);
    }
    if (wait4(pid, &status, 0, &ru) < 0) return 126;
    clock_gettime(CLOCK_MONOTONIC, &b);
    long long ns = (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
    dprintf(fd, "%lld %ld %d\n", ns, ru.ru_maxrss, status);
    return 0;
}
C
cc -O2 -static -o "$tmp/run-one" "$tmp/run-one.c" 2>/dev/null ||
    cc -O2 -o "$tmp/run-one" "$tmp/run-one.c"

# Two fresh namespaces per iteration (one per implementation), so every loopback ADD finds lo down.
count=$((2 * (N + WARMUP)))
echo "bench.sh: creating $count network namespaces ${prefix}0..$((count - 1))" >&2
for ((i = 0; i < count; i++)); do
    ip netns add "$prefix$i"
done

echo "# weft vs Go CNI plugins"
echo
echo "kernel $(uname -r), nproc $(nproc), $(date -u '+%Y-%m-%d %H:%M:%S UTC'), N=$N (+$WARMUP warmup)," \
    "weft: $("$WEFT" --version 2>&1 | head -n1)," \
    "Go: containernetworking-plugins $(dpkg-query -W -f='${Version}' containernetworking-plugins 2>/dev/null || echo '?')"
echo

python3 - "$tmp" "$GO_DIR" "$N" "$WARMUP" "$prefix" "$WEFT" <<'PY'
import ipaddress, json, math, os, statistics, subprocess, sys

tmp, go_dir, n, warmup, prefix, weft_bin = sys.argv[1:7]
n, warmup = int(n), int(warmup)
launcher = os.path.join(tmp, "run-one")
impls = {"weft": os.path.join(tmp, "bin"), "Go": go_dir}
subnet = ipaddress.ip_network("10.123.0.0/16")

lo_conf = b'{"cniVersion":"1.0.0","name":"benchlo","type":"loopback"}'
hl_conf = {
    impl: json.dumps({"cniVersion": "1.0.0", "name": "benchnet", "type": "bridge",
                      "ipam": {"type": "host-local", "dataDir": os.path.join(tmp, impl.lower()),
                               "ranges": [[{"subnet": str(subnet)}]]}}).encode()
    for impl in impls
}


class BenchError(Exception):
    pass


def run(impl, plugin, command, container_id, netns, ifname, conf):
    """One invocation as a runtime does it; returns (wall ns, max RSS KiB, stdout)."""
    path = os.path.join(impls[impl], plugin)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": command,
           "CNI_CONTAINERID": container_id, "CNI_NETNS": netns, "CNI_IFNAME": ifname,
           "CNI_PATH": impls[impl]}
    r, w = os.pipe()
    try:
        p = subprocess.Popen([launcher, str(w), path], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, pass_fds=(w,))
        os.close(w)
        w = -1
        out, err = p.communicate(conf)
        metrics = b""
        while chunk := os.read(r, 4096):
            metrics += chunk
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    what = f"{impl} {plugin} {command} (container {container_id}, netns {netns})"
    if p.returncode != 0 or not metrics:
        raise BenchError(f"launcher failed for {what}: exit {p.returncode}, stderr: {err.decode(errors='replace')}")
    ns, rss, status = (int(x) for x in metrics.split())
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise BenchError(f"{what} exited {code}\n  stdout: {out.decode(errors='replace').strip()}\n"
                         f"  stderr: {err.decode(errors='replace').strip()}")
    return ns, rss, out


def check(cond, msg):
    if not cond:
        raise BenchError(msg)


def lo_is_up(netns_name):
    out = subprocess.run(["ip", "-n", netns_name, "-o", "link", "show", "lo"], check=True,
                         capture_output=True, text=True).stdout
    flags = out.split("<", 1)[1].split(">", 1)[0].split(",")
    return "UP" in flags


samples = {}  # (scenario, op, impl) -> [(ns, rss)]


def record(i, key, ns, rss):
    if i >= warmup:
        samples.setdefault(key, []).append((ns, rss))


def loopback(i, impl, slot, command):
    name = f"{prefix}{2 * i + slot}"
    netns = f"/run/netns/{name}"
    cid = f"bench-lo-{impl}-{i}"
    ns, rss, out = run(impl, "loopback", command, cid, netns, "lo", lo_conf)
    if command == "ADD":
        res = json.loads(out)
        check(res.get("cniVersion") == "1.0.0" and res["interfaces"][0]["name"] == "lo",
              f"{impl} loopback ADD: unexpected result {out!r}")
        check(lo_is_up(name), f"{impl} loopback ADD: lo is not up in {name}")
    else:
        check(not lo_is_up(name), f"{impl} loopback DEL: lo is still up in {name}")
    record(i, ("loopback", command, impl), ns, rss)


def host_local(i, impl, slot, command):
    netns = f"/run/netns/{prefix}{2 * i + slot}"
    cid = f"bench-hl-{impl}-{i}"
    ns, rss, out = run(impl, "host-local", command, cid, netns, "eth0", hl_conf[impl])
    store = os.path.join(tmp, impl.lower(), "benchnet")
    if command == "ADD":
        res = json.loads(out)
        addr = ipaddress.ip_interface(res["ips"][0]["address"])
        check(res.get("cniVersion") == "1.0.0" and addr.ip in subnet,
              f"{impl} host-local ADD: unexpected result {out!r}")
        check(os.path.exists(os.path.join(store, str(addr.ip))),
              f"{impl} host-local ADD: no reservation file for {addr.ip}")
        host_local.last[impl] = str(addr.ip)
    else:
        check(not os.path.exists(os.path.join(store, host_local.last[impl])),
              f"{impl} host-local DEL: reservation {host_local.last[impl]} still there")
    record(i, ("host-local", command, impl), ns, rss)


host_local.last = {}

try:
    total = warmup + n
    for i in range(total):
        order = [("weft", 0), ("Go", 1)] if i % 2 == 0 else [("Go", 1), ("weft", 0)]
        for scenario in (loopback, host_local):
            for command in ("ADD", "DEL"):
                for impl, slot in order:
                    scenario(i, impl, slot, command)
        if (i + 1) % 50 == 0 or i + 1 == total:
            print(f"bench.sh: {i + 1}/{total} iterations", file=sys.stderr)
    for impl in impls:
        left = [f for f in os.listdir(os.path.join(tmp, impl.lower(), "benchnet"))
                if f != "lock" and not f.startswith("last_reserved_ip")]
        check(not left, f"{impl} host-local: reservations left after every DEL: {left}")
    # The spawn floor: the launcher running a trivial dynamic binary.
    floor = []
    for _ in range(n):
        r, w = os.pipe()
        subprocess.run([launcher, str(w), "/bin/true"], check=True, pass_fds=(w,))
        os.close(w)
        floor.append(tuple(int(x) for x in os.read(r, 4096).split()[:2]))
        os.close(r)
except BenchError as e:
    print(f"bench.sh: FAILED: {e}", file=sys.stderr)
    sys.exit(1)
except KeyboardInterrupt:
    print("bench.sh: interrupted", file=sys.stderr)
    sys.exit(130)


def ms(ns):
    return f"{ns / 1e6:.2f}"


def p95(xs):
    xs = sorted(xs)
    return xs[max(0, math.ceil(0.95 * len(xs)) - 1)]


print("| scenario | op | weft median ms | weft p95 ms | Go median ms | Go p95 ms | weft/Go (median) "
      "| weft max RSS KiB | Go max RSS KiB |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for scenario in ("loopback", "host-local"):
    for command in ("ADD", "DEL"):
        w = samples[(scenario, command, "weft")]
        g = samples[(scenario, command, "Go")]
        wt, gt = [s[0] for s in w], [s[0] for s in g]
        wm, gm = statistics.median(wt), statistics.median(gt)
        print(f"| {scenario} | {command} | {ms(wm)} | {ms(p95(wt))} | {ms(gm)} | {ms(p95(gt))} "
              f"| {wm / gm:.2f} | {max(s[1] for s in w)} | {max(s[1] for s in g)} |")
print()
print(f"Spawn floor (the launcher exec'ing /bin/true): median {ms(statistics.median(f[0] for f in floor))} ms, "
      f"max RSS {max(f[1] for f in floor)} KiB. Latency is fork to wait4 in a static C launcher; "
      "RSS is the plugin's ru_maxrss from wait4.")
print()

sizes = {p: os.path.getsize(os.path.join(go_dir, p)) for p in ("loopback", "host-local", "bridge", "ptp")}
weft_size = os.path.getsize(weft_bin)


def mib(b):
    return f"{b / 2**20:.1f} MiB"


print("| binary | bytes | size |")
print("|---|---:|---:|")
print(f"| weft (static, every applet) | {weft_size} | {mib(weft_size)} |")
for p, s in sizes.items():
    print(f"| Go {p} | {s} | {mib(s)} |")
go_sum = sum(sizes.values())
print(f"| Go loopback+host-local+bridge+ptp | {go_sum} | {mib(go_sum)} |")
print(f"| weft / Go sum | | {weft_size / go_sum:.2f} |")
PY

echo
echo "Run time: $((SECONDS - start)) s (namespace set-up included, clean-up not)."
