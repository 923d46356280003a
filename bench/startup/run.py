#!/usr/bin/env python3
"""Start-up: from exec of the agent to its first successful GET /health.

    bench/startup/run.py [BUILD_DIR]      env: RUNS=20

bb-devnode (spec profile) runs throughout. Each run picks a free port, execs the agent (all six
plugins, default config) on it and tries GET /health every millisecond (a fresh connection each
try) until it answers 200; then it waits for the first data (/theblock/network/metrics 200, i.e.
the network plugin's first collection) and stops the agent with SIGTERM, timing the exit too.
Target (issue 10): exec -> first 200 from /health under 200 ms (median and max reported).
"""

import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bbbench as bb  # noqa: E402


def try_get(port, path):
    """HTTP status of one GET on a fresh connection, or None when nothing answers yet."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            head = s.recv(64)
            if head.startswith(b"HTTP/1.1 "):
                return int(head[9:12])
    except OSError:
        return None
    return None


def one_run(build, rpc):
    home = tempfile.mkdtemp(prefix="bb-bench-home-")
    port = bb.free_port()
    env = bb.agent_env(home, rpc, http_port=port)
    argv = [os.path.join(build, "bin/blockbuster-agent")]
    t0 = time.monotonic()
    err_path = os.path.join(home, "agent.err")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=open(err_path, "w"),
                            stdin=subprocess.DEVNULL)
    try:
        health = data = None
        deadline = t0 + 10
        while time.monotonic() < deadline and proc.poll() is None:
            if try_get(port, "/health") == 200:
                health = time.monotonic() - t0
                break
            time.sleep(0.001)
        while health is not None and time.monotonic() < deadline and proc.poll() is None:
            if try_get(port, "/theblock/network/metrics") == 200:
                data = time.monotonic() - t0
                break
            time.sleep(0.002)
        if health is None:
            err = open(err_path).read()
            if "cannot listen" in err:
                return None  # another process took the free port first: try again
            bb.die(f"the agent (exit {proc.poll()}) never answered GET /health on port {port}:\n"
                   + err[-2000:])
        ts = time.monotonic()
        proc.terminate()
        proc.wait(timeout=10)
        stop = time.monotonic() - ts
        return health * 1000, (data * 1000 if data else None), stop * 1000, proc.returncode
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main():
    build = bb.build_dir(sys.argv)
    runs = int(os.environ.get("RUNS", "20"))
    node, rpc = bb.start_devnode(build, "spec", 1000)
    results = []
    for i in range(runs):
        r = None
        for _ in range(3):
            r = r or one_run(build, rpc)
        if r is None:
            bb.die("three free ports in a row were taken before the agent could bind them")
        results.append(r)
        print(f"run {i + 1}/{runs}: /health after {r[0]:.1f} ms, first data after "
              f"{r[1] if r[1] is None else round(r[1], 1)} ms, stopped in {r[2]:.1f} ms (exit {r[3]})",
              flush=True)
    health = [r[0] for r in results]
    data = [r[1] for r in results if r[1] is not None]
    stop = [r[2] for r in results]
    bad_exits = sum(1 for r in results if r[3] != 0)
    rows = [["exec -> first 200 from GET /health", runs, f"{bb.percentile(health, 50):.1f}",
             f"{max(health):.1f}", "< 200 ms", bb.verdict(max(health) < 200)],
            ["exec -> first data (/theblock/network/metrics 200)", len(data),
             f"{bb.percentile(data, 50):.1f}" if data else "-", f"{max(data):.1f}" if data else "-",
             "", ""],
            ["SIGTERM -> exit", runs, f"{bb.percentile(stop, 50):.1f}", f"{max(stop):.1f}", "",
             f"{bad_exits} non-zero exits"]]
    notes = ("A fresh HOME each run (no receipts database yet: the receipts plugin creates its "
             "SQLite file during start-up). GET /health is tried every ~1 ms on a new connection; "
             "the agent binds and starts its HTTP server only after loading its plugins "
             "(agent/main.cc), so connections are refused until then.")
    bb.write_results("startup", "Start-up time", [bb.table(
        ["measure", "runs", "median ms", "max ms", "target", "verdict"], rows), notes],
        {"runs": results}, "bench/startup/run.py [BUILD_DIR]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
