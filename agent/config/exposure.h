// Which surfaces of a config would serve data to anyone who can reach a non-loopback address:
// the warnings the agent logs at start and `--check-config` prints (docs/security.md).
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace bb {

/// True for 127.0.0.0/8, ::1 and "localhost".
bool isLoopbackHost(const std::string& host);

/// One line per surface (REST API, /metrics, WebSocket ports) that listens on a non-loopback
/// address with no authentication configured, saying what to set. The web page is left out:
/// it holds no data.
std::vector<std::string> exposureWarnings(const Config& config);

}  // namespace bb
