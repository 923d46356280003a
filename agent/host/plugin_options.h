// Checks a plugin's options (plugins.<name>.options of the config) against the keys the plugin
// declares, and applies their defaults, before the plugin's create() ever sees them.
#pragma once

#include <string>
#include <vector>

#include "host/plugin_loader.h"

namespace bb {

/// Returns the effective options as a JSON object text. Throws std::runtime_error with one line
/// "plugins.<plugin>.options.<key>: <what is wrong>; <expected>" for an unknown key (with the
/// known keys listed), a wrong type, or options that are not a map.
std::string effectiveOptions(const PluginInfo& plugin, const std::string& options_json);

const char* configTypeName(int type);

}  // namespace bb
