#!/usr/bin/env python3
"""Captures the section bodies the micro-benchmarks render (bench/micro/data/<section>.json).

    bench/micro/capture.py [BUILD_DIR]

Runs bb-devnode (spec profile, fixed seed and genesis time) and the agent with all six plugins,
waits for every section the benchmarks use, and stores each as the plugin published it: the
agent's rendered body (/plugins/<plugin>/<section>) less the fields the store appends
(age_seconds, stale, stale_reason), which renderBody adds back in the benchmark.
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bbbench as bb  # noqa: E402

SECTIONS = ["network.metrics", "network.peers", "receipts.operations", "compute.market",
            "storage.market", "energy.market", "ads.market"]


def main():
    build = bb.build_dir(sys.argv)
    node, rpc = bb.start_devnode(build, "spec", 1000, ["--seed", "1", "--genesis-time", "1700000000"])
    agent, port = bb.start_agent(build, rpc)
    paths = ["/plugins/" + s.replace(".", "/") for s in SECTIONS]
    bb.wait_for_data(port, paths, timeout=30)
    c = bb.Http(port)
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
    os.makedirs(out_dir, exist_ok=True)
    for s, p in zip(SECTIONS, paths):
        status, body = c.get(p)
        obj = json.loads(body)
        for k in ("age_seconds", "stale", "stale_reason"):
            obj.pop(k, None)
        text = json.dumps(obj, separators=(",", ":"))
        with open(os.path.join(out_dir, s + ".json"), "w") as f:
            f.write(text)
        print(f"{s}: {len(text)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
