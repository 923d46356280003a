#include "config/exposure.h"

namespace bb {

bool isLoopbackHost(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

std::vector<std::string> exposureWarnings(const Config& config) {
  struct Exposed {
    const Listener* listener;
    const AuthSurface* auth;
    const char* what;
    const char* key;
  };
  std::vector<std::string> out;
  for (const Exposed& e :
       {Exposed{&config.http, &config.auth.api, "the REST API", "auth.api"},
        Exposed{&config.http, &config.auth.metrics, "/metrics", "auth.metrics"},
        Exposed{&config.ws, &config.auth.ws, "the WebSocket ports", "auth.ws"}}) {
    if (e.listener->port < 0 || isLoopbackHost(e.listener->host) || !e.auth->open()) continue;
    out.push_back("listening on " + e.listener->host + ":" + std::to_string(e.listener->port) +
                  " without authentication for " + e.what +
                  ": anyone who can reach this address can read it; set " + e.key +
                  " in the config (docs/security.md), bind 127.0.0.1, or put an "
                  "authenticating proxy in front");
  }
  return out;
}

}  // namespace bb
