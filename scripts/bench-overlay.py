"""The body of scripts/bench-overlay.sh, which checks the machine and removes everything this makes
(namespaces, the processes inside them, the temp dir) on every exit path. Run it through
bench-overlay.sh.

  bench-overlay.py TMP WEFT_BIN PREFIX REPORT_MD SVG JSON

Pod-to-pod data plane across two "hosts" for every path at once: flanneld udp (TUN offloads on,
the default), flanneld udp with WEFT_UDP_OFFLOAD=0 (one packet per TUN read/write), flanneld vxlan,
flanneld host-gw, and the raw underlay (host to host over eth0). Each path has its own pair of
hosts (and its own flannel network in the one etcd), so all of them are up together and the
iperf3 runs interleave in rounds: drift on this shared machine hits every path alike.

Everything happens in network namespaces named PREFIX*: an underlay namespace holding bridge ul0
and etcd (192.168.77.254:2379), hosts plugged into ul0 (192.168.77.N/24, default route via .254)
and one pod behind each host's cni0. This process moves into the underlay namespace (setns of its
one thread; it never starts another) to talk to etcd over its HTTP/JSON gateway; every flanneld and
iperf3 it starts runs in one of the PREFIX* namespaces. Progress goes to stderr; the markdown report
goes to stdout and to REPORT_MD, the chart to SVG, the raw samples to JSON.
"""
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from xml.sax.saxutils import escape

from benchlab import (ENDPOINT, BenchError, add_host, add_pod, alive, configure, cpu_secs, env_int,
                      etcd, flanneld, hosts, ip, log, ns, nsexec, ping_ok, proc_status, spawn,
                      session, start_lab, subnet_env, wait_subnet_env)

tmp, weft, prefix, report_md, svg_path, json_path = sys.argv[1:7]
configure("bench-overlay", prefix, tmp)

SECS = env_int("BENCH_OVERLAY_SECS", 5)          # measured seconds per TCP run (plus 1 s omitted)
UDP_SECS = env_int("BENCH_OVERLAY_UDP_SECS", 3)  # seconds per 64-byte UDP run
ROUNDS = env_int("BENCH_OVERLAY_ROUNDS", 3)      # rounds (every path, every kind of run)
UDP_LEN = 64                                     # UDP payload bytes in the packets/s runs


# ---- flanneld -------------------------------------------------------------------------------------
def start_flanneld(host, etcd_prefix, env=None):
    h = hosts[host]
    h["log"] = os.path.join(h["dir"], "flanneld.log")
    flanneld[host] = spawn(host, [weft, "flanneld", f"-etcd-endpoints={ENDPOINT}",
                                  f"-etcd-prefix={etcd_prefix}",
                                  f"-subnet-file={os.path.join(h['dir'], 'subnet.env')}"],
                           h["log"], env=env)


def udp_snmp(netns):
    """The Udp: line of /proc/net/snmp in namespace `netns`."""
    snmp = nsexec(netns, "cat", "/proc/net/snmp").stdout.splitlines()
    udp = [l.split()[1:] for l in snmp if l.startswith("Udp:")]
    return dict(zip(udp[0], (int(x) for x in udp[1])))


def udp_counters(host):
    """The host's UDP drop counters (/proc/net/snmp of its namespace) and flannel0's drops."""
    c = udp_snmp(host)
    dev = json.loads(ip("-n", ns(host), "-s", "-j", "link", "show", "flannel0").stdout)[0]
    link = dev["stats64"]
    return {"txqlen": dev.get("txqlen", 0),"RcvbufErrors": c.get("RcvbufErrors", 0), "SndbufErrors": c.get("SndbufErrors", 0),
            "InErrors": c.get("InErrors", 0), "InDatagrams": c.get("InDatagrams", 0),
            "flannel0 tx_dropped": link["tx"]["dropped"], "flannel0 rx_dropped": link["rx"]["dropped"],
            "flannel0 tx_packets": link["tx"]["packets"], "flannel0 rx_packets": link["rx"]["packets"]}


# ---- the paths ------------------------------------------------------------------------------------
# key -> (label, client host, server host, flannel backend or None, network, env for flanneld)
PATHS = {
    "udp": ("flanneld udp (TUN offloads on, default)", "u1", "u2", "udp", "10.96.0.0/16", {}),
    "udp-off": ("flanneld udp, offloads off (WEFT_UDP_OFFLOAD=0)", "o1", "o2", "udp", "10.97.0.0/16",
                {"WEFT_UDP_OFFLOAD": "0"}),
    "vxlan": ("flanneld vxlan", "vx1", "vx2", "vxlan", "10.98.0.0/16", {}),
    "host-gw": ("flanneld host-gw", "gw1", "gw2", "host-gw", "10.99.0.0/16", {}),
    "underlay": ("raw underlay (host to host, eth0 MTU 1500)", "n1", "n2", None, None, {}),
}
SHORT = {"udp": "udp", "udp-off": "udp, offloads off", "vxlan": "vxlan", "host-gw": "host-gw",
         "underlay": "underlay"}
HOSTS = {"u1": 1, "u2": 2, "o1": 3, "o2": 4, "vx1": 5, "vx2": 6, "gw1": 7, "gw2": 8, "n1": 9, "n2": 10}
UDP_PATHS = ("udp", "udp-off")
KINDS = ("tcp1", "tcp4", "udp64")

res = {}    # (path, kind) -> [sample dict]
notes = []


def iperf(path, kind, client, server_ip):
    if kind == "udp64":
        # No -O here: iperf3 3.12 counts the omitted second's packets as lost (sum.packets minus
        # lost_packets stops matching the bytes received); without it they agree.
        argv = ["iperf3", "-c", server_ip, "-u", "-l", str(UDP_LEN), "-b", "0", "-t", str(UDP_SECS)]
        limit = UDP_SECS + 30
    else:
        argv = ["iperf3", "-c", server_ip, "-t", str(SECS), "-O", "1", "-P", kind[3:]]
        limit = SECS + 31
    argv += ["-J", "--connect-timeout", "3000"]
    j = {}
    for attempt in range(3):
        try:
            r = nsexec(client, *argv, ok=False, timeout=limit)
            j = json.loads(r.stdout)
            rc = r.returncode
        except subprocess.TimeoutExpired:
            j, rc = {"error": f"no answer in {limit} s"}, -1
        except ValueError:
            j, rc = {"error": (r.stdout[-300:] + r.stderr[-300:]).strip()}, r.returncode
        if "error" not in j and rc == 0:
            e = j["end"]
            if kind == "udp64":
                # The receiver's figures, as the server reported them (3.12 also has them in "sum",
                # but with the sender's packet count).
                s = e.get("sum_received", e["sum"])
                got = s["packets"] - s["lost_packets"]
                return {"pps": got / s["seconds"], "loss": s["lost_percent"], "packets": s["packets"],
                        "lost": s["lost_packets"], "seconds": s["seconds"],
                        "sent_pps": e["sum_sent"]["packets"] / e["sum_sent"]["seconds"]}
            return {"bps": e["sum_received"]["bits_per_second"],
                    "retr": e["sum_sent"].get("retransmits", 0)}
        log(f"iperf3 {path} {kind} attempt {attempt + 1} failed: {j.get('error')}")
        time.sleep(1)
    raise BenchError(f"iperf3 {path} {kind} from {ns(client)} to {server_ip}: {j.get('error')}")


def phase_measure(targets):
    order = list(PATHS)
    total = ROUNDS * len(KINDS) * len(order)
    k = 0
    for rnd in range(ROUNDS):
        for ki, kind in enumerate(KINDS):
            # Rotate the order every round and run it backwards every other kind, so no path is
            # always first or always right after another.
            s = (rnd + ki) % len(order)
            rot = order[s:] + order[:s]
            if ki % 2:
                rot.reverse()
            for path in rot:
                client, server_ip = targets[path]
                cli, srv = PATHS[path][1], PATHS[path][2]
                watch = [h for h in (cli, srv) if h in flanneld]
                d0 = {h: udp_counters(h) for h in watch if path in UDP_PATHS}
                # Where 64-byte datagrams die at the end: the receiving iperf3's socket.
                sink = srv if PATHS[path][3] is None else f"{srv}-p2"
                r0 = udp_snmp(sink)["RcvbufErrors"] if kind == "udp64" else 0
                c0 = {h: cpu_secs(flanneld[h].pid) for h in watch}
                t0 = time.monotonic()
                x = iperf(path, kind, client, server_ip)
                wall = time.monotonic() - t0
                x["wall"] = wall
                x["cpu"] = {h: (cpu_secs(flanneld[h].pid) - c0[h]) / wall * 100 for h in watch}
                if kind == "udp64":
                    x["sink_drops"] = udp_snmp(sink)["RcvbufErrors"] - r0
                if d0:
                    x["drops"] = {h: {k: v - d0[h][k] for k, v in udp_counters(h).items()} for h in d0}
                res.setdefault((path, kind), []).append(x)
                k += 1
                what = f"{x['bps'] / 1e9:.2f} Gbit/s" if "bps" in x else \
                    f"{x['pps'] / 1e3:.0f} kpps, loss {x['loss']:.1f}% ({x['sink_drops']} at the receiving socket)"
                log(f"{k}/{total} round {rnd + 1}: {path}, {kind}: {what}")
        for h in flanneld:
            alive(h)


# ---- main -----------------------------------------------------------------------------------------
t_start = time.monotonic()
phase_secs = {}
load_before = open("/proc/loadavg").read().split()[:3]
offload_line = {}
counters = {}
sockbuf = {}  # udp host -> "rb / tb" KiB of flanneld's socket
mem = {}
with session():
    start_lab()  # this (single-threaded) process now talks to etcd from the underlay
    for name, n in HOSTS.items():
        add_host(name, n)

    for path, (label, cli, srv, backend, network, extra) in PATHS.items():
        if backend is None:
            continue
        pfx = f"/wob/{path}"
        # udp written as upstream users write it: Backend.Type "udp" (its default Port 8285).
        etcd.put(f"{pfx}/config", json.dumps({"Network": network, "Backend": {"Type": backend}}))
        for h in (cli, srv):
            start_flanneld(h, pfx, env=dict(os.environ, **extra) if extra else None)
    for h in flanneld:
        wait_subnet_env(h)
    targets = {}
    for path, (label, cli, srv, backend, network, extra) in PATHS.items():
        if backend is None:
            targets[path] = (cli, hosts[srv]["ip"])
            continue
        pod = {}
        for h in (cli, srv):
            e = subnet_env(h)
            pod[h] = add_pod(h, e["FLANNEL_SUBNET"], e["FLANNEL_MTU"])
            hosts[h]["mtu"] = int(e["FLANNEL_MTU"])
        targets[path] = (f"{cli}-p2", pod[srv])
    for path, (client, dst) in targets.items():
        ping_ok(client, dst)
    for path, (label, cli, srv, backend, *_r) in PATHS.items():
        server = srv if backend is None else f"{srv}-p2"
        spawn(server, ["iperf3", "-s"], os.path.join(tmp, f"iperf3-{server}.log"))
    time.sleep(0.5)
    for path in UDP_PATHS:
        for h in PATHS[path][1:3]:
            with open(hosts[h]["log"], errors="replace") as f:
                lines = [l.strip() for l in f if "offloads" in l]
            offload_line[h] = lines[-1].split("udp: ", 1)[-1] if lines else "(not logged)"
            counters[h] = [udp_counters(h)]
            # The tunnel socket's buffers as the kernel set them (skmem rb/tb: bytes, doubled).
            ss = nsexec(h, "ss", "-uamnH", "sport = :8285").stdout
            mem_ = ss.split("skmem:(", 1)[-1].split(")", 1)[0].split(",")
            sk = {f[:2]: f[2:] for f in mem_ if f[:2] in ("rb", "tb")}
            sockbuf[h] = f"{int(sk['rb']) >> 10} / {int(sk['tb']) >> 10}" if len(sk) == 2 else "?"
    for h in PATHS["udp-off"][1:3]:
        if "offloads off" not in offload_line[h]:
            notes.append(f"{h} (WEFT_UDP_OFFLOAD=0) logged: {offload_line[h]}")
    for h in PATHS["udp"][1:3]:
        if "offloads on" not in offload_line[h]:
            notes.append(f"{h} (offloads requested) logged: {offload_line[h]}")
    phase_secs["set-up"] = time.monotonic() - t_start
    log(f"etcd, {len(hosts)} hosts, {len(flanneld)} flanneld, pods up in {phase_secs['set-up']:.1f} s; "
        f"{ROUNDS} rounds x {len(PATHS)} paths x (TCP 1 and 4 streams, {SECS} s + 1 s omitted; "
        f"{UDP_LEN}-byte UDP, {UDP_SECS} s)")

    t = time.monotonic()
    phase_measure(targets)
    phase_secs["iperf3"] = time.monotonic() - t
    for path in UDP_PATHS:
        for h in PATHS[path][1:3]:
            counters[h].append(udp_counters(h))
            mem[h] = proc_status(flanneld[h].pid)
    for h in flanneld:
        alive(h)
        with open(hosts[h]["log"], errors="replace") as f:
            errs = [l.strip() for l in f if l.startswith(("[WARN", "[ERROR")) or "panick" in l]
        if errs:
            notes.append(f"flanneld in {h} logged {len(errs)} warning/error line(s); last: {errs[-1]}")
load_after = open("/proc/loadavg").read().split()[:3]


# ---- report ---------------------------------------------------------------------------------------
def version(argv):
    r = subprocess.run(argv, capture_output=True, text=True)
    return (r.stdout or r.stderr).strip().splitlines()[0] if r.returncode == 0 else "?"


stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
with open(json_path, "w") as f:  # the raw samples, for a second look
    json.dump({"when": stamp, "secs": SECS, "udp_secs": UDP_SECS, "rounds": ROUNDS,
               "load_before": load_before, "load_after": load_after,
               "samples": {f"{p} {k}": v for (p, k), v in res.items()}, "offloads": offload_line,
               "udp_counters": counters, "sockbuf": sockbuf, "mem": mem, "notes": notes}, f, indent=1)


def med(path, kind, field):
    return statistics.median(x[field] for x in res[(path, kind)])


def rng(path, kind, field, scale, fmt):
    xs = [x[field] / scale for x in res[(path, kind)]]
    return f"{statistics.median(xs):{fmt}} ({min(xs):{fmt}}-{max(xs):{fmt}})"


def sink_share(path):
    """What share of the 64-byte runs' lost datagrams the receiving socket dropped (all rounds)."""
    lost = sum(x["lost"] for x in res[(path, "udp64")])
    at = sum(x["sink_drops"] for x in res[(path, "udp64")])
    return f"{min(at / lost, 1) * 100:.0f}%" if lost else "-"


M = {p: {"tcp1": med(p, "tcp1", "bps") / 1e9, "tcp4": med(p, "tcp4", "bps") / 1e9,
         "pps": med(p, "udp64", "pps") / 1e3} for p in PATHS}

md = ["## Data plane: udp vs vxlan vs host-gw", ""]
md.append(f"kernel {platform.release()}, nproc {os.cpu_count()} (shared with other builds and tests; "
          f"load average {' '.join(load_before)} before, {' '.join(load_after)} after), {stamp}, "
          f"weft: {version([weft, '--version'])}, {version(['iperf3', '--version'])}. Pod to pod across "
          f"two hosts in network namespaces joined by veths on a bridge (underlay MTU 1500); every path "
          f"has its own pair of hosts and all are up at once; {ROUNDS} interleaved rounds, medians "
          f"(min-max). TCP: `iperf3 -t {SECS} -O 1` (-P 1 and -P 4); UDP: `iperf3 -u -l {UDP_LEN} -b 0 "
          f"-t {UDP_SECS}`, packets/s as the receiver counted them.")
md.append("")
md.append("| path | MTU | 1 stream Gbit/s | 4 streams Gbit/s | retransmits (1 / 4, all rounds) "
          f"| {UDP_LEN} B UDP kpps received | UDP loss % | of which at the receiving socket | UDP kpps sent |")
md.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for p, (label, cli, *_r) in PATHS.items():
    retr = " / ".join(str(sum(x["retr"] for x in res[(p, k)])) for k in ("tcp1", "tcp4"))
    mtu = hosts[cli].get("mtu", 1500)
    md.append(f"| {label} | {mtu} | {rng(p, 'tcp1', 'bps', 1e9, '.2f')} | {rng(p, 'tcp4', 'bps', 1e9, '.2f')} "
              f"| {retr} | {rng(p, 'udp64', 'pps', 1e3, '.0f')} | {med(p, 'udp64', 'loss'):.1f} "
              f"| {sink_share(p)} | {med(p, 'udp64', 'sent_pps') / 1e3:.0f} |")
md.append("")
RATIOS = [("udp", "vxlan"), ("udp", "host-gw"), ("udp", "underlay"), ("udp-off", "udp"),
          ("udp-off", "vxlan"), ("vxlan", "underlay"), ("host-gw", "underlay")]
md.append("| ratio (medians) | 1 stream | 4 streams | 64 B UDP packets/s |")
md.append("|---|---:|---:|---:|")
for a, b in RATIOS:
    md.append(f"| {SHORT[a]} / {SHORT[b]} | {M[a]['tcp1'] / M[b]['tcp1']:.2f} | {M[a]['tcp4'] / M[b]['tcp4']:.2f} "
              f"| {M[a]['pps'] / M[b]['pps']:.2f} |")
md.append("")
goal = M["udp"]["tcp1"] / M["vxlan"]["tcp1"]
md.append(f"**udp single-stream / vxlan single-stream = {goal:.2f} (goal >= 0.5): "
          f"{'met' if goal >= 0.5 else 'NOT met'}.**")
md.append("")
md.append("flanneld on the udp hosts (CPU: % of one core over each iperf3 run, median of the rounds; "
          "the client host's flanneld sends the data, the server host's receives it and sends the "
          "ACKs back; memory at the end):")
md.append("")
md.append("| path | host | CPU % TCP 1 stream | CPU % TCP 4 streams | CPU % 64 B UDP | VmHWM KiB | VmRSS KiB | threads |")
md.append("|---|---|---:|---:|---:|---:|---:|---:|")
for p in UDP_PATHS:
    for h, role in zip(PATHS[p][1:3], ("client (sends)", "server (receives)")):
        cpu = [f"{statistics.median(x['cpu'][h] for x in res[(p, k)]):.0f}" for k in KINDS]
        st = mem[h]
        md.append(f"| {SHORT[p]} | {h}, {role} | {' | '.join(cpu)} | {st['VmHWM']} | {st['VmRSS']} | {st['Threads']} |")
md.append("")
md.append("Drops on the udp hosts, summed over the rounds: flannel0's queue towards flanneld overflowing "
          "(tx_dropped: the kernel could not hand flanneld a packet) and the tunnel socket's receive "
          "buffer overflowing (UDP RcvbufErrors):")
md.append("")
md.append("| path | host | flannel0 tx_dropped: TCP 1 / TCP 4 / 64 B UDP | UDP RcvbufErrors: TCP 1 / TCP 4 / 64 B UDP "
          "| UDP SndbufErrors, whole run | socket rb / tb KiB (ss) | what flanneld logged at start |")
md.append("|---|---|---:|---:|---:|---:|---|")
for p in UDP_PATHS:
    for h in PATHS[p][1:3]:
        a, b = counters[h]
        per = {c: " / ".join(str(sum(x["drops"][h][c] for x in res[(p, k)])) for k in KINDS)
               for c in ("flannel0 tx_dropped", "RcvbufErrors")}
        md.append(f"| {SHORT[p]} | {h} | {per['flannel0 tx_dropped']} | {per['RcvbufErrors']} "
                  f"| {b['SndbufErrors'] - a['SndbufErrors']} | {sockbuf[h]} | {offload_line[h]} |")
md.append("")
md.append(f"The {UDP_LEN} B runs are bounded by iperf3's one sending thread (one datagram per system "
          "call; 'kpps sent' is what it managed): over vxlan, host-gw and the underlay the sending "
          "system call also carries each packet through both hosts' kernel paths to the receiving "
          "socket, over udp it ends at flannel0's queue and flanneld's threads take it from there.")
md.append("")
md.append("weft's udp socket asks for 4 MiB SO_RCVBUF/SO_SNDBUF (SO_*BUFFORCE; the kernel doubles it, "
          "as ss shows); upstream flannel keeps the kernel defaults. flannel0's txqueuelen is "
          f"{counters['u1'][0]['txqlen']} (not changed by weft).")
md.append("")
for n in notes:
    md.append(f"Note: {n}")
    md.append("")
md.append("Phase times: " + ", ".join(f"{k} {v:.0f} s" for k, v in phase_secs.items())
          + f"; total {time.monotonic() - t_start:.0f} s. Chart: {svg_path}; raw samples: {json_path}.")


# ---- chart ----------------------------------------------------------------------------------------
def chart():
    """Grouped horizontal bars: TCP Gbit/s (1 and 4 streams) on the left, 64 B UDP kpps on the right."""
    W, top, row, lab = 1000, 78, 58, 290
    pw = [380, 250]  # panel widths
    H = top + row * len(PATHS) + 56
    colors = {"tcp1": "#4e79a7", "tcp4": "#f28e2b", "pps": "#59a14f"}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">'
           'weft data plane, pod to pod across two namespace hosts</text>',
           f'<text x="{W / 2}" y="40" text-anchor="middle" fill="#555">'
           f'{escape(f"iperf3 medians of {ROUNDS} rounds, {stamp}, {os.cpu_count()} cores, load {load_before[0]} / {load_after[0]}; udp/vxlan 1 stream = {goal:.2f}")}'
           '</text>']

    def nice(v):
        """A round grid step giving about 4 to 8 lines up to v."""
        raw = v / 5
        e = 10 ** math.floor(math.log10(raw))
        return next(m * e for m in (1, 2, 2.5, 5, 10) if m * e >= raw)

    panels = [(lab, pw[0], "TCP throughput, Gbit/s", ("tcp1", "tcp4"), ("1 stream", "4 streams")),
              (lab + pw[0] + 60, pw[1], f"{UDP_LEN} B UDP received, kpps", ("pps",), ("packets/s",))]
    for x0, pw, title, keys, names in panels:
        vmax = max(M[p][k] for p in PATHS for k in keys) or 1
        step = nice(vmax)
        vtop = step * (int(vmax / step) + 1)
        sx = pw / vtop
        out.append(f'<text x="{x0 + pw / 2}" y="{top - 18}" text-anchor="middle" font-weight="bold">{escape(title)}</text>')
        tick = 0.0
        while tick <= vtop + 1e-9:
            x = x0 + tick * sx
            out.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{top + row * len(PATHS)}" stroke="#ddd"/>')
            out.append(f'<text x="{x:.1f}" y="{top + row * len(PATHS) + 14}" text-anchor="middle" fill="#555">{tick:g}</text>')
            tick += step
        bh = (row - 18) / len(keys)
        for i, p in enumerate(PATHS):
            y = top + i * row + 6
            for j, k in enumerate(keys):
                v = M[p][k]
                w = max(v * sx, 1)
                yy = y + j * bh
                out.append(f'<rect x="{x0}" y="{yy:.1f}" width="{w:.1f}" height="{bh - 2:.1f}" fill="{colors[k]}"/>')
                val = f"{v:.2f}" if k != "pps" else f"{v:.0f}"
                out.append(f'<text x="{x0 + w + 4:.1f}" y="{yy + bh / 2 + 3:.1f}" font-size="11">{val}</text>')
        # legend
        lx = x0
        for k, name in zip(keys, names):
            out.append(f'<rect x="{lx}" y="{H - 22}" width="12" height="12" fill="{colors[k]}"/>')
            out.append(f'<text x="{lx + 16}" y="{H - 12}">{escape(name)}</text>')
            lx += 110
    for i, p in enumerate(PATHS):
        y = top + i * row + row / 2
        label = PATHS[p][0]
        first, _, rest = label.partition(" (") if "(" in label else label.partition(", ")
        out.append(f'<text x="{lab - 10}" y="{y - 2:.1f}" text-anchor="end" font-weight="bold">{escape(first)}</text>')
        if rest:
            rest = rest.rstrip(")")
            out.append(f'<text x="{lab - 10}" y="{y + 13:.1f}" text-anchor="end" fill="#555" font-size="11">{escape(rest)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


os.makedirs(os.path.dirname(os.path.abspath(svg_path)), exist_ok=True)
with open(svg_path + ".tmp", "w") as f:
    f.write(chart())
os.replace(svg_path + ".tmp", svg_path)

text = "\n".join(md) + "\n"
sys.stdout.write(text)
os.makedirs(os.path.dirname(os.path.abspath(report_md)), exist_ok=True)
with open(report_md + ".tmp", "w") as f:
    f.write(text)
os.replace(report_md + ".tmp", report_md)
