"""The body of scripts/bench-flanneld.sh, which checks the machine and removes everything this
makes (namespaces, the processes inside them, the temp dir) on every exit path. Run it through
bench-flanneld.sh.

  bench-flanneld.py TMP WEFT_BIN PREFIX REPORT_MD

Everything happens in network namespaces named PREFIX*: an underlay namespace holding bridge ul0
and etcd (192.168.77.254:2379), "hosts" plugged into ul0 (192.168.77.N/24, default route via .254)
and pods behind each host's cni0. This process itself moves into the underlay namespace (setns of
its one thread, before any other thread exists) to talk to etcd over its HTTP/JSON gateway; every
flanneld, iperf3 and `ip monitor` it starts runs in one of the PREFIX* namespaces. Progress goes to
stderr; the markdown report goes to stdout and to REPORT_MD.
"""
import datetime
import json
import math
import os
import platform
import select
import statistics
import subprocess
import sys
import threading
import time

from benchlab import (ENDPOINT, ETCD_IP, UL_NET, BenchError, add_host, add_pod, alive, check, configure,
                      cpu_secs, env_int, etcd, flanneld, hosts, ip, ip_batch, libc, log, ns,
                      nsexec, ping_ok, proc_status, procs, run, spawn, session, start_lab, stop,
                      subnet_env, tail, wait_subnet_env, wait_until)

tmp, weft, prefix, report_md = sys.argv[1:5]
configure("bench-flanneld", prefix, tmp)

STARTS = env_int("BENCH_FLANNELD_STARTS", 20)          # starts per backend and kind
LEASES = env_int("BENCH_FLANNELD_LEASES", 200)         # measured lease puts per backend
PEERS = env_int("BENCH_FLANNELD_PEERS", 1000)          # fake peer leases for the RSS figure
SECS = env_int("BENCH_FLANNELD_IPERF_SECS", 5)         # measured seconds per iperf3 run
ROUNDS = env_int("BENCH_FLANNELD_ROUNDS", 3)           # iperf3 rounds (every path, both stream counts)
WARM_LEASES = 5                                        # untimed puts before the measured ones
MORE = 50                                              # timed puts with PEERS peers present
if LEASES + WARM_LEASES > 230:
    print("bench-flanneld: BENCH_FLANNELD_LEASES must be at most 225 (host-gw peers need on-link "
          "addresses in 192.168.77.0/24)", file=sys.stderr)
    sys.exit(2)
if PEERS < LEASES + WARM_LEASES or PEERS + MORE > 1536:
    print(f"bench-flanneld: BENCH_FLANNELD_PEERS must be {LEASES + WARM_LEASES}..{1536 - MORE}", file=sys.stderr)
    sys.exit(2)


# ---- flanneld -------------------------------------------------------------------------------------
runs = {}


def inotify_watch(d):
    fd = libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK)
    check(fd >= 0, "inotify_init1 failed")
    IN_CREATE, IN_MOVED_TO = 0x100, 0x80
    check(libc.inotify_add_watch(fd, d.encode(), IN_CREATE | IN_MOVED_TO) >= 0, "inotify_add_watch failed")
    return fd


def start_flanneld(host, etcd_prefix, wait=True, limit=60, extra=()):
    """Starts flanneld in HOST; returns seconds from spawn to subnet.env being written (None if
    not waiting). The file is renamed into place, so a new inode means a complete new file (a
    restart finds the previous one there)."""
    h = hosts[host]
    env_file = os.path.join(h["dir"], "subnet.env")
    k = runs[host] = runs.get(host, -1) + 1
    logf = os.path.join(h["dir"], f"flanneld.{k}.log")
    h["log"] = logf
    try:
        old = os.stat(env_file).st_ino
    except FileNotFoundError:
        old = None

    def written():
        try:
            return os.stat(env_file).st_ino != old
        except FileNotFoundError:
            return False

    fd = inotify_watch(h["dir"]) if wait else None
    try:
        p = spawn(host, [weft, "flanneld", f"-etcd-endpoints={ENDPOINT}",
                         f"-etcd-prefix={etcd_prefix}", f"-subnet-file={env_file}", *extra], logf)
        t0 = p.started
        flanneld[host] = p
        if not wait:
            return None
        while not written():
            if p.poll() is not None:
                raise BenchError(f"flanneld in {ns(host)} exited {p.returncode} before writing "
                                 f"subnet.env:\n{tail(logf)}")
            r, _, _ = select.select([fd], [], [], 0.05)
            if r:
                try:
                    os.read(fd, 65536)
                except BlockingIOError:
                    pass
            check(time.monotonic() - t0 < limit,
                  f"flanneld in {ns(host)}: no subnet.env after {limit} s:\n{tail(logf)}")
        return time.monotonic() - t0
    finally:
        if fd is not None:
            os.close(fd)


def stop_flanneld(host):
    p = flanneld.pop(host)
    code = stop(p)
    check(code == 0, f"flanneld in {ns(host)} exited {code} on SIGTERM (want 0):\n{tail(hosts[host]['log'])}")


# ---- route monitor --------------------------------------------------------------------------------
class RouteMonitor:
    """`ip -ts monitor route` in a host: the kernel-side time (ip's timestamp, when it read the
    netlink notification) each destination was first added."""

    def __init__(self, host):
        self.host = host
        self.seen = {}
        self.cv = threading.Condition()
        self.p = spawn(host, ["ip", "-ts", "monitor", "route"], stdout=subprocess.PIPE)

    def start(self):
        # Threads only after every spawn() (preexec_fn and threads do not mix).
        self.t = threading.Thread(target=self.read, daemon=True)
        self.t.start()

    def read(self):
        for raw in self.p.stdout:
            now = time.time()
            line = raw.decode(errors="replace").strip()
            if not line.startswith("["):
                continue
            stamp, _, rest = line[1:].partition("] ")
            if rest.startswith("Deleted"):
                continue
            dst = rest.split(" ", 1)[0]
            try:
                ts = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f").timestamp()
            except ValueError:
                ts = now
            if abs(ts - now) > 1:  # ip prints local time: distrust a stamp off by a time zone
                ts = now
            with self.cv:
                self.seen.setdefault(dst, ts)
                self.cv.notify_all()

    def wait(self, dst, limit):
        end = time.monotonic() + limit
        with self.cv:
            while dst not in self.seen:
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.cv.wait(left)
            return self.seen[dst]

    def close(self):
        stop(self.p)
        if hasattr(self, "t"):
            self.t.join(5)


# ---- configurations -------------------------------------------------------------------------------
# Prefixes: one etcd, several independent flannel networks.
PFX = {"vxlan": "/wfb/vxlan", "host-gw": "/wfb/hostgw",
       ("cold", "vxlan"): "/wfb/cold-vxlan", ("cold", "host-gw"): "/wfb/cold-hostgw",
       ("restart", "vxlan"): "/wfb/restart-vxlan", ("restart", "host-gw"): "/wfb/restart-hostgw"}
# /13s: 2048 /24 subnets; the real hosts take one of the first 100 free ones from SubnetMin (below
# x.y+1.0.0), the fake peers the 1536 from x.y+2.0.0 on.
NETWORK = {"vxlan": "10.64.0.0/13", "host-gw": "10.72.0.0/13"}
FAKE_BASE = {"vxlan": (10, 66), "host-gw": (10, 74)}


def net_config(backend, network):
    return json.dumps({"Network": network, "Backend": {"Type": backend}})


def fake_subnet(backend, i):
    a, b = FAKE_BASE[backend]
    return f"{a}.{b + i // 256}.{i % 256}.0"


def fake_lease(backend, i):
    """(key suffix, value) of fake peer i, upstream's lease JSON."""
    net = fake_subnet(backend, i)
    if backend == "vxlan":
        # VXLAN peers need not be on-link: the FDB entry's dst can be any address.
        pub = f"192.168.{100 + i // 250}.{i % 250 + 1}"
        mac = f"0e:fb:00:00:{i >> 8:02x}:{i & 0xff:02x}"
        value = {"PublicIP": pub, "PublicIPv6": None, "BackendType": "vxlan",
                 "BackendData": {"VNI": 1, "VtepMAC": mac}}
    else:
        # host-gw needs on-link peers: 192.168.77.20.. (nothing answers there; no traffic is sent).
        value = {"PublicIP": f"{UL_NET}.{20 + i}", "PublicIPv6": None, "BackendType": "host-gw"}
    return f"{net}-24", json.dumps(value, separators=(",", ":"))


LEASE_ID = [None]  # the etcd lease every fake key is attached to


def put_fake(backend, i, lease_id):
    key, value = fake_lease(backend, i)
    etcd.put(f"{PFX[backend]}/subnets/{key}", value, lease_id)


# ---- set-up ---------------------------------------------------------------------------------------
# Hosts: vx1/vx2 flanneld vxlan, gw1/gw2 flanneld host-gw, hv1/hv2 vxlan by hand, hg1/hg2 host-gw by
# hand; rv/rg restarted flanneld (start timing); cold starts get a fresh namespace each (c*).
HOSTS = {"vx1": 1, "vx2": 2, "gw1": 3, "gw2": 4, "hv1": 5, "hv2": 6, "hg1": 7, "hg2": 8,
         "rv": 240, "rg": 241}
COLD_IP = {"vxlan": 242, "host-gw": 243}
HAND = {"vxlan": ("10.80.1", "10.80.2", "10.80.0.0/16"), "host-gw": ("10.81.1", "10.81.2", "10.81.0.0/16")}
MAC = {"hv1": "0e:fb:77:00:00:05", "hv2": "0e:fb:77:00:00:06"}


def forward_rules(host, network):
    """The FLANNEL-FWD rules flanneld installs (filter table), so hand-made hosts match."""
    rules = ("*filter\n:FLANNEL-FWD - [0:0]\n"
             '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD\n'
             f'-A FLANNEL-FWD -s {network} -m comment --comment "flanneld forward" -j ACCEPT\n'
             f'-A FLANNEL-FWD -d {network} -m comment --comment "flanneld forward" -j ACCEPT\n'
             "COMMIT\n")
    r = subprocess.run(["ip", "netns", "exec", ns(host), "iptables-restore", "--noflush", "--wait"],
                       input=rules, capture_output=True, text=True)
    check(r.returncode == 0, f"iptables-restore in {ns(host)}: {r.stderr.strip()}")


def hand_vxlan():
    a, b, net = HAND["vxlan"]
    me = {"hv1": (a, "hv2", b), "hv2": (b, "hv1", a)}
    for h, (mine, peer, theirs) in me.items():
        ip_batch(h, [
            f"link add flannel.1 address {MAC[h]} mtu 1450 type vxlan id 1 local {hosts[h]['ip']} "
            f"dev eth0 dstport 8472 nolearning",
            f"addr add {mine}.0/32 dev flannel.1",
            "link set flannel.1 up",
            f"neigh replace {theirs}.0 lladdr {MAC[peer]} dev flannel.1 nud permanent",
        ])
        run(["bridge", "-n", ns(h), "fdb", "append", MAC[peer], "dev", "flannel.1",
             "dst", hosts[peer]["ip"], "self", "permanent"])
        ip_batch(h, [f"route replace {theirs}.0/24 via {theirs}.0 dev flannel.1 onlink"])
        nsexec(h, "sysctl", "-qw", "net.ipv6.conf.flannel/1.accept_ra=0")
        forward_rules(h, net)
    return add_pod("hv1", f"{a}.1/24", 1450), add_pod("hv2", f"{b}.1/24", 1450)


def hand_hostgw():
    a, b, net = HAND["host-gw"]
    ip_batch("hg1", [f"route replace {b}.0/24 via {hosts['hg2']['ip']} dev eth0"])
    ip_batch("hg2", [f"route replace {a}.0/24 via {hosts['hg1']['ip']} dev eth0"])
    for h in ("hg1", "hg2"):
        forward_rules(h, net)
    return add_pod("hg1", f"{a}.1/24", 1500), add_pod("hg2", f"{b}.1/24", 1500)


def vxlan_details(host):
    d = json.loads(ip("-n", ns(host), "-d", "-j", "link", "show", "flannel.1").stdout)[0]
    info = dict(d["linkinfo"]["info_data"])
    for k in ("local", "link"):
        info.pop(k, None)
    return {"mtu": d["mtu"], "info_data": info, "addrgenmode": d.get("inet6_addr_gen_mode")}


notes = []


# ---- phase 1: start to subnet.env -----------------------------------------------------------------
def spawn_floor(k=20):
    xs = []
    for _ in range(k):
        p = spawn("rv", ["/bin/true"])
        p.wait()
        procs.remove(p)
        xs.append(time.monotonic() - p.started)
    return xs


start_samples = {}  # (kind, backend) -> [s]
cold_count = [0]


def cold_start(backend, i, measure=True):
    """A first boot: a fresh host namespace (no device, no rules, no subnet.env) and no lease for
    its address in etcd."""
    name = f"c{'v' if backend == 'vxlan' else 'g'}{i}"
    n = COLD_IP[backend]
    etcd.delete_prefix(f"{PFX[('cold', backend)]}/subnets/")
    add_host(name, n, port=f"c{cold_count[0]}")
    cold_count[0] += 1
    secs = start_flanneld(name, PFX[("cold", backend)])
    if measure:
        start_samples.setdefault(("cold", backend), []).append(secs)
    stop_flanneld(name)
    ip("netns", "del", ns(name))
    del hosts[name]


def restart(backend, measure=True, kind="restart", extra=()):
    h = "rv" if backend == "vxlan" else "rg"
    secs = start_flanneld(h, PFX[("restart", backend)], extra=extra)
    if measure:
        start_samples.setdefault((kind, backend), []).append(secs)
    stop_flanneld(h)


def phase_start():
    for be in ("vxlan", "host-gw"):
        etcd.put(f"{PFX[('cold', be)]}/config", net_config(be, NETWORK[be]))
        etcd.put(f"{PFX[('restart', be)]}/config", net_config(be, NETWORK[be]))
        # Untimed: a first start of the restart hosts (lease, device, subnet.env now exist) and a
        # cold start each (binary in the page cache).
        restart(be, measure=False)
        cold_start(be, "w", measure=False)
    for i in range(STARTS):
        for be in (("vxlan", "host-gw") if i % 2 == 0 else ("host-gw", "vxlan")):
            cold_start(be, i)
            restart(be)
            # The same without the FORWARD rules: what the iptables execs cost.
            restart(be, kind="restart, no fw", extra=("-iptables-forward-rules=false",))
        if (i + 1) % 5 == 0 or i + 1 == STARTS:
            log(f"start to subnet.env: {i + 1}/{STARTS}")


# ---- phase 2: throughput --------------------------------------------------------------------------
PATHS = ["flanneld vxlan", "hand-made vxlan", "flanneld host-gw", "hand-made host-gw", "underlay"]
tput = {}  # (path, streams) -> [(bits/s, retransmits)]


def iperf(client, server_ip, streams):
    argv = ["iperf3", "-c", server_ip, "-t", str(SECS), "-O", "1", "-P", str(streams), "-J",
            "--connect-timeout", "3000"]
    for attempt in range(3):
        r = nsexec(client, *argv, ok=False)
        try:
            j = json.loads(r.stdout)
        except ValueError:
            j = {"error": r.stdout[-300:] + r.stderr[-300:]}
        if "error" not in j and r.returncode == 0:
            return j["end"]["sum_received"]["bits_per_second"], j["end"]["sum_sent"].get("retransmits", 0)
        time.sleep(1)
    raise BenchError(f"iperf3 from {ns(client)} to {server_ip}: {j.get('error')}")


def phase_throughput(targets):
    order = list(PATHS)
    total = ROUNDS * 2 * len(order)
    k = 0
    for rnd in range(ROUNDS):
        for streams in (1, 4):
            rot = order[rnd % len(order):] + order[:rnd % len(order)]
            if streams == 4:
                rot.reverse()
            for path in rot:
                client, server_ip = targets[path]
                bps, retr = iperf(client, server_ip, streams)
                tput.setdefault((path, streams), []).append((bps, retr))
                k += 1
                log(f"iperf3 {k}/{total}: {path}, {streams} stream(s): {bps / 1e9:.2f} Gbit/s")
        for h in ("vx1", "vx2", "gw1", "gw2"):
            alive(h)


# ---- phase 3: lease to route ----------------------------------------------------------------------
lat = {}       # label -> [s] from the put being sent (both hosts pooled)
lat_ret = {}   # label -> [s] from the put's answer arriving (can be < 0: etcd tells watchers first)
put_rtt = {}   # label -> [s]
bulk = {}
mem = []       # rows for the memory table


def lease_latency(label, backend, pair, indices, warm, spacing=0.0):
    """Puts fake peers `indices` one at a time (the first `warm` untimed), each after the previous
    one's route is on both hosts of `pair` and at least `spacing` s after the previous put."""
    mons = [RouteMonitor(h) for h in pair]
    for m in mons:
        m.start()
    try:
        time.sleep(0.3)  # let the monitors subscribe; the warm-up puts below also prove they did
        for k, i in enumerate(indices):
            dst = fake_subnet(backend, i) + "/24"
            t_req = time.time()
            put_fake(backend, i, LEASE_ID[0])
            t_put = time.time()
            for m in mons:
                ts = m.wait(dst, 15)
                if ts is None:
                    alive(m.host)
                    raise BenchError(f"{backend}: no route to {dst} in {ns(m.host)} 15 s after the put"
                                     f"\n{tail(hosts[m.host]['log'])}")
                if k >= warm:
                    lat.setdefault(label, []).append(ts - t_req)
                    lat_ret.setdefault(label, []).append(ts - t_put)
            if k >= warm:
                put_rtt.setdefault(label, []).append(t_put - t_req)
            if (k + 1) % 50 == 0:
                log(f"{label} lease to route: {k + 1}/{len(indices)}")
            time.sleep(max(0.0, t_req + spacing - time.time()))
    finally:
        for m in mons:
            m.close()


def route_count(host, network):
    out = ip("-n", ns(host), "-4", "route", "show", "root", network, "dev", "flannel.1").stdout
    return sum(1 for l in out.splitlines() if l.strip())


def phase_peers():
    """The vxlan hosts already have WARM+LEASES fake peers; put the rest back to back, wait until
    both hosts have every route, settle past a reconciliation, read memory and CPU."""
    first = WARM_LEASES + LEASES
    want = PEERS + 1  # the fake peers and the other real host
    t0 = time.monotonic()
    for i in range(first, PEERS):
        put_fake("vxlan", i, LEASE_ID[0])
    t_put = time.monotonic()
    for h in ("vx1", "vx2"):
        wait_until(f"{want} flannel routes in {ns(h)}", 300,
                   lambda h=h: route_count(h, NETWORK["vxlan"]) >= want, every=0.1)
    t_done = time.monotonic()
    bulk["n"] = PEERS - first
    bulk["puts"] = t_put - t0
    bulk["after_last"] = t_done - t_put
    for h in ("vx1", "vx2"):
        n_neigh = len(json.loads(ip("-n", ns(h), "-j", "neigh", "show", "dev", "flannel.1").stdout))
        fdb = json.loads(run(["bridge", "-n", ns(h), "-j", "fdb", "show", "dev", "flannel.1"]).stdout)
        n_fdb = sum(1 for f in fdb if f.get("dst"))
        check(n_neigh >= want and n_fdb >= want,
              f"{ns(h)}: {n_neigh} neighbours, {n_fdb} fdb entries on flannel.1, want {want} each")
    # Past at least one 10 s reconciliation with every peer known, then an idle window for CPU.
    time.sleep(11)
    window = 30
    c0 = {h: cpu_secs(flanneld[h].pid) for h in ("vx1", "vx2")}
    time.sleep(window)
    for h in ("vx1", "vx2"):
        alive(h)
        st = proc_status(flanneld[h].pid)
        cpu = (cpu_secs(flanneld[h].pid) - c0[h]) / window * 100
        mem.append((f"{h}: all routes programmed, then idle {window} s", PEERS + 1, st, cpu))
    # Lease to route again, now with PEERS peers, one put every 0.25 s for more than one 10 s
    # reconciliation period (a put that lands during a reconciliation waits for it).
    lease_latency(f"vxlan, {PEERS + 1} peers present", "vxlan", ("vx1", "vx2"),
                  range(PEERS, PEERS + MORE), 0, spacing=0.25)


def phase_restart_with_peers():
    """vx1 restarted with every lease in etcd and all its kernel state in place."""
    n = PEERS + MORE + 1
    stop_flanneld("vx1")
    secs = start_flanneld("vx1", PFX["vxlan"])
    start_samples.setdefault(("restart, peers", "vxlan"), []).append(secs)
    time.sleep(12)  # the initial snapshot and one periodic reconciliation
    window = 30
    c0 = cpu_secs(flanneld["vx1"].pid)
    time.sleep(window)
    alive("vx1")
    st = proc_status(flanneld["vx1"].pid)
    cpu = (cpu_secs(flanneld["vx1"].pid) - c0) / window * 100
    mem.append((f"vx1 restarted with those in etcd, idle {window} s", n, st, cpu))
    check(route_count("vx1", NETWORK["vxlan"]) >= n, "vx1 lost routes over a restart")


# ---- main -----------------------------------------------------------------------------------------
t_start = time.monotonic()
phase_secs = {}
load_before = open("/proc/loadavg").read().split()[:3]
with session():
    start_lab()  # this (still single-threaded) process now talks to etcd from the underlay
    for name, n in HOSTS.items():
        add_host(name, n)
    log(f"underlay, etcd and {len(HOSTS)} hosts up in {time.monotonic() - t_start:.1f} s")

    t = time.monotonic()
    phase_start()
    phase_secs["start to subnet.env"] = time.monotonic() - t
    floor = spawn_floor()

    # The long-running pairs.
    t = time.monotonic()
    for be, pair in (("vxlan", ("vx1", "vx2")), ("host-gw", ("gw1", "gw2"))):
        etcd.put(f"{PFX[be]}/config", net_config(be, NETWORK[be]))
        for h in pair:
            start_flanneld(h, PFX[be], wait=False)
        for h in pair:
            wait_subnet_env(h)
    for h in ("vx1", "vx2"):
        mem.append((f"{h} after start-up", 1, proc_status(flanneld[h].pid), None))
    pod_ip = {}
    for h in ("vx1", "vx2", "gw1", "gw2"):
        e = subnet_env(h)
        pod_ip[h] = add_pod(h, e["FLANNEL_SUBNET"], e["FLANNEL_MTU"])
    pod_ip["hv1"], pod_ip["hv2"] = hand_vxlan()
    pod_ip["hg1"], pod_ip["hg2"] = hand_hostgw()
    # The hand-made device must match flanneld's apart from the addresses.
    dv, dh = vxlan_details("vx1"), vxlan_details("hv1")
    if dv != dh:
        notes.append(f"hand-made flannel.1 differs from flanneld's: flanneld {json.dumps(dv)}, "
                     f"hand-made {json.dumps(dh)}")
        log(notes[-1])
    targets = {"flanneld vxlan": ("vx1-p2", pod_ip["vx2"]), "hand-made vxlan": ("hv1-p2", pod_ip["hv2"]),
               "flanneld host-gw": ("gw1-p2", pod_ip["gw2"]), "hand-made host-gw": ("hg1-p2", pod_ip["hg2"]),
               "underlay": ("hg1", hosts["hg2"]["ip"])}
    for srv in ("vx2-p2", "hv2-p2", "gw2-p2", "hg2-p2", "hg2"):
        spawn(srv, ["iperf3", "-s"], os.path.join(tmp, f"iperf3-{srv}.log"))
    for path, (client, dst) in targets.items():
        ping_ok(client, dst)
    time.sleep(0.5)
    log(f"pods and hand-made paths up in {time.monotonic() - t:.1f} s; iperf3 for {ROUNDS} rounds "
        f"x 2 stream counts x {len(PATHS)} paths x {SECS + 1} s")
    cpu0 = {h: cpu_secs(flanneld[h].pid) for h in ("vx1", "vx2")}
    t = time.monotonic()
    phase_throughput(targets)
    phase_secs["iperf3"] = time.monotonic() - t
    idle_cpu_1 = {h: (cpu_secs(flanneld[h].pid) - cpu0[h]) / phase_secs["iperf3"] * 100 for h in ("vx1", "vx2")}
    for h in ("vx1", "vx2"):
        mem.append((f"{h} idle through the {phase_secs['iperf3']:.0f} s iperf3 phase", 1,
                    proc_status(flanneld[h].pid), idle_cpu_1[h]))

    t = time.monotonic()
    LEASE_ID[0] = etcd.grant(86400)
    lease_latency("vxlan", "vxlan", ("vx1", "vx2"), range(WARM_LEASES + LEASES), WARM_LEASES)
    lease_latency("host-gw", "host-gw", ("gw1", "gw2"), range(WARM_LEASES + LEASES), WARM_LEASES)
    phase_secs["lease to route"] = time.monotonic() - t
    t = time.monotonic()
    phase_peers()
    phase_restart_with_peers()
    phase_secs[f"{PEERS} peers"] = time.monotonic() - t
    for h in ("vx2", "gw1", "gw2"):
        alive(h)
    for h in ("vx1", "vx2", "gw1", "gw2"):
        with open(hosts[h]["log"], errors="replace") as f:
            errs = [l for l in f if " ERROR " in l.upper() or "panick" in l]
        if errs:
            notes.append(f"flanneld in {h} logged {len(errs)} error line(s), first: {errs[0].strip()}")
load_after = open("/proc/loadavg").read().split()[:3]


# ---- report ---------------------------------------------------------------------------------------
with open(report_md + ".json", "w") as f:  # the raw samples, for a second look
    json.dump({"start": {f"{k[0]} {k[1]}": v for k, v in start_samples.items()}, "lease_to_route": lat, "lease_to_route_from_answer": lat_ret,
               "put_rtt": put_rtt, "bulk": bulk, "mem": mem, "spawn_floor": floor,
               "iperf3": {f"{k[0]} {k[1]}": v for k, v in tput.items()}, "notes": notes}, f, indent=1)


def pct(xs, p):
    xs = sorted(xs)
    return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)]


def ms(s):
    return f"{s * 1e3:.1f}"


def version(argv):
    r = subprocess.run(argv, capture_output=True, text=True)
    return (r.stdout or r.stderr).strip().splitlines()[0] if r.returncode == 0 else "?"


md = ["## flanneld (etcd v3 mode)", ""]
md.append(f"kernel {platform.release()}, nproc {os.cpu_count()} (shared with other builds and tests: "
          f"**noisy**; load average {' '.join(load_before)} before, {' '.join(load_after)} after), "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, weft: {version([weft, '--version'])}, "
          f"{version(['etcd', '--version'])}, {version(['iperf3', '--version'])}.")
md.append("")
md.append("### Start to subnet.env")
md.append("")
md.append("| backend | start | n | median ms | p95 ms | min ms | max ms |")
md.append("|---|---|---:|---:|---:|---:|---:|")
KIND = {"cold": "first boot: new host netns, no lease", "restart": "restart: lease, device, subnet.env kept",
        "restart, no fw": "the same restart with -iptables-forward-rules=false",
        "restart, peers": f"restart with {PEERS + MORE + 1} leases in etcd (all programmed)"}
for kind in ("cold", "restart", "restart, no fw", "restart, peers"):
    for be in ("vxlan", "host-gw"):
        xs = start_samples.get((kind, be))
        if xs:
            md.append(f"| {be} | {KIND[kind]} | {len(xs)} | {ms(statistics.median(xs))} | {ms(pct(xs, 95))} "
                      f"| {ms(min(xs))} | {ms(max(xs))} |")
md.append("")
md.append(f"Spawn floor (fork+setns+exec of /bin/true, included above): median {ms(statistics.median(floor))} ms.")
md.append("")
md.append("### Lease in etcd to route on the other hosts")
md.append("")
md.append("| backend | leases | samples (2 hosts) | p50 ms | p90 ms | p99 ms | max ms | p50 / p99 ms from the put's answer | put round trip p50 ms |")
md.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for be in lat:
    xs, xr = lat[be], lat_ret[be]
    md.append(f"| {be} | {len(put_rtt[be])} | {len(xs)} | {ms(pct(xs, 50))} | {ms(pct(xs, 90))} | {ms(pct(xs, 99))} "
              f"| {ms(max(xs))} | {ms(pct(xr, 50))} / {ms(pct(xr, 99))} | {ms(statistics.median(put_rtt[be]))} |")
md.append("")
md.append(f"Bulk (vxlan): {bulk['n']} more leases put back to back in {bulk['puts']:.2f} s; both hosts had "
          f"all {PEERS + 1} routes (with neighbour and FDB entries) {bulk['after_last']:.2f} s after the last put.")
md.append("")
md.append("### Memory and CPU (vxlan)")
md.append("")
md.append("| flanneld | peers | VmRSS KiB | VmHWM KiB | threads | CPU % |")
md.append("|---|---:|---:|---:|---:|---:|")
for what, peers, st, cpu in mem:
    c = "" if cpu is None else f"{cpu:.2f}"
    md.append(f"| {what} | {peers} | {st['VmRSS']} | {st['VmHWM']} | {st['Threads']} | {c} |")
md.append("")
md.append(f"### Pod-to-pod TCP throughput (iperf3, {SECS} s + 1 s omitted, {ROUNDS} rounds)")
md.append("")
md.append("| path | 1 stream Gbit/s median (min-max) | 4 streams Gbit/s median (min-max) | vs hand-made (1 / 4) | retransmits (1 / 4) |")
md.append("|---|---:|---:|---:|---:|")
med = {k: statistics.median(b for b, _ in v) for k, v in tput.items()}
for path in PATHS:
    cells, retr = [], []
    for streams in (1, 4):
        xs = [b for b, _ in tput[(path, streams)]]
        cells.append(f"{med[(path, streams)] / 1e9:.2f} ({min(xs) / 1e9:.2f}-{max(xs) / 1e9:.2f})")
        retr.append(str(sum(r for _, r in tput[(path, streams)])))
    vs = ""
    if path.startswith("flanneld"):
        hand = "hand-made " + path.split()[1]
        vs = " / ".join(f"{med[(path, s)] / med[(hand, s)]:.2f}" for s in (1, 4))
    md.append(f"| {path} | {cells[0]} | {cells[1]} | {vs} | {' / '.join(retr)} |")
md.append("")
for n in notes:
    md.append(f"Note: {n}")
    md.append("")
md.append("Phase times: " + ", ".join(f"{k} {v:.0f} s" for k, v in phase_secs.items())
          + f"; total {time.monotonic() - t_start:.0f} s (set-up included).")

text = "\n".join(md) + "\n"
sys.stdout.write(text)
os.makedirs(os.path.dirname(os.path.abspath(report_md)), exist_ok=True)
with open(report_md + ".tmp", "w") as f:
    f.write(text)
os.replace(report_md + ".tmp", report_md)
