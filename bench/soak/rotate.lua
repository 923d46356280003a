-- wrk script for bench/soak/soak.sh: each connection rotates over the agent's REST endpoints and
-- the run ends with one machine-readable line (SOAK key=value ...) that soak.sh parses.
local paths = {
  "/theblock/network/metrics",
  "/theblock/markets/health",
  "/theblock/receipts?limit=100",
  "/metrics",
}
local counter = 0

function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "SOAK requests=%d non2xx=%d connect=%d read=%d write=%d timeout=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
