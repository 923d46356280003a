#include "host/plugin_options.h"

#include <blockbuster/json.h>

#include <stdexcept>

namespace bb {

using blockbuster::Json;

const char* configTypeName(int type) {
  switch (type) {
    case BB_CONFIG_BOOL:
      return "a boolean";
    case BB_CONFIG_INT:
      return "an integer";
    case BB_CONFIG_DOUBLE:
      return "a number";
    case BB_CONFIG_STRING:
      return "a string";
    case BB_CONFIG_STRING_LIST:
      return "a list of strings";
  }
  return "a value";
}

namespace {

bool matches(const Json& v, int type) {
  switch (type) {
    case BB_CONFIG_BOOL:
      return v.isBool();
    case BB_CONFIG_INT:
      return v.isInt();
    case BB_CONFIG_DOUBLE:
      return v.isNumber();
    case BB_CONFIG_STRING:
      return v.isString();
    case BB_CONFIG_STRING_LIST:
      if (!v.isArray()) return false;
      for (const auto& e : v.asArray())
        if (!e.isString()) return false;
      return true;
  }
  return false;
}

}  // namespace

std::string effectiveOptions(const PluginInfo& plugin, const std::string& options_json) {
  const std::string where = "plugins." + plugin.name + ".options";
  Json given;
  try {
    given = Json::parse(options_json.empty() ? "{}" : options_json);
  } catch (const blockbuster::JsonError& e) {
    throw std::runtime_error(where + ": " + e.what());
  }
  if (given.isNull()) given = Json::object();
  if (!given.isObject())
    throw std::runtime_error(where + ": expected a map of option: value, got " + given.typeName());
  std::string known;
  for (const auto& k : plugin.config_keys) known += (known.empty() ? "" : ", ") + k.name;
  for (const auto& member : given.asObject()) {
    const ConfigKeyInfo* key = nullptr;
    for (const auto& k : plugin.config_keys)
      if (k.name == member.first) key = &k;
    if (!key)
      throw std::runtime_error(where + "." + member.first + ": unknown option of plugin '" +
                               plugin.name +
                               "'; known options: " + (known.empty() ? "(none)" : known));
    if (!matches(member.second, key->type))
      throw std::runtime_error(where + "." + member.first + ": expected " +
                               configTypeName(key->type) + ", got " + member.second.typeName() +
                               " " + member.second.dump());
  }
  Json effective = Json::object();
  for (const auto& k : plugin.config_keys) {
    if (const Json* v = given.find(k.name)) {
      effective[k.name] = *v;
    } else if (!k.default_json.empty()) {
      try {
        effective[k.name] = Json::parse(k.default_json);
      } catch (const blockbuster::JsonError& e) {
        throw std::runtime_error(plugin.path + ": default of option '" + k.name +
                                 "' is not JSON (" + e.what() + "); fix the plugin");
      }
    }
  }
  return effective.dump();
}

}  // namespace bb
