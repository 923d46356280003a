#!/usr/bin/env python3
"""HTTPS against plain HTTP on the agent's main port: the cost of TLS on the dashboard endpoints.

    bench/tls/run.py [BUILD_DIR]      env: DURATION=8 WARMUP=2 CONNS="64 256"

Starts bb-devnode (spec profile, a block a second) and the real agent with all six plugins twice
in turn: once plain, once with `http.tls` (a throw-away self-signed RSA 2048 certificate made here
with the openssl command). For each dashboard endpoint and connection count, wrk (2 threads,
keep-alive: one TLS handshake per connection, then TLS 1.3 records) loads the agent, WARMUP
seconds unmeasured then DURATION seconds measured. Nothing is pinned; wrk, the agent and
bb-devnode share the machine's cores.

Target (issue 17): HTTPS req/s >= 0.8x plain HTTP's on each dashboard endpoint, zero errors.
The ceiling of this machine: nginx serving the agent's very bytes, plain and over TLS with the
same certificate, measured the same way in the same run (wrk's own TLS work shares the cores
with the server's, so no server keeps its plain figure over TLS here).
"""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bbbench as bb  # noqa: E402

ENDPOINTS = ["/theblock/network/metrics", "/theblock/markets/health",
             "/theblock/receipts?limit=100"]


def make_cert(d):
    bb.which_or_die("openssl", "openssl")
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def load(label, scheme, port, duration, warmup, conns_list, server_pid):
    """Each cell's wrk figures, plus the CPU per request (µs) of the server (with its child
    processes: nginx's workers) and of wrk over the measured seconds."""
    out = {}
    server = bb.ProcStat(server_pid)
    for path in ENDPOINTS:
        for conns in conns_list:
            url = f"{scheme}://127.0.0.1:{port}{path}"
            if warmup:
                bb.wrk(url, conns, warmup)
            cpu0 = server.tree_cpu_seconds()
            r = bb.wrk(url, conns, duration)
            n = max(r["requests"], 1)
            r["server_us"] = 1e6 * (server.tree_cpu_seconds() - cpu0) / n
            r["wrk_us"] = 1e6 * r["wrk_cpu_s"] / n
            out[(path, conns)] = r
            print(f"{label:13} {path:32} c={conns:3}: {r['rps']:9.0f} req/s  "
                  f"p50 {r['p50_us'] / 1000:.2f} ms  p99 {r['p99_us'] / 1000:.2f} ms  "
                  f"errors {r['errors']}  CPU per request: server {r['server_us']:.1f} µs, "
                  f"wrk {r['wrk_us']:.1f} µs", flush=True)
    return out


def measure(build, rpc, scheme, config, duration, warmup, conns_list, bodies=None):
    agent, port = bb.start_agent(build, rpc, config_yaml=config)
    if scheme == "http":
        bb.wait_for_data(port, ENDPOINTS, timeout=30)
        if bodies is not None:
            c = bb.Http(port)
            for p in ENDPOINTS:
                bodies[p] = c.get(p)[1]
            c.close()
    else:
        # bbbench's client is plain HTTP: wait until wrk over TLS gets answers instead.
        bb.wait_until(lambda: bb.wrk(f"https://127.0.0.1:{port}{ENDPOINTS[0]}", 2, 1)["requests"] > 0,
                      30, "the agent to answer over TLS", step=0.5)
    out = load(f"agent {scheme}", scheme, port, duration, warmup, conns_list, agent.pid)
    agent.stop()
    return out


def main():
    build = bb.build_dir(sys.argv)
    bb.which_or_die("wrk", "wrk")
    duration = int(os.environ.get("DURATION", "8"))
    warmup = int(os.environ.get("WARMUP", "2"))
    conns_list = [int(c) for c in os.environ.get("CONNS", "64 256").split()]
    d = tempfile.mkdtemp(prefix="bb-bench-tls-")
    cert, key = make_cert(d)

    node, rpc = bb.start_devnode(build, "spec", 1000)
    bodies = {}
    plain = measure(build, rpc, "http", None, duration, warmup, conns_list, bodies)
    tls_config = f"http:\n  tls: {{cert_file: \"{cert}\", key_file: \"{key}\"}}\n"
    tls = measure(build, rpc, "https", tls_config, duration, warmup, conns_list)
    nginx, nginx_port, nginx_tls_port = bb.start_nginx(bodies, tls=(cert, key))
    n_plain = load("nginx http", "http", nginx_port, duration, warmup, conns_list, nginx.pid)
    n_tls = load("nginx https", "https", nginx_tls_port, duration, warmup, conns_list, nginx.pid)
    nginx.stop()

    rows, raw, all_met = [], [], True
    for (path, conns), p in plain.items():
        t = tls[(path, conns)]
        np_, nt = n_plain[(path, conns)], n_tls[(path, conns)]
        ratio = t["rps"] / p["rps"] if p["rps"] else float("nan")
        n_ratio = nt["rps"] / np_["rps"] if np_["rps"] else float("nan")
        met = ratio >= 0.8 and t["errors"] == 0 and p["errors"] == 0
        all_met &= met
        # Both programs share the cores, so req/s is about cores / (server + wrk) CPU per request.
        # The ceiling keeps wrk's TLS cost and puts the agent's at zero; the agent's own ratio is
        # what a remote client would see of the agent's capacity (its CPU per request only).
        plain_sum = p["server_us"] + p["wrk_us"]
        ceiling = plain_sum / (p["server_us"] + t["wrk_us"]) if plain_sum else float("nan")
        own = p["server_us"] / t["server_us"] if t["server_us"] else float("nan")
        rows.append([f"`{path}`", conns, f"{p['rps']:.0f}", f"{t['rps']:.0f}", f"**{ratio:.2f}**",
                     f"{p['p99_us'] / 1000:.2f}", f"{t['p99_us'] / 1000:.2f}",
                     f"{p['errors']} / {t['errors']}",
                     f"{p['server_us']:.1f} / {t['server_us']:.1f}",
                     f"{p['wrk_us']:.1f} / {t['wrk_us']:.1f}", f"{ceiling:.2f}", f"{own:.2f}",
                     f"{np_['rps']:.0f}", f"{nt['rps']:.0f}", f"{n_ratio:.2f}", bb.verdict(met)])
        raw.append({"path": path, "connections": conns, "http": p, "https": t,
                    "nginx_http": np_, "nginx_https": nt})
    notes = (f"wrk -t2 --timeout 5s, {warmup} s warm-up then {duration} s measured per cell; the "
             "plain agent and the TLS agent measured one after the other against the same "
             "bb-devnode, then nginx serving the same bytes plain and over TLS (same "
             "certificate). Keep-alive connections: one handshake each, then records. Target: "
             f"HTTPS req/s >= 0.8x plain, zero errors: **{bb.verdict(all_met)}**.")
    notes += (" CPU per request: utime + stime of the agent (/proc) and of wrk (its rusage) over "
              "the measured seconds, divided by the requests served. *ceiling*: the req/s ratio "
              "if TLS cost the agent nothing and wrk what it costs it here, (agent + wrk plain) / "
              "(agent plain + wrk TLS). *agent's own*: agent CPU per request plain / TLS, the "
              "ratio of what the agent can serve when its clients are elsewhere.")
    headers = ["endpoint", "conns", "http req/s", "https req/s", "ratio", "http p99 ms",
               "https p99 ms", "errors http / https", "agent µs/req http / https",
               "wrk µs/req http / https", "ceiling", "agent's own", "nginx http req/s",
               "nginx https req/s", "nginx ratio", "target"]
    bb.write_results("tls", "HTTPS against plain HTTP on the main port", [bb.table(headers, rows), notes],
                     raw, "bench/tls/run.py [BUILD_DIR]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
