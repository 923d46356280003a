#!/usr/bin/env python3
"""REST throughput and latency of the agent against nginx serving the very same bytes.

    bench/rest/run.py [BUILD_DIR]      env: DURATION=10 WARMUP=2 CONNS="64 256"

Starts bb-devnode (spec profile, a block a second) and the real agent with all six plugins, waits
until every endpoint has data, fetches each endpoint's body from the agent and writes it into the
root of an nginx started here (its own temporary config: worker_processes auto, keep-alive,
access_log off, 127.0.0.1 on a free port). Then, for each endpoint and connection count, wrk
(2 threads) loads the agent and nginx in turn, WARMUP seconds unmeasured then DURATION seconds
measured. Nothing is pinned: wrk, the agent (or nginx) and bb-devnode share the machine's cores,
which is the deployment case (the agent runs beside the node) and costs both servers alike.

Targets (issue 10): on each dashboard endpoint, at 64 and 256 connections, req/s >= 0.7x nginx's,
p99 <= 2x nginx's, zero errors. /metrics is measured the same way and reported, but it is a
Prometheus scrape (one request every few seconds), not a dashboard endpoint.
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bbbench as bb  # noqa: E402

ENDPOINTS = [
    ("/theblock/network/metrics", True),
    ("/theblock/markets/health", True),
    ("/theblock/receipts?limit=100", True),
    ("/metrics", False),
]

def fmt_errors(r):
    kinds = ", ".join(f"{k} {r[k]}" for k in ("connect", "read", "write", "status", "timeout")
                      if r[k])
    return f"{r['errors']} ({kinds})" if kinds else "0"


def fmt_ms(us):
    return f"{us / 1000:.2f}"


def main():
    build = bb.build_dir(sys.argv)
    bb.which_or_die("wrk", "wrk")
    duration = int(os.environ.get("DURATION", "10"))
    warmup = int(os.environ.get("WARMUP", "2"))
    conns_list = [int(c) for c in os.environ.get("CONNS", "64 256").split()]

    node, rpc = bb.start_devnode(build, "spec", 1000)
    agent, port = bb.start_agent(build, rpc)
    paths = [p for p, _ in ENDPOINTS]
    bb.wait_for_data(port, paths, timeout=30)
    c = bb.Http(port)
    bodies = {}
    for p in paths:
        status, body = c.get(p)
        if status != 200:
            bb.die(f"the agent answered {status} to {p}")
        bodies[p] = body
    c.close()
    nginx, nginx_port, _ = bb.start_nginx(bodies)
    stat = bb.ProcStat(agent.pid)

    raw = []
    rows = []
    all_met = True
    for path, dashboard in ENDPOINTS:
        for conns in conns_list:
            res = {}
            for server, p in (("agent", port), ("nginx", nginx_port)):
                url = f"http://127.0.0.1:{p}{path}"
                if warmup:
                    bb.wrk(url, conns, warmup)
                cpu0, t0 = stat.cpu_seconds(), time.monotonic()
                r = bb.wrk(url, conns, duration)
                if server == "agent":
                    r["agent_cpu_pct"] = 100 * (stat.cpu_seconds() - cpu0) / (time.monotonic() - t0)
                    r["agent_rss_kib"] = stat.rss_kib()
                r["responses_probe"], r["starved"] = bb.starvation_probe(p, path, conns)
                res[server] = r
                print(f"{server:5} {path:32} c={conns:3}: {r['rps']:9.0f} req/s  "
                      f"p50 {fmt_ms(r['p50_us'])} ms  p99 {fmt_ms(r['p99_us'])} ms  "
                      f"errors {r['errors']}  never answered {r['starved']}/{conns}", flush=True)
            a, n = res["agent"], res["nginx"]
            ratio = a["rps"] / n["rps"] if n["rps"] else float("nan")
            p99_ratio = a["p99_us"] / n["p99_us"] if n["p99_us"] else float("nan")
            met = ratio >= 0.7 and p99_ratio <= 2.0 and a["errors"] == 0 and a["starved"] == 0
            if dashboard:
                all_met &= met
            rows.append([f"`{path}`", len(bodies[path]), conns, f"{a['rps']:.0f}", f"{n['rps']:.0f}",
                         f"**{ratio:.2f}**", fmt_ms(a["p50_us"]), fmt_ms(a["p99_us"]),
                         fmt_ms(n["p50_us"]), fmt_ms(n["p99_us"]), f"{p99_ratio:.2f}",
                         f"{fmt_errors(a)} / {fmt_errors(n)}",
                         f"**{a['starved']}** / {n['starved']}", f"{a['agent_cpu_pct']:.0f}%",
                         (bb.verdict(met) if dashboard else "(not a target)")])
            raw.append({"path": path, "connections": conns, "body_bytes": len(bodies[path]),
                        "agent": a, "nginx": n})

    notes = (f"wrk -t2 --timeout 5s, {warmup} s warm-up then {duration} s measured per cell; agent "
             "and nginx measured in turn on the same bytes. Latency is wrk's, over completed "
             "requests only; errors = connect + read + write + non-2xx + timeouts (agent / "
             "nginx). Never answered: after each wrk run, a probe opens as many keep-alive "
             "connections at once for 3 s and counts those that got no answer at all (agent / "
             "nginx); wrk does not report those, and its req/s and latency then describe only the "
             "connections that were served. Agent CPU is % of one core (200% = both). Nothing pinned: wrk, the server "
             "and bb-devnode share the 2 cores.\n\nTargets: req/s >= 0.7x nginx, p99 <= 2x "
             "nginx, zero errors (wrk errors and never-answered connections), on the three dashboard endpoints at 64 and 256 connections: "
             f"**{bb.verdict(all_met)}**. Agent RSS at the end: {stat.rss_kib() / 1024:.1f} MiB "
             f"(peak {stat.hwm_kib() / 1024:.1f} MiB), {stat.threads()} threads.")
    headers = ["endpoint", "bytes", "conns", "agent req/s", "nginx req/s", "ratio",
               "agent p50 ms", "agent p99 ms", "nginx p50 ms", "nginx p99 ms", "p99 ratio",
               "wrk errors", "never answered", "agent CPU", "target"]
    bb.write_results("rest", "REST throughput and latency: agent vs nginx (same bytes)",
                     [bb.table(headers, rows), notes], raw, "bench/rest/run.py [BUILD_DIR]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
