#!/usr/bin/env python3
"""The API under a mix of requests against a store of a million receipts (issue 20).

    bench/mixed/run.py [BUILD_DIR]    env: DURATION=10 WARMUP=2 RECEIPTS=1000000 CLIENTS=1000
                                           DASH_CONNS=64 PAGE_CONNS=16 RATE=500
                                           STORE_TEMPLATE=<file> (kept filled store, reused)
                                           ENDPOINTS=<path>,... (a subset of the dashboard
                                           endpoints below, to explore; default all four)
                                           CLIENTS=0 or PAGE_CONNS=0 leaves that
                                           part of the mix out (what each one costs)
                                           CELL_HOOK=<shell command> (run in the background
                                           as each dashboard cell's measurement starts, alone
                                           and mixed, with AGENT_PID, KIND (alone|mixed), CELL
                                           and CELL_SECONDS in its environment: e.g. a perf
                                           record of the agent)

BUILD_DIR (default build-bench, configured with -DBB_BUILD_BENCH=ON) needs the agent, bb-devnode
and the plugins; bb-receipts-fill and bb-ws-bench are built here when absent.

1. bb-receipts-fill writes RECEIPTS receipts into a fresh store through ReceiptStore::ingest (the
   plugin's schema and indexes); its size per million receipts is reported.
2. bb-devnode (spec profile) makes a block a second holding RATE receipts; the real agent (all six
   plugins; receipts: that store, interval 1 s, page_size 1000, retention 1 000 000) follows it.
3. Alone: each dashboard endpoint under wrk at DASH_CONNS connections, then receipts pages at
   random offsets (0..total) and markets (none or one of four) at PAGE_CONNS, each by itself.
4. Mixed: the background load runs throughout: the receipts pages at PAGE_CONNS, a /metrics
   scrape every second, CLIENTS WebSocket clients on /theblock/ws (bb-ws-bench) and the node's
   RATE receipts a second being ingested; each dashboard endpoint is measured under it in turn,
   at DASH_CONNS, exactly as alone.
Throughout the mix it samples, every second, the agent's RSS and how far the store's cursor is
behind the node's height (in blocks: one block a second, so in seconds too).

Targets: each dashboard endpoint's (network/metrics, markets/health, receipts?limit=100: those of
bench/rest) p99 mixed <= 2x alone and req/s mixed >= 0.5x alone, zero errors; /theblock/dashboard
is reported beside them. Ingest less than two intervals behind: the node's height minus the
store's cursor at most 2 blocks (one block a second). RSS under 64 MiB. Nothing is pinned: wrk,
bb-ws-bench, bb-devnode and the agent share the machine's cores.
"""

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bbbench as bb  # noqa: E402

# The dashboard endpoints of the REST targets (bench/rest), then /theblock/dashboard (every
# section in one body, composed once per store version: reported beside them).
DASHBOARD = ["/theblock/network/metrics", "/theblock/markets/health",
             "/theblock/receipts?limit=100", "/theblock/dashboard"]
TARGETED = DASHBOARD[:3]
MARKETS = ["", "compute", "storage", "energy", "ad"]

# wrk: every request a page of 100 at a random offset of the filter's total (markets hold a
# quarter each), with no market or a random one.
PAGES_LUA = r"""
local totals = {[""] = %d, compute = %d, storage = %d, energy = %d, ad = %d}
local markets = {"", "compute", "storage", "energy", "ad"}
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  local m = markets[math.random(#markets)]
  local path = "/theblock/receipts?limit=100&offset=" .. math.random(0, totals[m] - 1)
  if m ~= "" then path = path .. "&market=" .. m end
  return wrk.format("GET", path)
end
"""


def build_tools(build):
    need = [t for t in ("bb-receipts-fill", "bb-ws-bench")
            if not os.path.exists(os.path.join(build, "bin", t))]
    if need:
        r = subprocess.run(["cmake", "--build", build, "-j2", "--target", *need],
                           capture_output=True, text=True, timeout=1800)
        if r.returncode != 0:
            bb.die(f"building {', '.join(need)} failed (configure {build} with "
                   "-DBB_BUILD_BENCH=ON):\n" + r.stdout[-3000:] + r.stderr[-3000:])


def fmt_ms(us):
    return f"{us / 1000:.2f}"


class Sampler(threading.Thread):
    """Every second until stopped: a /metrics scrape (timed), the agent's RSS and the ingest lag."""

    def __init__(self, port, node_port, stat, scrape=True):
        super().__init__(daemon=True)
        self.port, self.node_port, self.stat, self.scrape = port, node_port, stat, scrape
        self.stop_event = threading.Event()
        self.scrapes_ms, self.scrape_errors, self.rss_kib, self.lag_blocks = [], 0, [], []
        self.collect = []  # (sum, count) of the receipts plugin's collect durations, per scrape

    def run(self):
        agent, node = bb.Http(self.port, timeout=10), bb.Http(self.node_port, timeout=10)
        while not self.stop_event.is_set():
            t0 = time.monotonic()
            if self.scrape:
                try:
                    status, text = agent.get("/metrics")
                    if status == 200:
                        self.scrapes_ms.append((time.monotonic() - t0) * 1000)
                        self.collect.append(collect_seconds(text.decode()))
                    else:
                        self.scrape_errors += 1
                except OSError:
                    self.scrape_errors += 1
                    agent.close()
            try:
                self.rss_kib.append(self.stat.rss_kib())
                height = node.get_json("/_devnode/state")[1]["height"]
                store = agent.get_json("/plugins/receipts/store")[1]
                cursor = int(store["cursor"].get("spec.height", 0))
                self.lag_blocks.append(height - cursor)
            except (OSError, ValueError, KeyError, TypeError):
                pass
            self.stop_event.wait(max(0.0, 1.0 - (time.monotonic() - t0)))

    def stop(self):
        self.stop_event.set()
        self.join(timeout=15)


def collect_seconds(exposition):
    """(sum, count) of blockbuster_plugin_collect_duration_seconds for the receipts plugin."""
    total = count = 0.0
    for line in exposition.splitlines():
        if 'plugin="receipts"' in line:
            if line.startswith("blockbuster_plugin_collect_duration_seconds_sum"):
                total = float(line.rsplit(" ", 1)[1])
            elif line.startswith("blockbuster_plugin_collect_duration_seconds_count"):
                count = float(line.rsplit(" ", 1)[1])
    return total, count


def mean_collect_ms(samples):
    """Mean receipts collect time between the first and the last scrape of `samples`."""
    if len(samples) < 2 or samples[-1][1] <= samples[0][1]:
        return float("nan")
    return 1000 * (samples[-1][0] - samples[0][0]) / (samples[-1][1] - samples[0][1])


def main():
    build = bb.build_dir(sys.argv)
    bb.which_or_die("wrk", "wrk")
    build_tools(build)
    duration = int(os.environ.get("DURATION", "10"))
    warmup = int(os.environ.get("WARMUP", "2"))
    receipts = int(os.environ.get("RECEIPTS", "1000000"))
    clients = int(os.environ.get("CLIENTS", "1000"))
    dash_conns = int(os.environ.get("DASH_CONNS", "64"))
    page_conns = int(os.environ.get("PAGE_CONNS", "16"))
    rate = int(os.environ.get("RATE", "500"))
    if os.environ.get("ENDPOINTS"):
        wanted = os.environ["ENDPOINTS"].split(",")
        unknown = [e for e in wanted if e not in DASHBOARD]
        if unknown:
            bb.die(f"ENDPOINTS: {', '.join(unknown)} not among {', '.join(DASHBOARD)}")
        DASHBOARD[:] = [e for e in DASHBOARD if e in wanted]

    # 1. The store.
    home = tempfile.mkdtemp(prefix="bb-bench-mixed-")
    db = os.path.join(home, "receipts.db")
    # The store goes with the run (about 250 MB a copy; the agent's logs stay for reading).
    atexit.register(lambda: [os.remove(p) for p in (db, db + "-wal", db + "-shm")
                             if os.path.exists(p)])
    t0 = time.monotonic()
    template = os.environ.get("STORE_TEMPLATE", "")
    if not (template and os.path.exists(template)):
        fill = subprocess.run([os.path.join(build, "bin", "bb-receipts-fill"), db, str(receipts)],
                              capture_output=True, text=True, timeout=3600)
        if fill.returncode != 0:
            bb.die(f"bb-receipts-fill failed: {fill.stderr}")
        if template:
            shutil.copyfile(db, template)
    fill_s = time.monotonic() - t0
    if template and os.path.exists(template) and not os.path.exists(db):
        shutil.copyfile(template, db)  # a store this benchmark filled before, copied
    size = os.path.getsize(db) + (os.path.getsize(db + "-wal") if os.path.exists(db + "-wal") else 0)
    print(f"store: {receipts} receipts in {fill_s:.0f} s, {size / 2**20:.1f} MiB", flush=True)

    # 2. Node and agent.
    node, rpc = bb.start_devnode(build, "spec", 1000,
                                 ["--receipts-per-block", str(rate), "--max-receipts", "100000",
                                  "--start-height", "10"])
    node_port = int(rpc.rsplit(":", 1)[1])
    config = ("plugins:\n  receipts:\n    interval_ms: 1000\n    options:\n"
              f"      page_size: 1000\n      db_path: {db}\n"
              f"      retention_max_receipts: {receipts}\n")
    cfg = os.path.join(home, "agent.yaml")
    with open(cfg, "w") as f:
        f.write(config)
    t0 = time.monotonic()
    agent = bb.Child("agent", [os.path.join(build, "bin/blockbuster-agent"), "--config", cfg],
                     env=bb.agent_env(home, rpc), workdir=home)
    m = agent.wait_line(r"blockbuster-agent ready http=[^ ]*:(\d+).* ws=[^ ]*:(\d+)", timeout=120)
    port, ws_port = int(m.group(1)), int(m.group(2))
    start_s = time.monotonic() - t0
    print(f"agent pid {agent.pid} http port {port} ws port {ws_port}", flush=True)
    bb.wait_for_data(port, DASHBOARD, timeout=60)
    stat = bb.ProcStat(agent.pid)
    c = bb.Http(port)
    totals = {mk: c.get_json("/theblock/receipts?limit=1" + (f"&market={mk}" if mk else ""))[1]
              ["total"] for mk in MARKETS}
    c.close()
    pages_lua = PAGES_LUA % tuple(totals[mk] for mk in MARKETS)
    pages_url = f"http://127.0.0.1:{port}/theblock/receipts"

    hook = os.environ.get("CELL_HOOK", "")
    hooks = []

    def dash(kind, path):
        url = f"http://127.0.0.1:{port}{path}"
        if warmup:
            bb.wrk(url, dash_conns, warmup)
        if hook:
            hooks.append(subprocess.Popen(["bash", "-c", hook], env=dict(
                os.environ, AGENT_PID=str(agent.pid), KIND=kind, CELL=path,
                CELL_SECONDS=str(duration))))
        r = bb.wrk(url, dash_conns, duration)
        print(f"{kind} {path:32} c={dash_conns}: {r['rps']:8.0f} req/s  p50 {fmt_ms(r['p50_us'])} "
              f"ms  p99 {fmt_ms(r['p99_us'])} ms  errors {r['errors']}", flush=True)
        return r

    # The node has history when the agent starts (its blocks before now): the store catches up
    # with it first, so that every phase below sees the steady state of 500 receipts a second.
    catch_up = Sampler(port, node_port, stat, scrape=False)
    catch_up.start()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and (len(catch_up.lag_blocks) < 3
                                           or max(catch_up.lag_blocks[-3:]) > 1):
        time.sleep(0.5)
    catch_up.stop()
    print(f"caught up with the node's history: lag {catch_up.lag_blocks[-3:]} blocks after "
          f"{len(catch_up.lag_blocks)} s", flush=True)

    # 3. Alone.
    alone = {path: dash("alone", path) for path in DASHBOARD}
    for h in hooks:
        h.wait(timeout=120)
    none = {"rps": 0, "p50_us": 0, "p99_us": 0, "errors": 0, "status": 0}
    alone_pages = (bb.wrk(pages_url, page_conns, duration, lua_requests=pages_lua)
                   if page_conns else dict(none))
    print(f"alone receipts pages (random)      c={page_conns}: {alone_pages['rps']:8.0f} req/s  "
          f"p50 {fmt_ms(alone_pages['p50_us'])} ms  p99 {fmt_ms(alone_pages['p99_us'])} ms  "
          f"errors {alone_pages['errors']}", flush=True)
    # The store catches up with the node before the mix (the alone runs may have slowed it).
    quiet = Sampler(port, node_port, stat)
    quiet.start()
    time.sleep(min(duration, 8))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not quiet.lag_blocks or quiet.lag_blocks[-1] > 1):
        time.sleep(0.5)
    quiet.stop()
    print(f"before the mix: ingest lag {quiet.lag_blocks} blocks, receipts collect "
          f"{mean_collect_ms(quiet.collect):.0f} ms on average", flush=True)

    # 4. Mixed: background load for the whole measurement, dashboard endpoints in turn.
    per_dash = (warmup + duration) + 1
    background_s = per_dash * len(DASHBOARD) + 4
    ulimit = f"ulimit -n {clients * 2 + 1024} 2>/dev/null;"
    ws = subprocess.Popen(
        ["bash", "-c", ulimit + " exec \"$0\" \"$@\"", os.path.join(build, "bin", "bb-ws-bench"),
         "--port", str(ws_port), "--path", "/theblock/ws", "--clients", str(clients),
         "--seconds", str(background_s)] if clients else ["sleep", str(background_s)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = Sampler(port, node_port, stat)
    sampler.start()
    pages_result = {}
    pages_thread = threading.Thread(target=lambda: pages_result.update(
        bb.wrk(pages_url, page_conns, background_s - 2, lua_requests=pages_lua)
        if page_conns else none), daemon=True)
    time.sleep(2)  # the WebSocket clients connect
    pages_thread.start()
    mixed = {path: dash("mixed", path) for path in DASHBOARD}
    for h in hooks:
        h.wait(timeout=120)
    pages_thread.join(timeout=background_s + 60)
    ws_out, ws_err = ws.communicate(timeout=background_s + 60)
    sampler.stop()
    mixed_pages = pages_result

    # Report.
    rows, all_met = [], True
    for path in DASHBOARD:
        a, x = alone[path], mixed[path]
        rps_ratio = x["rps"] / a["rps"] if a["rps"] else float("nan")
        p99_ratio = x["p99_us"] / a["p99_us"] if a["p99_us"] else float("nan")
        met = rps_ratio >= 0.5 and p99_ratio <= 2.0 and x["errors"] == 0 and a["errors"] == 0
        if path in TARGETED:
            all_met &= met
        rows.append([f"`{path}`", dash_conns, f"{a['rps']:.0f}", fmt_ms(a["p50_us"]),
                     fmt_ms(a["p99_us"]), f"{x['rps']:.0f}", fmt_ms(x["p50_us"]),
                     fmt_ms(x["p99_us"]), f"**{rps_ratio:.2f}**", f"**{p99_ratio:.2f}**",
                     f"{a['errors']} / {x['errors']}", bb.verdict(met)])
    mp = mixed_pages or {"rps": 0, "p50_us": 0, "p99_us": 0, "errors": -1, "status": -1}
    rows.append([f"`/theblock/receipts` random offset & market", page_conns,
                 f"{alone_pages['rps']:.0f}", fmt_ms(alone_pages["p50_us"]),
                 fmt_ms(alone_pages["p99_us"]), f"{mp['rps']:.0f}", fmt_ms(mp["p50_us"]),
                 fmt_ms(mp["p99_us"]), "", "", f"{alone_pages['errors']} / {mp['errors']}",
                 "(background)"])
    scrapes = sampler.scrapes_ms
    rows.append(["`/metrics` once a second", 1, "", f"{bb.percentile(quiet.scrapes_ms, 50):.2f}",
                 f"{max(quiet.scrapes_ms or [0]):.2f} (max)", f"{len(scrapes)} scrapes",
                 f"{bb.percentile(scrapes, 50):.2f}", f"{max(scrapes or [0]):.2f} (max)", "", "",
                 f"0 / {sampler.scrape_errors}", "(background)"])
    lag = sampler.lag_blocks
    rss_mib = max(sampler.rss_kib or [0]) / 1024
    # Blocks behind = the node's height - the store's cursor: with one block a second, 2 means the
    # oldest receipt not stored yet was made less than two seconds (intervals) ago.
    ingest_met = bool(lag) and max(lag) <= 2
    rss_met = rss_mib < 64
    ws_summary = "\n".join(line for line in ws_out.splitlines()
                           if line.startswith(("clients=", "per_delivery_ms", "all_clients")))
    headers = ["endpoint", "conns", "alone req/s", "alone p50 ms", "alone p99 ms", "mixed req/s",
               "mixed p50 ms", "mixed p99 ms", "req/s mixed/alone", "p99 mixed/alone",
               "errors alone / mixed", "target"]
    notes = (
        f"Store: {receipts} receipts written by bb-receipts-fill ({fill_s:.0f} s this run; "
        f"copied from STORE_TEMPLATE when it existed); file "
        f"{size / 2**20:.1f} MiB, **{size / receipts * 1e6 / 2**20:.0f} MiB per million "
        f"receipts**. Agent start with it: ready in {start_s:.1f} s (order index read).\n\n"
        f"Mix: receipts pages at random offsets and markets on {page_conns} connections (wrk), "
        f"a /metrics scrape every second, {clients} WebSocket clients on /theblock/ws "
        f"(bb-ws-bench), bb-devnode making {rate} receipts a second, ingested by the agent; each "
        f"dashboard endpoint measured under it in turn at {dash_conns} connections (wrk -t2, "
        f"{warmup} s warm-up, {duration} s measured), as alone. Totals paged over: "
        f"{json.dumps(totals)}.\n\n"
        f"Dashboard targets (p99 mixed <= 2x alone, req/s mixed >= 0.5x alone, zero errors; on "
        f"the first three endpoints, the REST benchmark's dashboard endpoints): "
        f"**{bb.verdict(all_met)}**. Ingest behind the node during the mix (blocks = seconds): "
        f"max {max(lag) if lag else 'n/a'}, samples {len(lag)} (one a second: {lag}); the "
        f"receipts plugin's collect took {mean_collect_ms(sampler.collect):.0f} ms on average "
        f"during the mix, {mean_collect_ms(quiet.collect):.0f} ms before it; target <= 2 (the oldest receipt not yet stored less than two intervals old): "
        f"**{bb.verdict(ingest_met)}**. Agent RSS during the mix: max {rss_mib:.1f} MiB "
        f"(peak {stat.hwm_kib() / 1024:.1f} MiB over the whole run); target < 64 MiB: "
        f"**{bb.verdict(rss_met)}**. Receipts pages mixed: {mp.get('status', 0)} non-2xx "
        f"(503 when more than 32 wait for the store).\n\nWebSocket clients during the mix:\n\n"
        f"```\n{ws_summary or ws_err[-800:]}\n```\n\nNothing pinned: wrk, bb-ws-bench, bb-devnode "
        "and the agent share the machine's cores.")
    raw = {"alone": alone, "mixed": mixed, "pages_alone": alone_pages, "pages_mixed": mixed_pages,
           "scrapes_ms": scrapes, "lag_blocks": lag, "rss_kib": sampler.rss_kib,
           "store_bytes": size, "receipts": receipts, "fill_seconds": fill_s,
           "agent_start_seconds": start_s, "ws": ws_out, "lag_blocks_before": quiet.lag_blocks,
           "collect_before": quiet.collect, "collect_mixed": sampler.collect}
    bb.write_results("mixed", "The API under a mix of requests, a million receipts in the store",
                     [bb.table(headers, rows), notes], raw, "bench/mixed/run.py [BUILD_DIR]")
    return 0 if all_met and ingest_met and rss_met else 1


if __name__ == "__main__":
    sys.exit(main())
