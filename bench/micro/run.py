#!/usr/bin/env python3
"""Micro-benchmarks (Google Benchmark) of the agent's hot paths: builds bb-micro-bench in
BUILD_DIR (configured with -DBB_BUILD_BENCH=ON) and runs it.

    bench/micro/run.py [BUILD_DIR]      env: MIN_TIME=0.5 FILTER=<regex>

Target (issue 10): a /metrics scrape with 5 000 plugin series under 10 ms at p99.
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bbbench as bb  # noqa: E402


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                            os.environ.get("BB_BUILD_DIR", os.path.join(bb.SRC, "build-bench")))
    r = subprocess.run(["cmake", "--build", build, "--target", "bb-micro-bench", "-j2"],
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        bb.die(f"building bb-micro-bench failed (configure {build} with -DBB_BUILD_BENCH=ON):\n"
               + r.stdout[-3000:] + r.stderr[-3000:])
    exe = os.path.join(build, "bin", "bb-micro-bench")
    out = os.path.join(bb.RESULTS, "raw", "micro-gbench.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    argv = [exe, f"--benchmark_min_time={os.environ.get('MIN_TIME', '0.5')}",
            f"--benchmark_out={out}", "--benchmark_out_format=json"]
    if os.environ.get("FILTER"):
        argv.append(f"--benchmark_filter={os.environ['FILTER']}")
    subprocess.run(argv, check=True, timeout=600)
    data = json.load(open(out))
    rows = []
    scrape_p99_ms = None
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate":
            continue
        scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3}[b["time_unit"]]
        cpu_us = b["cpu_time"] * scale
        real_us = b["real_time"] * scale
        p50, p99 = b.get("p50_us"), b.get("p99_us")
        if b["name"] == "BM_MetricsSerialize/5000":
            scrape_p99_ms = p99 / 1000
        rows.append([f"`{b['name']}`", b["iterations"], f"{real_us:.2f}", f"{cpu_us:.2f}",
                     f"{p50:.2f}" if p50 is not None else "-",
                     f"{p99:.2f}" if p99 is not None else "-",
                     int(b["body_bytes"]) if "body_bytes" in b else ""])
    headers = ["benchmark", "iterations", "mean µs (wall)", "mean µs (CPU)", "p50 µs", "p99 µs",
               "bytes out"]
    ctx = data.get("context", {})
    notes = (f"Google Benchmark {ctx.get('library_build_type', '')} library, {ctx.get('num_cpus')} "
             f"CPUs at {ctx.get('mhz_per_cpu')} MHz, min time {os.environ.get('MIN_TIME', '0.5')} s "
             "per benchmark; p50/p99 from every iteration's own timing. Bodies are the captured "
             "real ones (bench/micro/data/). The receipts file holds 100 000 receipts over four "
             "markets (a page of 100, newest first, with the total).")
    if scrape_p99_ms is not None:
        notes += (f"\n\nTarget: /metrics with 5 000 plugin series, p99 {scrape_p99_ms:.2f} ms < 10 ms: "
                  f"**{bb.verdict(scrape_p99_ms < 10)}**.")
    bb.write_results("micro", "Micro-benchmarks (Google Benchmark)", [bb.table(headers, rows), notes],
                     {"benchmarks": data["benchmarks"]}, "bench/micro/run.py [BUILD_DIR]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
