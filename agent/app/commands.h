// The agent's one-shot commands: each prints its answer on stdout (errors on stderr) and returns
// the process's exit status.
#pragma once

#include <string>

#include "config/config.h"

namespace bb {

/// --check-config: the node URL and TLS settings as the RPC client takes them, the plugins'
/// options as PluginManager checks them at start, the listener plan; then the effective config
/// with secrets redacted. 0 when start would accept it, 2 otherwise.
int checkConfig(const Config& config, const std::string& plugin_dirs);

/// --list-plugins: every plugin of `plugin_dirs`, with its version, ABI and options.
int listPlugins(const std::string& plugin_dirs);

/// --print-default-config: the commented default config, its plugins section written out from
/// the plugins found, each with its declared options at their defaults (it loads as it is).
int printDefaultConfig(const std::string& plugin_dirs);

}  // namespace bb
