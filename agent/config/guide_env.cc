// The Python server's environment variables beyond the guide's list (config.h,
// applyGuideEnvironment). Poco here only for SHA-256: the config holds hashes, never tokens.
#include <Poco/DigestEngine.h>
#include <Poco/SHA2Engine.h>

#include "config/config.h"

namespace bb {

void applyGuideEnvironment(Config& config, const std::map<std::string, std::string>& env) {
  // METRICS_AUTH_TOKEN: the bearer token of /metrics, as the Python server takes it. It replaces
  // the bearer tokens of auth.metrics (basic users stay) on every listener that serves /metrics.
  auto it = env.find("METRICS_AUTH_TOKEN");
  if (it != env.end() && !it->second.empty()) {
    for (char c : it->second) {
      auto u = static_cast<unsigned char>(c);
      if (u <= 0x20 || u == 0x7f)
        throw ConfigError(
            "environment: METRICS_AUTH_TOKEN: the token contains a space or control character; "
            "expected the bearer token alone, on one line, without surrounding spaces");
    }
    Poco::SHA2Engine engine(Poco::SHA2Engine::SHA_256);
    engine.update(it->second);
    config.auth.metrics.bearer_sha256 = {"sha256:" +
                                         Poco::DigestEngine::digestToHex(engine.digest())};
    config.env_overrides.emplace_back("METRICS_AUTH_TOKEN", "auth.metrics.bearer_sha256");
  }
}

}  // namespace bb
