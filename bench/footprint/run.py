#!/usr/bin/env python3
"""Memory and CPU of the agent, idle and under REST load.

    bench/footprint/run.py [BUILD_DIR]      env: IDLE_SECONDS=30 LOAD_SECONDS=20

The real agent with all six plugins at a 2 s interval polls bb-devnode (spec profile, a block a
second). Idle: after every plugin has collected once, RSS (VmRSS) and CPU time (utime + stime)
are sampled every second for IDLE_SECONDS. Load: four wrk processes at once, one per endpoint of
bench/rest (64 connections each, 256 in all) for LOAD_SECONDS, sampling every 0.5 s.
Targets (issue 10): idle RSS < 16 MiB; under load < 64 MiB. The idle figure is with the default
history window full (issue 18): the agent starts with a history file of 1 h at 2 s (1 800 rows of
the 33 series it records), as after an hour of running; HISTORY_FULL=0 starts it with none.
"""

import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bbbench as bb  # noqa: E402

PATHS = ["/theblock/network/metrics", "/theblock/markets/health", "/theblock/receipts?limit=100",
         "/metrics"]
CONFIG = "plugins:\n" + "".join(f"  {p}:\n    interval_ms: 2000\n" for p in bb.PLUGINS)


# The series the agent records (docs/dashboard.md#history).
SERIES = (["network_strength", "block_height", "block_rate", "finality_time", "peer_count", "tps",
           "bandwidth_in", "bandwidth_out", "active_connections", "last_block_age_seconds",
           "strength_terms.peers", "strength_terms.tps", "strength_terms.finality"]
          + [f"{m}.{f}" for m, fs in (
              ("compute", ("status", "active_jobs", "total_providers", "avg_utilization",
                           "total_revenue")),
              ("storage", ("status", "total_stored", "total_providers", "avg_price",
                           "capacity_used")),
              ("energy", ("status", "total_credits", "avg_price", "active_traders",
                          "trading_volume")),
              ("ads", ("status", "active_campaigns", "total_impressions", "total_revenue",
                       "avg_cpm"))) for f in fs])


def write_full_history(home, window_s=3600, resolution_ms=2000):
    """<home>/.block-buster/state/history.bin holding a full window (agent/history's format)."""
    rows = window_s * 1000 // resolution_ms
    end = int(time.time() * 1000) // resolution_ms * resolution_ms
    data = bytearray(b"BBHIST01")
    data += struct.pack("=Iqq", len(SERIES), resolution_ms, rows)
    for name in SERIES:
        data += struct.pack("=H", len(name)) + name.encode()
    for r in range(rows):
        data += struct.pack("=q", end - (rows - 1 - r) * resolution_ms)
        data += struct.pack(f"={len(SERIES)}d", *(1000 + i + math.sin(r / 30) for i in range(len(SERIES))))
    h = 1469598103934665603
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    data += struct.pack("=Q", h)
    state = os.path.join(home, ".block-buster", "state")
    os.makedirs(state, exist_ok=True)
    with open(os.path.join(state, "history.bin"), "wb") as f:
        f.write(data)
    return rows


def sample(stat, seconds, step):
    rss = []
    cpu0, t0 = stat.cpu_seconds(), time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        rss.append(stat.rss_kib())
        time.sleep(step)
    cpu_pct = 100 * (stat.cpu_seconds() - cpu0) / (time.monotonic() - t0)
    return {"rss_kib": rss, "cpu_pct": cpu_pct, "hwm_kib": stat.hwm_kib(),
            "threads": stat.threads()}


def mib(kib):
    return f"{kib / 1024:.1f}"


def main():
    build = bb.build_dir(sys.argv)
    bb.which_or_die("wrk", "wrk")
    idle_s = int(os.environ.get("IDLE_SECONDS", "30"))
    load_s = int(os.environ.get("LOAD_SECONDS", "20"))

    node, rpc = bb.start_devnode(build, "spec", 1000)
    home = tempfile.mkdtemp(prefix="bb-bench-home-")
    # HISTORY_FULL=0: start with no history, for the difference a full window makes.
    full = os.environ.get("HISTORY_FULL", "1") != "0"
    history_rows = write_full_history(home) if full else 0
    agent, port = bb.start_agent(build, rpc, CONFIG, home=home)
    bb.wait_for_data(port, PATHS, timeout=30)
    status, body = bb.Http(port).request("GET", "/theblock/history?series=block_height")
    held = len(json.loads(body)["series"]["block_height"]) if status == 200 else 0
    stat = bb.ProcStat(agent.pid)
    after_start = stat.rss_kib()

    print(f"idle for {idle_s} s ...", flush=True)
    idle = sample(stat, idle_s, 1.0)
    hwm_before_load = stat.hwm_kib()
    idle_split = stat.rss_split_kib()
    idle_pss = stat.pss_kib()
    idle_maps = stat.rss_by_mapping()

    print(f"load for {load_s} s (4 x wrk -c64) ...", flush=True)
    lua = os.path.join(tempfile.gettempdir(), f"bb-bench-wrk-{os.getpid()}.lua")
    with open(lua, "w") as f:
        f.write(bb.WRK_LUA)
    wrks = [subprocess.Popen(["wrk", "-t1", "-c64", "-d", f"{load_s}s", "--timeout", "5s", "-s", lua,
                              f"http://127.0.0.1:{port}{p}"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True) for p in PATHS]
    load = sample(stat, load_s, 0.5)
    requests = 0
    errors = 0
    error_kinds = {k: 0 for k in ("connect", "read", "write", "status", "timeout")}
    for w in wrks:
        out, _ = w.communicate(timeout=60)
        if "WRKJSON" in out:
            d = json.loads(out.split("WRKJSON", 1)[1].strip().splitlines()[0])
            requests += d["requests"]
            for k in error_kinds:
                error_kinds[k] += d[k]
                errors += d[k]
    after_load = sample(stat, 5, 1.0)

    idle_max = max(idle["rss_kib"])
    load_max = max(max(load["rss_kib"]), stat.hwm_kib())
    rows = [
        [f"idle (6 plugins, 2 s interval, {'1 h history full' if full else 'no history'})",
         f"{idle_s} s", mib(min(idle["rss_kib"])),
         mib(sum(idle["rss_kib"]) / len(idle["rss_kib"])), mib(idle_max), mib(hwm_before_load),
         f"{idle['cpu_pct']:.2f}%", idle["threads"], "< 16 MiB",
         bb.verdict(hwm_before_load < 16 * 1024)],
        ["REST load (4 x wrk -c64)", f"{load_s} s", mib(min(load["rss_kib"])),
         mib(sum(load["rss_kib"]) / len(load["rss_kib"])), mib(max(load["rss_kib"])),
         mib(stat.hwm_kib()), f"{load['cpu_pct']:.0f}%", load["threads"], "< 64 MiB",
         bb.verdict(load_max < 64 * 1024)],
        ["5 s after the load", "5 s", mib(min(after_load["rss_kib"])),
         mib(sum(after_load["rss_kib"]) / len(after_load["rss_kib"])),
         mib(max(after_load["rss_kib"])), mib(stat.hwm_kib()), f"{after_load['cpu_pct']:.2f}%",
         after_load["threads"], "", ""],
    ]
    headers = ["phase", "window", "RSS min MiB", "RSS avg MiB", "RSS max MiB", "peak (VmHWM) MiB",
               "CPU (% of a core)", "threads", "target", "verdict"]
    notes = (f"History: {history_rows} rows of {len(SERIES)} series written before the start, "
             f"{held} rows served at start (the default window, 1 h at 2 s). "
             f"RSS right after every plugin's first collection: {mib(after_start)} MiB. The load "
             f"phase served {requests} requests ({requests / load_s:.0f}/s) with {errors} "
             f"errors ({', '.join(f'{k} {v}' for k, v in error_kinds.items() if v) or 'none'}). The idle verdict uses the peak (VmHWM) up to the end of the idle window, the "
             "load verdict the peak over the whole run. The agent loads its plugins in process "
             "(the default isolation), so their memory is in these figures; bb-devnode's is not.")
    top = sorted(idle_maps.items(), key=lambda kv: -kv[1][0])[:12]
    split_rows = [[f"`{k}`", mib(v[0]), mib(v[1])] for k, v in top]
    notes += (f"\n\nIdle RSS by kind at the end of the idle window: anonymous (heap, stacks) "
              f"{mib(idle_split[0])} MiB, file-backed (code and data of the binary and its "
              f"shared libraries) {mib(idle_split[1])} MiB, shared memory {mib(idle_split[2])} MiB; "
              f"PSS (shared pages divided among the processes using them) {mib(idle_pss)} MiB. "
              "Largest mappings by RSS:")
    raw = {"idle_split_kib": idle_split, "idle_pss_kib": idle_pss, "idle_maps_kib": idle_maps,
           "after_start_kib": after_start, "idle": idle, "load": load, "after_load": after_load,
           "requests": requests, "errors": errors, "error_kinds": error_kinds}
    bb.write_results("footprint", "Agent footprint: RSS and CPU, idle and under REST load",
                     [bb.table(headers, rows), notes,
                      bb.table(["mapping (idle)", "RSS MiB", "of which private dirty MiB"], split_rows)], raw, "bench/footprint/run.py [BUILD_DIR]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
