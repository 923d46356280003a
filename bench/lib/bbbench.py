"""Shared helpers of the Block Buster benchmarks (bench/*/run.py). Python 3 standard library only.

Every benchmark starts its own bb-devnode and blockbuster-agent on 127.0.0.1 with port 0 and a
temporary HOME, bounds every wait in time, stops what it started (by pid) on exit, prints a small
Markdown table and writes it to bench/results/<name>.md (the committed summary) and the raw
figures to bench/results/raw/<name>.json (git-ignored).
"""

import atexit
import datetime
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join(SRC, "bench", "results")
PLUGINS = ["network", "compute", "storage", "energy", "ads", "receipts"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

_children = []


def die(msg):
    print(f"bench: {msg}", file=sys.stderr)
    sys.exit(1)


def build_dir(argv):
    """The build directory: argv[1], else $BB_BUILD_DIR, else <src>/build-bench."""
    d = argv[1] if len(argv) > 1 else os.environ.get("BB_BUILD_DIR", os.path.join(SRC, "build-bench"))
    d = os.path.abspath(d)
    need = ["bin/blockbuster-agent", "bin/bb-devnode"] + [
        f"lib/blockbuster/plugins/bb_{p}.so" for p in PLUGINS]
    missing = [n for n in need if not os.path.exists(os.path.join(d, n))]
    if missing:
        die(f"{d} lacks {', '.join(missing)}. Build it first:\n  cmake -S {SRC} -B {d} "
            "-DCMAKE_BUILD_TYPE=Release -DBB_BUILD_BENCH=ON\n  cmake --build "
            f"{d} -j2 --target blockbuster-agent bb-devnode " +
            " ".join(f"bb_{p}" for p in PLUGINS))
    cache = os.path.join(d, "CMakeCache.txt")
    if os.path.exists(cache):
        m = re.search(r"^CMAKE_BUILD_TYPE:STRING=(.*)$", open(cache).read(), re.M)
        if m and m.group(1) not in ("Release", "RelWithDebInfo"):
            print(f"bench: warning: {d} is a {m.group(1) or 'default'} build; figures of a "
                  "Release build are the ones to compare", file=sys.stderr)
    return d


def machine():
    """The machine the figures come from."""
    model = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {"nproc": os.cpu_count(), "cpu": model, "mem_gib": round(mem_kib / 1048576, 1),
            "kernel": platform.release(), "load1": round(os.getloadavg()[0], 2)}


def git_commit():
    try:
        return subprocess.run(["git", "-C", SRC, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class Child:
    """A process this benchmark started; stopped (SIGTERM, then SIGKILL) by pid on exit."""

    def __init__(self, name, argv, env=None, workdir=None):
        self.name = name
        self.workdir = workdir or tempfile.mkdtemp(prefix=f"bb-bench-{name}-")
        self.out_path = os.path.join(self.workdir, f"{name}.out")
        self.err_path = os.path.join(self.workdir, f"{name}.err")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, env=env, stdout=open(self.out_path, "w"),
                                     stderr=open(self.err_path, "w"), stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        _children.append(self)

    def wait_line(self, pattern, timeout=15.0):
        """Waits for a line of stdout matching `pattern`; returns the match."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            with open(self.out_path) as f:
                for line in f:
                    m = rx.search(line)
                    if m:
                        return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.005)
        err = open(self.err_path).read()[-2000:]
        die(f"{self.name} did not print /{pattern}/ within {timeout} s "
            f"(exit {self.proc.poll()}); stderr:\n{err}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _cleanup():
    for c in reversed(_children):
        try:
            c.stop()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def start_devnode(build, profile="spec", block_ms=1000, extra=()):
    """Starts bb-devnode on a free loopback port. Returns (child, "127.0.0.1:PORT")."""
    node = Child("devnode", [os.path.join(build, "bin/bb-devnode"), "--listen", "127.0.0.1:0",
                             "--profile", profile, "--block-ms", str(block_ms), *extra])
    m = node.wait_line(r"bb-devnode ready rpc=(\S+)")
    return node, m.group(1)


def agent_env(home, rpc, http_port=0, extra=None):
    env = dict(os.environ)
    env.update({"HOME": home, "THEBLOCK_RPC_URL": f"http://{rpc}", "BLOCK_BUSTER_HTTP_HOST": "127.0.0.1",
                "BLOCK_BUSTER_HTTP_PORT": str(http_port), "BLOCK_BUSTER_WEB_PORT": "-1",
                "BLOCK_BUSTER_WS_HOST": "127.0.0.1", "BLOCK_BUSTER_WS_PORT": "0",
                "BLOCK_BUSTER_FEATURE_WS_PORT": "0", "BLOCK_BUSTER_LOG_LEVEL": "warn"})
    env.update(extra or {})
    return env


def start_agent(build, rpc, config_yaml=None, extra_env=None, home=None):
    """Starts the real agent (all plugins of the build) against `rpc`, with $HOME `home` (a new
    temporary directory when None). Returns (child, port)."""
    home = home or tempfile.mkdtemp(prefix="bb-bench-home-")
    argv = [os.path.join(build, "bin/blockbuster-agent")]
    if config_yaml is not None:
        path = os.path.join(home, "agent.yaml")
        with open(path, "w") as f:
            f.write(config_yaml)
        argv += ["--config", path]
    agent = Child("agent", argv, env=agent_env(home, rpc, extra=extra_env), workdir=home)
    m = agent.wait_line(r"blockbuster-agent ready http=[^ ]*:(\d+)")
    return agent, int(m.group(1))


class Http:
    """A keep-alive HTTP/1.1 client on one loopback port."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None

    def request(self, method, path, body=None):
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                headers = {"Content-Type": "application/json"} if body is not None else {}
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def get(self, path):
        return self.request("GET", path)

    def get_json(self, path):
        status, body = self.get(path)
        return status, (json.loads(body) if body else None)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def wait_until(cond, timeout, what, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except (OSError, http.client.HTTPException, ValueError):
            pass
        time.sleep(step)
    die(f"timed out after {timeout} s waiting for {what}")


def wait_for_data(port, paths, timeout=20.0):
    """Waits until every path answers 200 (every plugin it needs has collected once)."""
    c = Http(port)
    wait_until(lambda: all(c.get(p)[0] == 200 for p in paths), timeout,
               f"the agent to serve {', '.join(paths)}")
    c.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ProcStat:
    """RSS and CPU time of one process from /proc."""

    def __init__(self, pid):
        self.pid = pid

    def rss_kib(self):
        return self._status("VmRSS")

    def hwm_kib(self):
        return self._status("VmHWM")

    def threads(self):
        return self._status("Threads")

    def cpu_seconds(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime

    def tree_cpu_seconds(self):
        """cpu_seconds() of the process and of its children (nginx's workers), living ones."""
        total = self.cpu_seconds()
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            kids = []
        for k in kids:
            try:
                total += ProcStat(k).cpu_seconds()
            except OSError:
                pass
        return total

    def rss_split_kib(self):
        """(RssAnon, RssFile, RssShmem) from /proc/PID/status."""
        return self._status("RssAnon"), self._status("RssFile"), self._status("RssShmem")

    def pss_kib(self):
        with open(f"/proc/{self.pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
        return 0

    def rss_by_mapping(self):
        """{mapping name: [RSS KiB, private dirty KiB]} from /proc/PID/smaps (anonymous maps
        as "[anon]")."""
        out = {}
        name = None
        with open(f"/proc/{self.pid}/smaps") as f:
            for line in f:
                parts = line.split()
                if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                    name = parts[5] if len(parts) > 5 else "[anon]"
                    name = os.path.basename(name) if name.startswith("/") else name
                    out.setdefault(name, [0, 0])
                elif parts and parts[0] == "Rss:":
                    out[name][0] += int(parts[1])
                elif parts and parts[0] == "Private_Dirty:":
                    out[name][1] += int(parts[1])
        return out

    def _status(self, key):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0


WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
"""


def wrk(url, connections, seconds, threads=2, timeout_s=5, lua_requests=""):
    """Runs wrk; returns its figures (latency of completed requests only, as wrk measures).
    `lua_requests`: Lua code put before the reporting, e.g. a request() that varies the path."""
    lua = os.path.join(tempfile.gettempdir(),
                       f"bb-bench-wrk-{os.getpid()}-{abs(hash(lua_requests))}.lua")
    with open(lua, "w") as f:
        f.write(lua_requests + WRK_LUA)
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
            "--timeout", f"{timeout_s}s", "-s", lua, url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = re.search(r"WRKJSON (\{.*\})", r.stdout)
    if not m:
        die(f"wrk gave no result (exit {r.returncode}): {r.stdout}\n{r.stderr}")
    d = json.loads(m.group(1))
    d["rps"] = d["requests"] / (d["duration_us"] / 1e6) if d["duration_us"] else 0.0
    d["errors"] = d["connect"] + d["read"] + d["write"] + d["status"] + d["timeout"]
    # wrk's own CPU (user + system): right when it is the only child reaped meanwhile (not for
    # wrk runs in parallel threads).
    d["wrk_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return d


def starvation_probe(port, path, connections, seconds=3.0):
    """Opens `connections` keep-alive connections at once, each sending its next request as soon
    as the last is answered, for `seconds`. Returns (responses, connections never answered).

    wrk reports only completed requests and does not flag a connection that the server never
    answers (no timeout is counted for it), so a server that serves only some of its
    connections looks healthy in wrk's figures; this probe counts them.
    """
    import asyncio

    async def client(counts, i, end):
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2.0)
        except (OSError, asyncio.TimeoutError):
            return
        req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        try:
            while time.monotonic() < end:
                w.write(req)
                await w.drain()
                head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"),
                                              max(0.01, end - time.monotonic()))
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await r.readexactly(length)
                counts[i] += 1
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            w.close()

    async def run():
        counts = [0] * connections
        end = time.monotonic() + seconds
        await asyncio.gather(*(client(counts, i, end) for i in range(connections)))
        return sum(counts), sum(1 for c in counts if c == 0)

    return asyncio.run(run())


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def write_results(name, title, sections, raw, command):
    """Prints and writes bench/results/<name>.md (summary) and raw/<name>.json (bulky)."""
    m = machine()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = (f"# {title}\n\n{stamp}, commit {git_commit()}; {m['nproc']} cores ({m['cpu']}), "
            f"{m['mem_gib']} GiB, Linux {m['kernel']}, load average {m['load1']} at the end.\n"
            f"Reproduce: `{command}`\n")
    text = head + "\n" + "\n\n".join(sections) + "\n"
    print("\n" + text)
    os.makedirs(os.path.join(RESULTS, "raw"), exist_ok=True)
    with open(os.path.join(RESULTS, f"{name}.md"), "w") as f:
        f.write(text)
    with open(os.path.join(RESULTS, "raw", f"{name}.json"), "w") as f:
        json.dump({"machine": m, "time": stamp, "commit": git_commit(), "data": raw}, f, indent=1)


NGINX_CONF = """worker_processes auto;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
daemon off;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  default_type application/json;
  sendfile on;
  tcp_nodelay on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  client_body_temp_path {dir}/tmp;
  server {{
    listen 127.0.0.1:{port} backlog=1024;
    root {dir}/root;
    location / {{ }}
  }}
{tls_server}}}
"""

NGINX_TLS_SERVER = """  server {{
    listen 127.0.0.1:{port} ssl backlog=1024;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    root {dir}/root;
    location / {{ }}
  }}
"""


def start_nginx(bodies, tls=None):
    """nginx serving each body at its endpoint's path (the query string is ignored); with
    tls=(cert_file, key_file), also over HTTPS on a second port. Returns (child, port, tls_port
    or None)."""
    which_or_die("nginx", "nginx-light")
    d = tempfile.mkdtemp(prefix="bb-bench-nginx-")
    os.chmod(d, 0o755)  # workers run as an unprivileged user when started as root
    os.makedirs(os.path.join(d, "tmp"))
    for path, body in bodies.items():
        f = os.path.join(d, "root", path.split("?")[0].lstrip("/"))
        os.makedirs(os.path.dirname(f), exist_ok=True)
        with open(f, "wb") as out:
            out.write(body)
    for root, dirs, files in os.walk(d):
        for n in dirs:
            os.chmod(os.path.join(root, n), 0o755)
        for n in files:
            os.chmod(os.path.join(root, n), 0o644)
    port = free_port()
    tls_port = free_port() if tls else None
    tls_server = (NGINX_TLS_SERVER.format(dir=d, port=tls_port, cert=tls[0], key=tls[1])
                  if tls else "")
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=d, port=port, tls_server=tls_server))
    child = Child("nginx", ["nginx", "-c", conf, "-p", d], workdir=d)
    c = Http(port)
    first = next(iter(bodies))
    wait_until(lambda: c.get(first)[0] == 200, 10, "nginx to serve its files")
    for path, body in bodies.items():
        status, got = c.get(path)
        if status != 200 or got != body:
            die(f"nginx does not serve the agent's bytes for {path} (HTTP {status})")
    c.close()
    return child, port, tls_port


def verdict(ok):
    return "met" if ok else "NOT met"


def which_or_die(tool, package):
    if not shutil.which(tool):
        die(f"{tool} not found: apt-get install {package}")
