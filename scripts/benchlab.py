"""What bench-flanneld.py and bench-overlay.py share: the lab their measurements run in, and
the processes they start inside it.

The lab itself (an underlay namespace with bridge ul0 and etcd at 192.168.77.254:2379, "hosts"
plugged into ul0 at 192.168.77.N/24, pods behind a host's cni0) is tests/lab, the one the tests
and the demo use: benchlab.sh makes the underlay and etcd with `weft-lab up` and removes
everything with `weft-lab down`; add_host and add_pod here call `weft-lab host` and `weft-lab
pod`. Every namespace is named PREFIX*; every process is started inside one of them (setns
between fork and exec, so that what is timed is fork+exec only) and stopped by stop_all().

A script calls configure(TAG, PREFIX, TMP) first and then uses the names below as its own
(`from benchlab import ...`); the shared state (procs, hosts, flanneld) is one object each.
"""
import base64
import contextlib
import ctypes
import http.client
import json
import os
import signal
import subprocess
import sys
import time

UL_NET = "192.168.77"
ETCD_IP = f"{UL_NET}.254"
ENDPOINT = f"http://{ETCD_IP}:2379"
CLONE_NEWNET = 0x40000000
CLK_TCK = os.sysconf("SC_CLK_TCK")
libc = ctypes.CDLL(None, use_errno=True)

_lab = {"tag": "bench", "prefix": "", "tmp": ""}


def configure(tag, prefix, tmp):
    """TAG starts every log line and error; PREFIX every namespace name; TMP is the lab's
    directory. The lab command and its state file come from benchlab.sh (WEFT_LAB,
    WEFT_LAB_STATE)."""
    _lab.update(tag=tag, prefix=prefix, tmp=tmp, bin=os.environ.get("WEFT_LAB", ""),
                state=os.environ.get("WEFT_LAB_STATE", ""))


class BenchError(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise BenchError(msg)


def log(msg):
    print(f"{_lab['tag']}: {msg}", file=sys.stderr, flush=True)


def env_int(name, default):
    v = os.environ.get(name, str(default))
    if not v.isdigit() or int(v) < 1:
        print(f"{_lab['tag']}: {name} must be a positive integer", file=sys.stderr)
        sys.exit(2)
    return int(v)


def ns(name):
    return f"{_lab['prefix']}{name}"


def nspath(name):
    return f"/run/netns/{ns(name)}"


# ---- processes ------------------------------------------------------------------------------------
procs = []  # every process started here, stopped in reverse order at the end


def open_ns(name):
    return os.open(nspath(name), os.O_RDONLY | os.O_CLOEXEC)


def setns_fd(fd):
    if libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


def enter(name):
    """Moves this process (its one thread: call before starting any other) into `name`."""
    fd = open_ns(name)
    try:
        setns_fd(fd)
    finally:
        os.close(fd)


def spawn(netns, argv, log_path=None, **kw):
    """Starts argv inside namespace `netns` (setns between fork and exec, so what is timed is
    fork+exec only, not `ip netns exec`'s mount juggling). The Popen's `started` is the
    monotonic time just before the fork."""
    fd = open_ns(netns)
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=kw.pop("stdout", out),
                             stderr=out, preexec_fn=lambda: setns_fd(fd), **kw)
    finally:
        os.close(fd)
        if log_path:
            out.close()
    p.started = t0
    procs.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=10):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in procs:
        procs.remove(p)
    return p.returncode


def stop_all():
    for p in reversed(list(procs)):
        try:
            stop(p, timeout=5)
        except Exception:  # best effort; the .sh wrapper kills whatever is left in our netns
            pass


@contextlib.contextmanager
def session():
    """The measurements: SIGTERM counts as an interrupt; a BenchError or an interrupt stops every
    process started here and exits (1 or 130); otherwise they are stopped at the end."""
    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    except BenchError as e:
        print(f"{_lab['tag']}: FAILED: {e}", file=sys.stderr)
        stop_all()
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{_lab['tag']}: interrupted", file=sys.stderr)
        stop_all()
        sys.exit(130)
    stop_all()


def run(argv, ok=True, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    if ok and r.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def ip(*args, ok=True):
    return run(["ip", *args], ok=ok)


def ip_batch(netns, lines):
    argv = ["ip"] + (["-n", ns(netns)] if netns else []) + ["-batch", "-"]
    r = subprocess.run(argv, input="".join(l + "\n" for l in lines), capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed: {r.stderr.strip()}\n  batch: {lines}")


def nsexec(netns, *argv, ok=True, **kw):
    return run(["ip", "netns", "exec", ns(netns), *argv], ok=ok, **kw)


def tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"


def wait_until(what, limit, f, every=0.05):
    t = time.monotonic()
    while True:
        v = f()
        if v:
            return v
        check(time.monotonic() - t < limit, f"timed out after {limit} s waiting for {what}")
        time.sleep(every)


# ---- etcd (its HTTP/JSON gateway; this process lives in the underlay namespace) ------------------
class Etcd:
    def __init__(self):
        self.conn = None

    def _conn(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(ETCD_IP, 2379, timeout=10)
        return self.conn

    def call(self, path, body):
        data = json.dumps(body)
        for attempt in (0, 1):  # one reconnect if the keep-alive connection was closed
            try:
                c = self._conn()
                c.request("POST", path, data, {"Content-Type": "application/json"})
                r = c.getresponse()
                out = r.read()
                check(r.status == 200, f"etcd {path}: HTTP {r.status}: {out[:300]!r}")
                return json.loads(out)
            except (http.client.HTTPException, ConnectionError, OSError):
                self.conn = None
                if attempt:
                    raise

    @staticmethod
    def b64(s):
        return base64.b64encode(s.encode()).decode()

    def put(self, key, value, lease=None):
        body = {"key": self.b64(key), "value": self.b64(value)}
        if lease:
            body["lease"] = lease
        self.call("/v3/kv/put", body)

    def delete_prefix(self, p):
        end = p[:-1] + chr(ord(p[-1]) + 1)
        self.call("/v3/kv/deleterange", {"key": self.b64(p), "range_end": self.b64(end)})

    def count_prefix(self, p):
        end = p[:-1] + chr(ord(p[-1]) + 1)
        r = self.call("/v3/kv/range", {"key": self.b64(p), "range_end": self.b64(end), "count_only": True})
        return int(r.get("count", 0))

    def grant(self, ttl):
        return self.call("/v3/lease/grant", {"TTL": ttl})["ID"]

    def healthy(self):
        try:
            c = http.client.HTTPConnection(ETCD_IP, 2379, timeout=1)
            c.request("GET", "/health")
            r = c.getresponse()
            ok = r.status == 200 and b"true" in r.read()
            c.close()
            return ok
        except OSError:
            return False


etcd = Etcd()


# ---- topology -------------------------------------------------------------------------------------
hosts = {}  # name -> dict(ip=..., n=..., dir=..., log=... once flanneld ran there)


def lab(*args):
    """`weft-lab CMD STATE ARGS...`: what it made, as JSON."""
    cmd, rest = args[0], [str(a) for a in args[1:]]
    return json.loads(run([_lab["bin"], cmd, _lab["state"], *rest]).stdout)


def start_lab():
    """Moves this process into the underlay that `weft-lab up` made (call while single-threaded)
    and checks etcd answers there."""
    enter("ul")
    wait_until("etcd to answer", 30, etcd.healthy, every=0.1)


def add_host(name, n, port=None):
    """Host NAME at 192.168.77.N, plugged into ul0 by port PORT (default uN); a host made again
    under a name starts without the subnet.env its predecessor left."""
    h = lab("host", name, n, *(["--port", port] if port else []))
    hosts[name] = {"ip": h["ip"], "n": n, "dir": h["dir"]}


def add_pod(host, gw_cidr, mtu):
    """Pod namespace HOST-p2 behind cni0 (gw_cidr, e.g. 10.64.3.1/24) with address .2; returns it."""
    return lab("pod", host, 2, gw_cidr, mtu)["ip"]


def subnet_env_path(host):
    return os.path.join(hosts[host]["dir"], "subnet.env")


def subnet_env(host):
    with open(subnet_env_path(host)) as f:
        return dict(l.split("=", 1) for l in f.read().split())


def ping_ok(src, dst, limit=15):
    def once():
        return nsexec(src, "ping", "-c", "1", "-W", "1", dst, ok=False).returncode == 0
    try:
        wait_until(f"{ns(src)} to reach {dst}", limit, once, every=0.2)
    except BenchError as e:
        raise BenchError(f"{e}: no connectivity")


# ---- flanneld -------------------------------------------------------------------------------------
flanneld = {}  # host -> Popen


def alive(host):
    p = flanneld[host]
    check(p.poll() is None, f"flanneld in {ns(host)} died (exit {p.returncode}):\n{tail(hosts[host]['log'])}")


def wait_subnet_env(host, limit=60):
    """Until flanneld in HOST (started without waiting) has written subnet.env; fails if it died."""
    wait_until(f"subnet.env in {ns(host)}", limit,
               lambda: (alive(host), os.path.exists(subnet_env_path(host)))[1])


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for l in f:
            k, _, v = l.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])
    return out


def cpu_secs(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
