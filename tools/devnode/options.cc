#include "options.h"

#include <cerrno>
#include <cstdlib>
#include <sstream>

namespace devnode {

std::string helpText() {
  return R"(bb-devnode: a simulated The Block node for developing and testing Block Buster.

Usage: bb-devnode [--listen HOST:PORT] [--profile spec|theblock] [options]

Once listening it prints one line on stdout:
  bb-devnode ready rpc=HOST:PORT profile=PROFILE
Logs go to stderr. SIGTERM or SIGINT stops it.

Node:
  --listen HOST:PORT        address to serve on; PORT 0 picks a free port
                            (default 127.0.0.1:9933 for spec, 127.0.0.1:3030 for theblock)
  --profile spec|theblock   spec: the guide's methods and shapes (net.peers, net.stats,
                              light.latest_header, compute_market.stats, storage.stats,
                              energy.market_state, ad_market.stats, receipt.audit)
                            theblock: the real node's surface and transport rules (Host check,
                              object params only, no batches, rate limit and ban, bearer token
                              for energy reads, the light.latest_header panic on an empty chain)
  --threads N               request threads (default 128; one per keep-alive connection)
  --verbose                 log one line per request on stderr
  --help                    this text

Chain (deterministic for a seed: same seed and block count give the same state):
  --seed N                  PRNG seed (default 1)
  --block-ms N              one block every N ms (default 1000); 0: no blocks until
                            POST /_devnode/advance (or start_mining on theblock)
  --start-height N          blocks generated before serving (default 100; 0: empty chain)
  --genesis-time UNIX       timestamp of height 0; block h is stamped genesis + h * block time
                            (default: now - start-height block times)
  --accounts N              simulated accounts (default 200)
  --peers N                 simulated peers, ~85% connected at a time (default 24)
  --receipts-per-block N    receipts issued per block over the four markets (default 4)
  --max-receipts N          receipts kept in history; older ones are dropped (default 100000)

Transport (theblock profile):
  --allowed-host HOST       accept this Host header too (repeatable; 127.0.0.1 and localhost
                            always are); others get HTTP 403 with an empty body
  --rate-limit N            token bucket refill, requests/s per client IP (default 100; 0 off)
  --rate-burst N            bucket size (default 100)
  --ban-seconds N           ban after the first request over the limit (default 60)
  --energy-rate-limit N     extra bucket for energy.* reads, requests/s (default 0 = off;
                            the real node has about 16)
  --auth-token T            energy.* reads need "Authorization: Bearer T" (else -33009) and
                            admin methods (start_mining, stop_mining) answer -32601 without it;
                            on the spec profile every call needs it (else HTTP 401)
  --governor                governor.status reports an enabled governor

Hazards of the real node (theblock profile; counted in GET /_devnode/state "hazards"):
  --pipeline-ms N           each storage read that opens the node's storage pipeline
                            (storage.discover_providers, storage.manifests,
                            storage_provider_profiles, storage.audit, storage.repair_*) takes
                            N ms (default 1500; 0: instant) and leaks one node thread (a
                            storage-repair-loop that never ends); two at once panic (the
                            connection closes without a reply)
  --mining-stall-ms N       while mining, every block holds the chain lock for N ms and RPC
                            calls arriving meanwhile wait for it (default 0: off)
  POST /_devnode/replace    drop every connection and come back at once on the same port as
                            a fresh node: empty chain, not mining, light.* not poisoned

Faults (also at run time: POST /_devnode/faults with the JSON key shown):
  --latency-ms [METHOD=]MS  add latency to METHOD, or to all methods    {"latency_ms":{"m":ms}}
  --error-rate F            fraction of calls answering -32603           {"error_rate":F}
  --fault-mode MODE         misbehave on calls:                          {"mode":"MODE"}
                              http500    HTTP 500, text body
                              garbage    HTTP 200 with malformed JSON
                              truncated  Content-Length larger than the body, then close
                              oversized  a valid reply padded to --oversized-bytes (20 MiB)
                              empty      close the connection without a reply
                              hang       keep the connection open and never answer
  --fault-rate F            fraction of calls the mode hits (default 1)  {"mode_rate":F}
  --fault-methods M1,M2     error-rate and mode apply only to these      {"methods":[..]}
  --remove-method M         answer -32601 for M (repeatable)             {"remove_methods":[..]}
  --oversized-bytes N       body size for the oversized mode             {"oversized_bytes":N}
  --down-seconds N          close the listening socket and every        {"down_seconds":N}
                            connection for N s, then listen again on the same port
  --down-after-ms N         with --down-seconds: go down N ms after the ready line (default 0)
  auth required: --auth-token T                                          {"auth_token":"T"}

Control API (same port, exempt from the Host check, rate limit and faults):
  GET    /_devnode/state      height, profile, counts, active faults
  GET    /_devnode/faults     the faults in force
  POST   /_devnode/faults     merge faults (JSON object, keys as above)
  DELETE /_devnode/faults     clear every fault (the token goes back to --auth-token)
  POST   /_devnode/advance    {"blocks":N}: produce N blocks now
  GET    /_devnode/receipts   every retained receipt, oldest first, canonical form
                              {id,market,block_height,timestamp,provider,consumer,amount,status}
                              with the method and fields each comes from;
                              ?market=M &start_height=H &sources=0 (leave out "source")
  GET    /_devnode/stats      requests served per method; DELETE resets the counts

See tools/devnode/README.md for shapes and details.
)";
}

namespace {

bool parseInt(const std::string& s, int64_t lo, int64_t hi, int64_t* out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool parseDouble(const std::string& s, double lo, double hi, double* out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || *end != '\0' || !(v >= lo && v <= hi)) return false;
  *out = v;
  return true;
}

std::vector<std::string> splitComma(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

std::optional<Options> parseOptions(int argc, char** argv, bool* help, std::string* error) {
  Options o;
  *help = false;
  bool listen_given = false;
  auto fail = [&](const std::string& msg) {
    *error = msg;
    return std::nullopt;
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_inline = false;
    if (arg.rfind("--", 0) == 0) {
      auto eq = arg.find('=');
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        has_inline = true;
      }
    }
    if (arg == "--help" || arg == "-h") {
      *help = true;
      return o;
    }
    if (arg == "--verbose") {
      o.verbose = true;
      continue;
    }
    if (arg == "--governor") {
      o.governor = true;
      continue;
    }
    static const char* kValued[] = {"--listen",        "--profile",
                                    "--threads",       "--seed",
                                    "--block-ms",      "--start-height",
                                    "--genesis-time",  "--accounts",
                                    "--peers",         "--receipts-per-block",
                                    "--max-receipts",  "--allowed-host",
                                    "--rate-limit",    "--rate-burst",
                                    "--ban-seconds",   "--energy-rate-limit",
                                    "--auth-token",    "--latency-ms",
                                    "--error-rate",    "--fault-mode",
                                    "--fault-rate",    "--fault-methods",
                                    "--remove-method", "--oversized-bytes",
                                    "--down-seconds",  "--down-after-ms",
                                    "--pipeline-ms",   "--mining-stall-ms"};
    bool known = false;
    for (const char* k : kValued) known = known || arg == k;
    if (!known) return fail("unknown option '" + arg + "' (bb-devnode --help lists the options)");
    if (!has_inline) {
      if (i + 1 >= argc) return fail(arg + " needs a value (bb-devnode --help)");
      value = argv[++i];
    }
    int64_t n = 0;
    double d = 0;
    if (arg == "--listen") {
      auto colon = value.rfind(':');
      if (colon == std::string::npos || colon == 0 ||
          !parseInt(value.substr(colon + 1), 0, 65535, &n))
        return fail("--listen: expected HOST:PORT with PORT 0-65535 (0 = any free port), got '" +
                    value + "'");
      o.host = value.substr(0, colon);
      o.port = static_cast<int>(n);
      listen_given = true;
    } else if (arg == "--profile") {
      if (value == "spec")
        o.profile = Profile::kSpec;
      else if (value == "theblock")
        o.profile = Profile::kTheBlock;
      else
        return fail("--profile: expected spec or theblock, got '" + value + "'");
    } else if (arg == "--threads") {
      if (!parseInt(value, 4, 4096, &n))
        return fail("--threads: expected an integer 4-4096, got '" + value + "'");
      o.threads = static_cast<int>(n);
    } else if (arg == "--seed") {
      if (!parseInt(value, 0, INT64_MAX, &n))
        return fail("--seed: expected a non-negative integer, got '" + value + "'");
      o.seed = static_cast<uint64_t>(n);
    } else if (arg == "--block-ms") {
      if (!parseInt(value, 0, 3600000, &n))
        return fail("--block-ms: expected milliseconds 0-3600000 (0 = no blocks), got '" + value +
                    "'");
      o.block_ms = n;
    } else if (arg == "--start-height") {
      if (!parseInt(value, 0, 10000000, &n))
        return fail("--start-height: expected an integer 0-10000000, got '" + value + "'");
      o.start_height = static_cast<uint64_t>(n);
    } else if (arg == "--genesis-time") {
      if (!parseInt(value, 0, 4102444800LL, &n))
        return fail("--genesis-time: expected unix seconds, got '" + value + "'");
      o.genesis_time = n;
    } else if (arg == "--accounts") {
      if (!parseInt(value, 4, 1000000, &n))
        return fail("--accounts: expected an integer 4-1000000, got '" + value + "'");
      o.accounts = static_cast<int>(n);
    } else if (arg == "--peers") {
      if (!parseInt(value, 0, 100000, &n))
        return fail("--peers: expected an integer 0-100000, got '" + value + "'");
      o.peers = static_cast<int>(n);
    } else if (arg == "--receipts-per-block") {
      if (!parseInt(value, 0, 100000, &n))
        return fail("--receipts-per-block: expected an integer 0-100000, got '" + value + "'");
      o.receipts_per_block = static_cast<int>(n);
    } else if (arg == "--max-receipts") {
      if (!parseInt(value, 1, 100000000, &n))
        return fail("--max-receipts: expected an integer 1-100000000, got '" + value + "'");
      o.max_receipts = n;
    } else if (arg == "--allowed-host") {
      if (value.empty()) return fail("--allowed-host: expected a host name or address");
      o.allowed_hosts.push_back(value);
    } else if (arg == "--rate-limit") {
      if (!parseDouble(value, 0, 1e9, &d))
        return fail("--rate-limit: expected requests per second >= 0 (0 = off), got '" + value +
                    "'");
      o.rate_limit = d;
    } else if (arg == "--rate-burst") {
      if (!parseDouble(value, 1, 1e9, &d))
        return fail("--rate-burst: expected a number >= 1, got '" + value + "'");
      o.rate_burst = d;
    } else if (arg == "--ban-seconds") {
      if (!parseInt(value, 0, 86400, &n))
        return fail("--ban-seconds: expected seconds 0-86400, got '" + value + "'");
      o.ban_seconds = n;
    } else if (arg == "--pipeline-ms" || arg == "--mining-stall-ms") {
      if (!parseInt(value, 0, 600000, &n))
        return fail(arg + ": expected milliseconds 0-600000, got '" + value + "'");
      (arg == "--pipeline-ms" ? o.pipeline_ms : o.mining_stall_ms) = n;
    } else if (arg == "--energy-rate-limit") {
      if (!parseDouble(value, 0, 1e9, &d))
        return fail("--energy-rate-limit: expected requests per second >= 0, got '" + value + "'");
      o.energy_rate_limit = d;
    } else if (arg == "--auth-token") {
      if (value.empty() || value.find_first_of(" \t\r\n") != std::string::npos)
        return fail("--auth-token: expected a non-empty token without spaces");
      o.auth_token = value;
    } else if (arg == "--latency-ms") {
      std::string method = "*";
      std::string ms = value;
      auto eq = value.find('=');
      if (eq != std::string::npos) {
        method = value.substr(0, eq);
        ms = value.substr(eq + 1);
      }
      if (method.empty() || !parseInt(ms, 0, 3600000, &n))
        return fail("--latency-ms: expected MS or METHOD=MS (milliseconds), got '" + value + "'");
      o.faults.latency_ms[method] = n;
    } else if (arg == "--error-rate") {
      if (!parseDouble(value, 0, 1, &d))
        return fail("--error-rate: expected a fraction 0-1, got '" + value + "'");
      o.faults.error_rate = d;
    } else if (arg == "--fault-mode") {
      if (value == "none") value.clear();
      if (value.empty() || !Faults::validMode(value))
        return fail(
            "--fault-mode: expected http500, garbage, truncated, oversized, empty or hang, got '" +
            value + "'");
      o.faults.mode = value;
    } else if (arg == "--fault-rate") {
      if (!parseDouble(value, 0, 1, &d))
        return fail("--fault-rate: expected a fraction 0-1, got '" + value + "'");
      o.faults.mode_rate = d;
    } else if (arg == "--fault-methods") {
      auto list = splitComma(value);
      if (list.empty()) return fail("--fault-methods: expected a comma-separated method list");
      o.faults.methods.insert(list.begin(), list.end());
    } else if (arg == "--remove-method") {
      auto list = splitComma(value);
      if (list.empty()) return fail("--remove-method: expected a method name");
      o.faults.remove_methods.insert(list.begin(), list.end());
    } else if (arg == "--oversized-bytes") {
      if (!parseInt(value, 1, 1LL << 30, &n))
        return fail("--oversized-bytes: expected bytes 1-1073741824, got '" + value + "'");
      o.faults.oversized_bytes = n;
    } else if (arg == "--down-seconds") {
      if (!parseInt(value, 1, 3600, &n))
        return fail("--down-seconds: expected seconds 1-3600, got '" + value + "'");
      o.down_seconds = n;
    } else if (arg == "--down-after-ms") {
      if (!parseInt(value, 0, 3600000, &n))
        return fail("--down-after-ms: expected milliseconds 0-3600000, got '" + value + "'");
      o.down_after_ms = n;
    }
  }
  if (!listen_given || o.port < 0) o.port = o.profile == Profile::kSpec ? 9933 : 3030;
  if (o.rate_burst < 1) o.rate_burst = 1;
  return o;
}

}  // namespace devnode
