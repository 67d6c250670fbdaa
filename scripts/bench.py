"""The body of scripts/bench.sh (which checks the machine, compiles the launcher, and removes
every namespace and the temp dir this makes, on every exit path). Run it through bench.sh.

  bench.py TMP GO_DIR N WARMUP PREFIX WEFT_BIN PODS CONC RESULTS_MD

Every network namespace made here is named PREFIX...; every plugin that touches a "host" runs
inside a namespace PREFIX host-... entered by the launcher (bench-run.c), never in the machine's
own. Progress goes to stderr; the markdown report goes to stdout and to RESULTS_MD.
"""
import concurrent.futures
import ipaddress
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

from benchlab import BenchError, check, configure, ip, ip_batch, log
from benchlab import run as run_cmd

tmp, go_dir, n, warmup, prefix, weft_bin, pods, conc, results_md = sys.argv[1:10]
n, warmup, pods, conc = int(n), int(warmup), int(pods), int(conc)
launcher = os.path.join(tmp, "bench-run")
impls = {"weft": os.path.join(tmp, "bin"), "Go": go_dir}
IMPL_TAG = {"weft": "w", "Go": "g"}
total = warmup + n
PATH_ENV = "/usr/sbin:/usr/bin:/sbin:/bin"

configure("bench.sh", prefix, tmp)


def nspath(name):
    """The path of a namespace whose name already carries this run's prefix (benchlab's nspath
    adds it)."""
    return f"/run/netns/{name}"


# ---- namespaces, made before each phase is timed and removed after it -----------------------------
# Container namespaces: one per (scenario, iteration, implementation), fresh for every scenario;
# the throughput run has its own PODS per implementation (reused by that implementation's rounds,
# checked clean after every DEL). One "host" namespace per (scenario, implementation). Only the
# running phase's namespaces exist: every namespace alive on the machine lengthens the kernel's
# /proc/sys lookups of names they share (eth0, lo), which every ADD makes, and a node does not
# keep 2000 idle ones.
def lat_ns(scen, impl, i):
    return f"{prefix}{scen}-{IMPL_TAG[impl]}{i}"


def tp_ns(impl, k):
    return f"{prefix}tp-{IMPL_TAG[impl]}{k}"


def host_ns(scen, impl):
    return f"{prefix}host-{scen}-{IMPL_TAG[impl]}"


def phase_namespaces(phase):
    """The namespaces one phase uses: "simple" (loopback, host-local), "br", "pt" or "tp"."""
    names = []
    for impl in impls:
        if phase == "simple":
            names += [lat_ns("lo", impl, i) for i in range(total)]
        elif phase == "tp":
            names += [tp_ns(impl, k) for k in range(pods)] + [host_ns("tp", impl)]
        else:
            names += [lat_ns(phase, impl, i) for i in range(total)] + [host_ns(phase, impl)]
    return names


def make_namespaces(phase):
    names = phase_namespaces(phase)
    log(f"creating {len(names)} network namespaces for {phase}")
    t = time.monotonic()
    ip_batch(None, [f"netns add {x}" for x in names])
    log(f"  ... in {time.monotonic() - t:.1f} s")
    # lo up in the hosts, as on a real node (the plugins do not need it).
    for impl in impls:
        if phase != "simple":
            ip("-n", host_ns(phase, impl), "link", "set", "lo", "up")


def drop_namespaces(phase):
    ip_batch(None, [f"netns del {x}" for x in phase_namespaces(phase)])


# ---- configurations ------------------------------------------------------------------------------
def data_dir(impl, scen):
    return os.path.join(tmp, "data", impl.lower(), scen)


def conf_json(d):
    return json.dumps(d).encode()


SUBNETS = {  # (scenario, impl) -> subnet; each implementation its own, same size
    ("hl", "weft"): "10.123.0.0/16", ("hl", "Go"): "10.123.0.0/16",  # IPAM only: no interfaces
    ("br", "weft"): "10.124.0.0/16", ("br", "Go"): "10.125.0.0/16",
    ("pt", "weft"): "10.126.0.0/16", ("pt", "Go"): "10.127.0.0/16",
    ("tp", "weft"): "10.128.0.0/16", ("tp", "Go"): "10.129.0.0/16",
    ("pm", "weft"): "10.130.0.0/16", ("pm", "Go"): "10.131.0.0/16",
}
NET_NAME = {"hl": "benchnet", "br": "bench-br", "pt": "bench-ptp", "tp": "bench-tp", "pm": "bench-pm"}


def ipam(scen, impl, routes=None):
    d = {"type": "host-local", "dataDir": data_dir(impl, scen),
         "ranges": [[{"subnet": SUBNETS[(scen, impl)]}]]}
    if routes:
        d["routes"] = routes
    return d


def bridge_conf(scen, impl, bridge):
    # What flannel hands the bridge plugin (kube-flannel's delegate: hairpinMode, isDefaultGateway;
    # flanneld does the masquerading, so ipMasq false).
    return {"cniVersion": "1.0.0", "name": NET_NAME[scen], "type": "bridge", "bridge": bridge,
            "isGateway": True, "isDefaultGateway": True, "hairpinMode": True, "ipMasq": False,
            "mtu": 1450, "ipam": ipam(scen, impl)}


lo_conf = b'{"cniVersion":"1.0.0","name":"benchlo","type":"loopback"}'
CONFS = {}
for impl in impls:
    tag = IMPL_TAG[impl]
    CONFS[("hl", impl)] = conf_json({"cniVersion": "1.0.0", "name": NET_NAME["hl"], "type": "bridge",
                                     "ipam": ipam("hl", impl)})
    CONFS[("br", impl)] = conf_json(bridge_conf("br", impl, f"cni{tag}0"))
    CONFS[("pt", impl)] = conf_json({"cniVersion": "1.0.0", "name": NET_NAME["pt"], "type": "ptp",
                                     "ipMasq": False, "mtu": 1450,
                                     "ipam": ipam("pt", impl, [{"dst": "0.0.0.0/0"}])})
    CONFS[("tp", impl)] = conf_json(bridge_conf("tp", impl, f"cni{tag}1"))
    CONFS[("pm", impl)] = conf_json(bridge_conf("pm", impl, f"cni{tag}2"))


# ---- running plugins -----------------------------------------------------------------------------
def run(impl, plugin, command, container_id, netns, ifname, conf, host="-"):
    """One invocation as a runtime does it; returns (wall ns, max RSS KiB, stdout)."""
    path = os.path.join(impls[impl], plugin)
    env = {"PATH": PATH_ENV, "CNI_COMMAND": command, "CNI_CONTAINERID": container_id,
           "CNI_NETNS": netns, "CNI_IFNAME": ifname, "CNI_PATH": impls[impl]}
    r, w = os.pipe()
    try:
        p = subprocess.Popen([launcher, "one", str(w), host, path], stdin=subprocess.PIPE,
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
    what = f"{impl} {plugin} {command} (container {container_id}, netns {netns}, host {host})"
    if p.returncode != 0 or not metrics:
        raise BenchError(f"launcher failed for {what}: exit {p.returncode}, stderr: {err.decode(errors='replace')}")
    ns, rss, status = (int(x) for x in metrics.split())
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise BenchError(f"{what} exited {code}\n  stdout: {out.decode(errors='replace').strip()}\n"
                         f"  stderr: {err.decode(errors='replace').strip()}")
    return ns, rss, out


def lo_is_up(netns_name):
    out = ip("-n", netns_name, "-o", "link", "show", "lo").stdout
    flags = out.split("<", 1)[1].split(">", 1)[0].split(",")
    return "UP" in flags


def eth0_addrs(netns_name):
    """The IPv4 addresses (as 'a.b.c.d/len') on eth0 in the namespace; None if there is no eth0."""
    r = ip("-n", netns_name, "-j", "-4", "addr", "show", "dev", "eth0", ok=False)
    if r.returncode != 0:
        check("does not exist" in r.stderr, f"ip -n {netns_name} addr show eth0: {r.stderr.strip()}")
        return None
    return {f"{a['local']}/{a['prefixlen']}" for l in json.loads(r.stdout) for a in l.get("addr_info", [])}


def host_veths(host):
    return [l["ifname"] for l in json.loads(ip("-n", host, "-j", "link", "show", "type", "veth").stdout)]


def reservations(impl, scen):
    store = os.path.join(data_dir(impl, scen), NET_NAME[scen])
    if not os.path.isdir(store):
        return []
    return [f for f in os.listdir(store) if f != "lock" and not f.startswith("last_reserved_ip")]


def ipv4_of(res_json, scen, impl, what):
    res = json.loads(res_json)
    check(res.get("cniVersion") == "1.0.0", f"{what}: cniVersion {res.get('cniVersion')!r}")
    ips = [i for i in res.get("ips", []) if ipaddress.ip_interface(i["address"]).version == 4]
    check(len(ips) == 1, f"{what}: expected one IPv4 address, got {res.get('ips')}")
    addr = ipaddress.ip_interface(ips[0]["address"])
    check(addr.ip in ipaddress.ip_network(SUBNETS[(scen, impl)]), f"{what}: {addr} not in the subnet")
    return addr


samples = {}  # (scenario, op, impl) -> [(ns, rss)]


def record(i, key, ns, rss):
    if i >= warmup:
        samples.setdefault(key, []).append((ns, rss))


def order(i):
    return ("weft", "Go") if i % 2 == 0 else ("Go", "weft")


# ---- latency: loopback and host-local (fresh namespace per iteration and implementation) --------
def loopback(i, impl, command):
    name = lat_ns("lo", impl, i)
    cid = f"bench-lo-{impl}-{i}"
    ns, rss, out = run(impl, "loopback", command, cid, nspath(name), "lo", lo_conf)
    if command == "ADD":
        res = json.loads(out)
        check(res.get("cniVersion") == "1.0.0" and res["interfaces"][0]["name"] == "lo",
              f"{impl} loopback ADD: unexpected result {out!r}")
        check(lo_is_up(name), f"{impl} loopback ADD: lo is not up in {name}")
    else:
        check(not lo_is_up(name), f"{impl} loopback DEL: lo is still up in {name}")
    record(i, ("loopback", command, impl), ns, rss)


hl_last = {}


def host_local(i, impl, command):
    cid = f"bench-hl-{impl}-{i}"
    ns, rss, out = run(impl, "host-local", command, cid, nspath(lat_ns("lo", impl, i)), "eth0",
                       CONFS[("hl", impl)])
    store = os.path.join(data_dir(impl, "hl"), NET_NAME["hl"])
    if command == "ADD":
        addr = ipv4_of(out, "hl", impl, f"{impl} host-local ADD")
        check(os.path.exists(os.path.join(store, str(addr.ip))),
              f"{impl} host-local ADD: no reservation file for {addr.ip}")
        hl_last[impl] = str(addr.ip)
    else:
        check(not os.path.exists(os.path.join(store, hl_last[impl])),
              f"{impl} host-local DEL: reservation {hl_last[impl]} still there")
    record(i, ("host-local", command, impl), ns, rss)


def run_simple():
    for i in range(total):
        for scenario in (loopback, host_local):
            for command in ("ADD", "DEL"):
                for impl in order(i):
                    scenario(i, impl, command)
        if (i + 1) % 50 == 0 or i + 1 == total:
            log(f"loopback, host-local: {i + 1}/{total} iterations")
    for impl in impls:
        left = reservations(impl, "hl")
        check(not left, f"{impl} host-local: reservations left after every DEL: {left}")


# ---- latency: bridge and ptp with host-local IPAM --------------------------------------------------
# All ADDs first (weft and Go alternating per iteration), then all DELs in the same order, so the
# host side grows to N+WARMUP attachments per implementation as on a node, not just one.
LAT_LABEL = {"br": "bridge+host-local", "pt": "ptp+host-local"}
PLUGIN = {"br": "bridge", "pt": "ptp", "tp": "bridge"}


def run_attach(scen):
    label, plugin = LAT_LABEL[scen], PLUGIN[scen]
    addrs = {}
    for i in range(total):
        for impl in order(i):
            cid = f"bench-{scen}-{impl}-{i}"
            name = lat_ns(scen, impl, i)
            what = f"{impl} {label} ADD #{i}"
            ns, rss, out = run(impl, plugin, "ADD", cid, nspath(name), "eth0", CONFS[(scen, impl)],
                               nspath(host_ns(scen, impl)))
            addr = ipv4_of(out, scen, impl, what)
            got = eth0_addrs(name)
            check(got is not None and str(addr) in got, f"{what}: eth0 in {name} has {got}, not {addr}")
            check(str(addr.ip) in reservations(impl, scen), f"{what}: no reservation for {addr.ip}")
            addrs[(impl, i)] = addr
            record(i, (label, "ADD", impl), ns, rss)
        if (i + 1) % 50 == 0 or i + 1 == total:
            log(f"{label} ADD: {i + 1}/{total} iterations")
    for impl in impls:
        veths = host_veths(host_ns(scen, impl))
        check(len(veths) == total, f"{impl} {label}: {len(veths)} host veths after {total} ADDs")
    for i in range(total):
        for impl in order(i):
            cid = f"bench-{scen}-{impl}-{i}"
            name = lat_ns(scen, impl, i)
            what = f"{impl} {label} DEL #{i}"
            ns, rss, _ = run(impl, plugin, "DEL", cid, nspath(name), "eth0", CONFS[(scen, impl)],
                             nspath(host_ns(scen, impl)))
            check(eth0_addrs(name) is None, f"{what}: eth0 still in {name}")
            check(str(addrs[(impl, i)].ip) not in reservations(impl, scen),
                  f"{what}: reservation {addrs[(impl, i)].ip} still there")
            record(i, (label, "DEL", impl), ns, rss)
        if (i + 1) % 50 == 0 or i + 1 == total:
            log(f"{label} DEL: {i + 1}/{total} iterations")
    for impl in impls:
        veths = host_veths(host_ns(scen, impl))
        check(not veths, f"{impl} {label}: host veths left after every DEL: {veths}")
        left = reservations(impl, scen)
        check(not left, f"{impl} {label}: reservations left after every DEL: {left}")


# ---- latency: bridge+host-local then portmap, chained as a runtime chains them ---------------------
# Each pod gets one TCP host port; the host's nat table grows by a chain per pod, so the quarters
# show whether an ADD's cost grows with the mappings already there.
def portmap_conf(impl, cid, prev, host_port):
    return conf_json({"cniVersion": "1.0.0", "name": NET_NAME["pm"], "type": "portmap",
                      "runtimeConfig": {"portMappings": [
                          {"hostPort": host_port, "containerPort": 80, "protocol": "tcp"}]},
                      "prevResult": prev})


def forks():
    """Processes forked on the machine so far (/proc/stat)."""
    with open("/proc/stat") as f:
        for l in f:
            if l.startswith("processes "):
                return int(l.split()[1])
    raise BenchError("no processes line in /proc/stat")


def dn_chains(host):
    out = run_cmd(["ip", "netns", "exec", host, "iptables-save", "-t", "nat"]).stdout
    return sum(1 for l in out.splitlines() if l.startswith(":CNI-DN-"))


pm_children = {}  # impl -> [tasks (processes, threads) the portmap ADD started]


def run_portmap():
    prevs = {}
    for i in range(total):
        for impl in order(i):
            cid = f"bench-pm-{impl}-{i}"
            name, host = lat_ns("pm", impl, i), nspath(host_ns("pm", impl))
            b_ns, b_rss, out = run(impl, "bridge", "ADD", cid, nspath(name), "eth0", CONFS[("pm", impl)], host)
            ipv4_of(out, "pm", impl, f"{impl} bridge ADD #{i} (portmap chain)")
            prevs[(impl, i)] = json.loads(out)
            f0 = forks()
            p_ns, p_rss, pout = run(impl, "portmap", "ADD", cid, nspath(name), "eth0",
                                    portmap_conf(impl, cid, prevs[(impl, i)], 20000 + i), host)
            # The launcher's Popen and its fork of the plugin are two; the rest are the plugin's
            # (the count includes threads: a Go program starts several).
            if i >= warmup:
                pm_children.setdefault(impl, []).append(forks() - f0 - 2)
            check(json.loads(pout).get("ips") == prevs[(impl, i)].get("ips"),
                  f"{impl} portmap ADD #{i}: result is not the prevResult")
            record(i, ("portmap", "ADD", impl), p_ns, p_rss)
            record(i, ("bridge+host-local+portmap", "ADD", impl), b_ns + p_ns, max(b_rss, p_rss))
        if (i + 1) % 50 == 0 or i + 1 == total:
            log(f"bridge+portmap ADD: {i + 1}/{total} iterations")
    for impl in impls:
        got = dn_chains(host_ns("pm", impl))
        check(got == total, f"{impl} portmap: {got} CNI-DN chains after {total} ADDs")
    for i in range(total):
        for impl in order(i):
            cid = f"bench-pm-{impl}-{i}"
            name, host = lat_ns("pm", impl, i), nspath(host_ns("pm", impl))
            p_ns, p_rss, _ = run(impl, "portmap", "DEL", cid, nspath(name), "eth0",
                                 portmap_conf(impl, cid, prevs[(impl, i)], 20000 + i), host)
            b_ns, b_rss, _ = run(impl, "bridge", "DEL", cid, nspath(name), "eth0", CONFS[("pm", impl)], host)
            record(i, ("portmap", "DEL", impl), p_ns, p_rss)
            record(i, ("bridge+host-local+portmap", "DEL", impl), b_ns + p_ns, max(b_rss, p_rss))
        if (i + 1) % 50 == 0 or i + 1 == total:
            log(f"bridge+portmap DEL: {i + 1}/{total} iterations")
    for impl in impls:
        got = dn_chains(host_ns("pm", impl))
        check(got == 0, f"{impl} portmap: {got} CNI-DN chains left after every DEL")


# ---- throughput: PODS pods into one bridge, CONC at a time ---------------------------------------
def run_many(impl, command, round_, jobs):
    """Runs the bridge plugin for every (cid, netns) in jobs, CONC at a time, in the impl's tp host.
    Returns (total s, [(ns, rss)] per job in job order, [stdout] per job)."""
    d = os.path.join(os.environ.get("BENCH_OUT_DIR", os.path.join(tmp, "tp")), f"{impl.lower()}-{round_}-{command}")
    os.makedirs(d)
    conf_file, jobs_file = os.path.join(d, "conf.json"), os.path.join(d, "jobs")
    with open(conf_file, "wb") as f:
        f.write(CONFS[("tp", impl)])
    with open(jobs_file, "w") as f:
        f.writelines(f"{cid} {netns}\n" for cid, netns in jobs)
    env = {"PATH": PATH_ENV, "CNI_COMMAND": command, "CNI_IFNAME": "eth0", "CNI_PATH": impls[impl]}
    r = subprocess.run([launcher, "many", nspath(host_ns("tp", impl)), os.path.join(impls[impl], "bridge"),
                        str(conc), conf_file, d, jobs_file], env=env, capture_output=True, text=True)
    per = [None] * len(jobs)
    total_ns = None
    for line in r.stdout.splitlines():
        f = line.split()
        if f[0] == "job":
            per[int(f[1])] = (int(f[2]), int(f[3]), int(f[4]))
        elif f[0] == "total":
            total_ns = int(f[1])
    for k, p in enumerate(per):
        if p is None or p[2] != 0:
            with open(os.path.join(d, f"{k}.err"), errors="replace") as f:
                err = f.read().strip()
            raise BenchError(f"{impl} bridge {command} (throughput round {round_}, pod {k}): "
                             f"{'not run' if p is None else f'wait status {p[2]}'}: {err}\n"
                             f"launcher: exit {r.returncode} {r.stderr.strip()}")
    check(r.returncode == 0 and total_ns is not None, f"launcher many: exit {r.returncode} {r.stderr}")
    outs = []
    for k in range(len(jobs)):
        with open(os.path.join(d, f"{k}.out"), "rb") as f:
            outs.append(f.read())
    return total_ns / 1e9, [(p[0], p[1]) for p in per], outs


def parallel_map(fn, items):
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        return list(ex.map(fn, items))


def tp_warm(impl):
    """One ADD+DEL outside the timed region: the bridge exists and the binaries are in the page
    cache before the first timed round, as on a node that has run a pod before."""
    cid, name = f"bench-tp-{impl}-warm", tp_ns(impl, 0)
    host = nspath(host_ns("tp", impl))
    run(impl, "bridge", "ADD", cid, nspath(name), "eth0", CONFS[("tp", impl)], host)
    run(impl, "bridge", "DEL", cid, nspath(name), "eth0", CONFS[("tp", impl)], host)
    check(eth0_addrs(name) is None and not reservations(impl, "tp") and not host_veths(host_ns("tp", impl)),
          f"{impl} throughput warm-up: ADD+DEL left something behind")


tp = {}  # (impl, op) -> [(seconds, [(ns, rss)])]


def tp_round(impl, round_):
    host = host_ns("tp", impl)
    jobs = [(f"bench-tp-{impl}-r{round_}-{k}", nspath(tp_ns(impl, k))) for k in range(pods)]
    secs, per, outs = run_many(impl, "ADD", round_, jobs)
    tp.setdefault((impl, "ADD"), []).append((secs, per))
    log(f"throughput {impl} round {round_}: {pods} ADDs in {secs:.2f} s ({pods / secs:.0f} pods/s); checking")
    addrs = [ipv4_of(o, "tp", impl, f"{impl} throughput ADD pod {k}") for k, o in enumerate(outs)]
    check(len({a.ip for a in addrs}) == pods,
          f"{impl} throughput ADD: {len({a.ip for a in addrs})} distinct IPs for {pods} pods")
    got = parallel_map(lambda k: eth0_addrs(tp_ns(impl, k)), range(pods))
    bad = [k for k in range(pods) if got[k] is None or str(addrs[k]) not in got[k]]
    check(not bad, f"{impl} throughput ADD: {len(bad)} pods without eth0 {addrs[bad[0]] if bad else ''}"
                   f" (first: {tp_ns(impl, bad[0]) if bad else ''} has {got[bad[0]] if bad else ''})")
    check(len(host_veths(host)) == pods, f"{impl} throughput ADD: host veth count != {pods}")
    check(len(reservations(impl, "tp")) == pods, f"{impl} throughput ADD: reservation count != {pods}")
    secs, per, _ = run_many(impl, "DEL", round_, jobs)
    tp.setdefault((impl, "DEL"), []).append((secs, per))
    log(f"throughput {impl} round {round_}: {pods} DELs in {secs:.2f} s ({pods / secs:.0f} pods/s); checking")
    veths = host_veths(host)
    check(not veths, f"{impl} throughput DEL: {len(veths)} veths left in {host}, e.g. {veths[:3]}")
    left = reservations(impl, "tp")
    check(not left, f"{impl} throughput DEL: {len(left)} reservation files left, e.g. {left[:3]}")
    got = parallel_map(lambda k: eth0_addrs(tp_ns(impl, k)), range(pods))
    bad = [tp_ns(impl, k) for k in range(pods) if got[k] is not None]
    check(not bad, f"{impl} throughput DEL: eth0 left in {len(bad)} pods, e.g. {bad[:3]}")


# ABBA then BAAB: linear and quadratic drift hit both alike. Four rounds each rather than two:
# on the development VM one implementation's rounds moved by up to a quarter from run to run.
TP_ORDER = ("weft", "Go", "Go", "weft", "Go", "weft", "weft", "Go")


def run_throughput():
    for impl in impls:
        tp_warm(impl)
    for round_, impl in enumerate(TP_ORDER):
        tp_round(impl, round_)


def spawn_floor():
    floor = []
    for _ in range(n):
        r, w = os.pipe()
        subprocess.run([launcher, "one", str(w), "-", "/bin/true"], check=True, pass_fds=(w,))
        os.close(w)
        floor.append(tuple(int(x) for x in os.read(r, 4096).split()[:2]))
        os.close(r)
    return floor


def veth_delete_floor():
    """The kernel's own cost of deleting a bridge-port veth pair, which every DEL pays: a
    launcher-timed `ip link del` minus `ip link show` of the same link (same exec and set-up
    cost), in a namespace of its own. Returns the medians (del ns, show ns)."""
    ns = f"{prefix}floor"
    ip("netns", "add", ns)

    def in_ns(*lines):
        r = subprocess.run(["ip", "-n", ns, "-batch", "-"], input="".join(l + "\n" for l in lines),
                           capture_output=True, text=True)
        check(r.returncode == 0, f"ip -n {ns} -batch failed: {r.stderr.strip()}")

    in_ns("link set lo up", "link add flbr0 type bridge", "link set flbr0 up")
    ip_bin = shutil.which("ip")
    timed = {"del": [], "show": []}
    for _ in range(min(n, 60)):
        in_ns("link add flv0 type veth peer name flv1", "link set flv1 master flbr0 up",
              "link set flv0 up")
        for what, argv in (("show", ["link", "show", "dev", "flv0"]), ("del", ["link", "del", "dev", "flv0"])):
            r, w = os.pipe()
            subprocess.run([launcher, "one", str(w), "-", ip_bin, "-n", ns, *argv], check=True,
                           pass_fds=(w,), stdout=subprocess.DEVNULL)
            os.close(w)
            wall, _, status = os.read(r, 4096).split()[:3]
            os.close(r)
            check(status == b"0", f"ip {' '.join(argv)} in {ns} failed")
            timed[what].append(int(wall))
    ip("netns", "del", ns)
    return statistics.median(timed["del"]), statistics.median(timed["show"])


t_start = time.monotonic()
phase_secs = {}
try:
    for name, phase, fn in (("loopback, host-local", "simple", run_simple),
                            ("bridge", "br", lambda: run_attach("br")),
                            ("ptp", "pt", lambda: run_attach("pt")),
                            ("bridge+portmap", "pm", run_portmap),
                            ("throughput", "tp", run_throughput)):
        make_namespaces(phase)
        t = time.monotonic()
        fn()
        phase_secs[name] = time.monotonic() - t
        drop_namespaces(phase)
    floor = spawn_floor()
    del_floor = veth_delete_floor()
except BenchError as e:
    print(f"bench.sh: FAILED: {e}", file=sys.stderr)
    sys.exit(1)
except KeyboardInterrupt:
    print("bench.sh: interrupted", file=sys.stderr)
    sys.exit(130)


# ---- report ---------------------------------------------------------------------------------------
def ms(ns):
    return f"{ns / 1e6:.2f}"


def verdict(ok):
    return "**met**" if ok else "**NOT met**"


def p95(xs):
    xs = sorted(xs)
    return xs[max(0, math.ceil(0.95 * len(xs)) - 1)]


def dpkg_version(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
    return r.stdout.strip() or "?"


weft_version = subprocess.run([weft_bin, "--version"], capture_output=True, text=True).stdout.strip()
md = []
md.append("# weft vs Go CNI plugins")
md.append("")
md.append(f"kernel {platform.release()}, nproc {os.cpu_count()}, "
          f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, N={n} (+{warmup} warmup) per op, "
          f"weft: {weft_version}, Go: containernetworking-plugins {dpkg_version('containernetworking-plugins')}, "
          "cniVersion 1.0.0")
md.append("")
md.append("| op | weft median (p95) ms | Go median (p95) ms | weft/Go (median) | max RSS weft / Go KiB |")
md.append("|---|---:|---:|---:|---:|")
ratios = []
for scenario in ("loopback", "host-local", LAT_LABEL["br"], LAT_LABEL["pt"], "portmap",
                 "bridge+host-local+portmap"):
    for command in ("ADD", "DEL"):
        w = samples[(scenario, command, "weft")]
        g = samples[(scenario, command, "Go")]
        wt, gt = [s[0] for s in w], [s[0] for s in g]
        wm, gm = statistics.median(wt), statistics.median(gt)
        ratios.append((f"{scenario} {command}", wm / gm))
        md.append(f"| {scenario} {command} | {ms(wm)} ({ms(p95(wt))}) | {ms(gm)} ({ms(p95(gt))}) "
                  f"| {wm / gm:.2f} | {max(s[1] for s in w)} / {max(s[1] for s in g)} |")
md.append("")
# The kernel's work for a new attachment grows with the ones already there (the ARP flood to every
# bridge port, the /proc/sys lookups across namespaces), and it is the same for both; the ratio
# by quarter of the run shows how much of it weft's share is.
quarters = [(k * n // 4, (k + 1) * n // 4) for k in range(4) if (k + 1) * n // 4 > k * n // 4]
md.append("ADD by how many attachments the host already had (weft / Go median ms, and the ratio):")
md.append("")
md.append("| op | " + " | ".join(f"{warmup + a} to {warmup + b - 1}" for a, b in quarters) + " |")
md.append("|---|" + "---:|" * len(quarters))
for scenario in (LAT_LABEL["br"], LAT_LABEL["pt"], "portmap", "bridge+host-local+portmap"):
    cells = []
    for a, b in quarters:
        wm = statistics.median(x[0] for x in samples[(scenario, "ADD", "weft")][a:b])
        gm = statistics.median(x[0] for x in samples[(scenario, "ADD", "Go")][a:b])
        cells.append(f"{ms(wm)} / {ms(gm)} ({wm / gm:.2f})")
    md.append(f"| {scenario} ADD | " + " | ".join(cells) + " |")
md.append("")
chain = "bridge+host-local+portmap"
cw = [x[0] for x in samples[(chain, "ADD", "weft")]]
cg = [x[0] for x in samples[(chain, "ADD", "Go")]]
chain_ratio = statistics.median(cw) / statistics.median(cg)
a0, b0 = quarters[0]
a3, b3 = quarters[-1]
growth = {impl: statistics.median(x[0] for x in samples[("portmap", "ADD", impl)][a3:b3])
          / statistics.median(x[0] for x in samples[("portmap", "ADD", impl)][a0:b0]) for impl in impls}
# ms per 100 mappings already there, between the middles of the first and the last quarter.
slope = {impl: (statistics.median(x[0] for x in samples[("portmap", "ADD", impl)][a3:b3])
                - statistics.median(x[0] for x in samples[("portmap", "ADD", impl)][a0:b0]))
         / 1e6 / ((a3 + b3 - a0 - b0) / 2) * 100 for impl in impls}
md.append(f"Tasks (processes and their threads) a portmap ADD starts, median of /proc/stat's count "
          f"of forks and clones around each run, less the launcher's two: weft "
          f"{statistics.median(pm_children['weft']):.0f}, Go {statistics.median(pm_children['Go']):.0f}. "
          f"portmap ADD median in the last quarter over the first: weft {growth['weft']:.2f}, Go {growth['Go']:.2f}; "
          f"added per 100 mappings already there: weft {slope['weft']:.1f} ms, Go {slope['Go']:.1f} ms "
          f"(iptables-save and -restore read the whole nat table, as every iptables call does).")
md.append("")
md.append(f"Goal: bridge+host-local+portmap chain ADD at most 0.3 of Go's: {verdict(chain_ratio <= 0.3)} "
          f"({chain_ratio:.2f}); flat in the mappings already there: {verdict(growth['weft'] <= 1.25)} "
          f"(weft {growth['weft']:.2f} from the first quarter to the last).")
md.append("")

tp_rate = {}
for op in ("ADD", "DEL"):
    parts = []
    for impl in impls:
        rounds = tp[(impl, op)]
        rate = len(rounds) * pods / sum(s for s, _ in rounds)
        tp_rate[(impl, op)] = rate
        lat = [p[0] for _, per in rounds for p in per]
        rss = max(p[1] for _, per in rounds for p in per)
        parts.append(f"{impl} **{rate:.0f} pods/s** (rounds {', '.join(f'{pods / s:.0f}' for s, _ in rounds)}; "
                     f"per pod median {ms(statistics.median(lat))} ms, p95 {ms(p95(lat))} ms; max RSS {rss} KiB)")
    md.append(f"- Throughput {op}, {pods} pods, {conc} concurrent, one bridge: " + "; ".join(parts)
              + f"; weft/Go {tp_rate[('weft', op)] / tp_rate[('Go', op)]:.2f}x")
md.append("")


# The goal is set for the attachment plugins; loopback and host-local are shown for reference.
goal_ops = [(op, r) for op, r in ratios if op.startswith((LAT_LABEL["br"], LAT_LABEL["pt"]))]
lat_ok = [(op, r) for op, r in goal_ops if r <= 1 / 3]
lat_bad = [(op, r) for op, r in goal_ops if r > 1 / 3]
md.append(f"Goal: weft median latency at most 1/3 of Go's (weft/Go <= 0.33) for bridge and ptp: "
          f"{verdict(not lat_bad)} ({len(lat_ok)} of {len(goal_ops)} ops)"
          + (f"; missed by: {', '.join(f'{op} {r:.2f}' for op, r in lat_bad)}" if lat_bad else "") + ".")
md.append("")
kernel_del = del_floor[0] - del_floor[1]
go_del = [statistics.median(s[0] for s in samples[(LAT_LABEL[sc], "DEL", "Go")]) for sc in ("br", "pt")]
md.append(f"DEL floor: the kernel's own deletion of a bridge-port veth pair (launcher-timed `ip link del` "
          f"minus `ip link show` of the same link, {min(n, 60)} runs) takes {ms(kernel_del)} ms median here, "
          f"most of it in rcu_barrier() once RTNL is released. A third of Go's median bridge and ptp DEL "
          f"is {ms(go_del[0] / 3)} and {ms(go_del[1] / 3)} ms. Go's DEL waits for all of it; weft's goes on "
          f"once the kernel has announced the pair's removal and leaves that wait to a forked child "
          f"(src/plugins/iface/unregister.rs).")
md.append("")
tp_parts = []
all_tp = True
for op in ("ADD", "DEL"):
    x = tp_rate[("weft", op)] / tp_rate[("Go", op)]
    all_tp &= x >= 3
    tp_parts.append(f"{op} {x:.2f}x {verdict(x >= 3)}")
md.append(f"Goal: weft pods/s at least 3x Go's: {verdict(all_tp)} ({'; '.join(tp_parts)}).")
md.append("")
md.append(f"How: latency is fork to wait4 in a static C launcher (scripts/bench-run.c), which setns()es "
          f"into the implementation's own host namespace first (bridge, ptp), so no `ip netns exec` is "
          f"timed, and a run ends when the plugin is reaped and its stdout and stderr are closed (as "
          f"libcni waits for both); spawn floor (the launcher exec'ing /bin/true): median {ms(statistics.median(f[0] for f in floor))} ms, "
          f"max RSS {max(f[1] for f in floor)} KiB. Max RSS is wait4's ru_maxrss: the largest peak RSS of "
          f"the plugin or any child it waited for (Go's bridge/ptp exec host-local; weft runs it "
          f"in-process), i.e. the biggest single process of the tree, not a sum. "
          f"bridge/ptp: {total} ADDs (weft and Go alternating, who goes first alternating), then {total} DELs; "
          f"each implementation has its own host netns, bridge, /16 and dataDir, CNI_PATH its own "
          f"directory; bridge config as flannel delegates it (isGateway, isDefaultGateway, hairpinMode, "
          f"mtu 1450, no ipMasq); ptp with a default route, no ipMasq. Throughput: rounds {', '.join(TP_ORDER)}, "
          f"each {pods} ADDs then {pods} DELs with {conc} in flight (namespaces made beforehand, "
          f"one untimed ADD+DEL first; the launcher's per-pod stdout/stderr files on tmpfs), pods/s = pods "
          f"over first-fork-to-last-reap time summed over an implementation's rounds; checked after ADD ({pods} distinct IPs, each pod's eth0 has its address, {pods} host "
          f"veths and reservations) and after DEL (no host veth, reservation or eth0 left).")
md.append("")

sizes = {p: os.path.getsize(os.path.join(go_dir, p)) for p in ("loopback", "host-local", "bridge", "ptp")}
weft_size = os.path.getsize(weft_bin)


def mib(b):
    return f"{b / 2**20:.1f} MiB"


md.append("| binary | bytes | size |")
md.append("|---|---:|---:|")
md.append(f"| weft (static, every applet) | {weft_size} | {mib(weft_size)} |")
for p, s in sizes.items():
    md.append(f"| Go {p} | {s} | {mib(s)} |")
go_sum = sum(sizes.values())
md.append(f"| Go loopback+host-local+bridge+ptp | {go_sum} | {mib(go_sum)} |")
md.append(f"| weft / Go sum | | {weft_size / go_sum:.2f} |")
md.append("")
md.append("Phase times: " + ", ".join(f"{k} {v:.0f} s" for k, v in phase_secs.items())
          + " (checks included).")

text = "\n".join(md) + "\n"
sys.stdout.write(text)
os.makedirs(os.path.dirname(results_md), exist_ok=True)
with open(results_md + ".tmp", "w") as f:
    f.write(text)
os.replace(results_md + ".tmp", results_md)
