// describeConfig() (config.h): the effective config as YAML through yaml-cpp's emitter, every key
// of the schema (config/schema.h) in its order. Strings are double-quoted so that each reads back
// as the same string; secrets are shown as "<redacted>" (auth_token, a URL's user info) or by
// their shape only (auth:, whose hashes stay in the file).
#include <blockbuster/json.h>
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "config/config_values.h"
#include "config/node_url.h"
#include "config/schema.h"

namespace bb {
namespace {

using config_detail::formatDouble;
using config_detail::kRedacted;

void emitJson(YAML::Emitter& out, const blockbuster::Json& j) {
  using Type = blockbuster::Json::Type;
  switch (j.type()) {
    case Type::Null:
      out << YAML::Null;
      return;
    case Type::Bool:
      out << j.asBool();
      return;
    case Type::Int:
      out << j.asInt();
      return;
    case Type::Double:
      out << formatDouble(j.asDouble());
      return;
    case Type::String:
      out << YAML::DoubleQuoted << j.asString();
      return;
    case Type::Array:
      out << YAML::Flow << YAML::BeginSeq;
      for (const auto& item : j.asArray()) emitJson(out, item);
      out << YAML::EndSeq;
      return;
    case Type::Object:
      out << YAML::Flow << YAML::BeginMap;
      for (const auto& [key, value] : j.asObject()) {
        out << YAML::Key << YAML::DoubleQuoted << key << YAML::Value;
        emitJson(out, value);
      }
      out << YAML::EndMap;
      return;
  }
}

// A plugin's options: JSON is YAML's flow syntax, so they read back as the same values.
void emitOptions(YAML::Emitter& out, const std::string& options_json) {
  try {
    emitJson(out, blockbuster::Json::parse(options_json));
  } catch (const blockbuster::JsonError&) {
    out << YAML::DoubleQuoted << options_json;  // not JSON (cannot happen from parseConfig)
  }
}

template <class Obj>
void emitValue(YAML::Emitter& out, const KeySpec<Obj>& key, Obj& object);

struct EmitField {
  YAML::Emitter& out;
  KeyType type;
  void operator()(const int* v) const { out << *v; }
  void operator()(const int64_t* v) const { out << *v; }
  void operator()(const double* v) const { out << formatDouble(*v); }
  void operator()(const bool* v) const { out << *v; }
  void operator()(const std::string* v) const {
    switch (type) {
      case KeyType::kToken:
        out << YAML::DoubleQuoted << (v->empty() ? "" : kRedacted);
        return;
      case KeyType::kUrl:
      case KeyType::kWsUrl:
      case KeyType::kOptionalUrl:
        out << YAML::DoubleQuoted << redactUrlCredentials(*v);
        return;
      case KeyType::kOptions:
        emitOptions(out, *v);
        return;
      default:
        out << YAML::DoubleQuoted << *v;
        return;
    }
  }
  void operator()(const std::vector<std::string>* v) const {
    out << YAML::Flow << YAML::BeginSeq;
    for (const std::string& item : *v) out << YAML::DoubleQuoted << item;
    out << YAML::EndSeq;
  }
  void operator()(const std::vector<AuthSurface::BasicUser>*) const {
    out << YAML::Null;  // secret: described by describeAuth(), never emitted
  }
  void operator()(std::map<std::string, PluginConfig>* plugins) const {
    if (plugins->empty()) {
      out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
      return;
    }
    out << YAML::BeginMap;
    for (auto& [name, plugin] : *plugins) {
      out << YAML::Key << name << YAML::Value << YAML::BeginMap;
      for (const PluginKey& key : pluginKeys()) {
        out << YAML::Key << key.path << YAML::Value;
        emitValue(out, key, plugin);
      }
      out << YAML::EndMap;
    }
    out << YAML::EndMap;
  }
};

template <class Obj>
void emitValue(YAML::Emitter& out, const KeySpec<Obj>& key, Obj& object) {
  std::visit(EmitField{out, key.type}, key.field(object));
}

// auth: only its shape, as comments: hashes of weak passwords can be brute-forced, so they stay
// in the file, and `auth:` alone (open) keeps the output a config that parses.
void describeAuth(YAML::Emitter& out, const AuthConfig& auth) {
  out << YAML::Key << "auth" << YAML::Value << YAML::Null << YAML::Comment("hashes not shown");
  const std::pair<const char*, const AuthSurface*> surfaces[] = {
      {"api", &auth.api}, {"metrics", &auth.metrics}, {"ws", &auth.ws}};
  for (const auto& [name, surface] : surfaces) {
    std::string line = std::string(name) + ": ";
    if (surface->open()) {
      line += "open (no authentication)";
    } else {
      line +=
          std::to_string(surface->bearer_sha256.size()) + " bearer token hash(es); basic users: [";
      for (size_t i = 0; i < surface->basic.size(); ++i) {
        std::string user;
        blockbuster::Json::appendString(user, surface->basic[i].user);
        line += (i == 0 ? "" : ", ") + user;
      }
      line += "]";
    }
    out << YAML::Newline << YAML::Comment(line);
  }
}

// The leading sections of `path` ("http.tls.cert_file" -> {"http", "tls"}).
std::vector<std::string> sectionsOf(const std::string& path) {
  std::vector<std::string> out;
  for (size_t start = 0, dot; (dot = path.find('.', start)) != std::string::npos; start = dot + 1)
    out.push_back(path.substr(start, dot - start));
  return out;
}

}  // namespace

std::string describeConfig(const Config& config) {
  std::string head = "# source: " + config_detail::oneLine(config.source);
  if (config.env_overrides.empty()) {
    head += "; no environment overrides\n";
  } else {
    head += "; overridden by environment:";
    for (size_t i = 0; i < config.env_overrides.size(); ++i)
      head += (i == 0 ? " " : ", ") + config.env_overrides[i].first + " -> " +
              config.env_overrides[i].second;
    head += "\n";
  }
  // The emitter only reads through the fields.
  Config& c = const_cast<Config&>(config);
  YAML::Emitter out;
  out << YAML::BeginMap;
  std::vector<std::string> open;  // the sections the emitter is inside
  bool auth_done = false;
  for (const ConfigKey& key : configKeys()) {
    const std::string path = key.path;
    std::vector<std::string> sections = sectionsOf(path);
    size_t common = 0;
    while (common < open.size() && common < sections.size() && open[common] == sections[common])
      ++common;
    for (; open.size() > common; open.pop_back()) out << YAML::EndMap;
    if (!sections.empty() && sections[0] == "auth") {
      if (!auth_done) describeAuth(out, config.auth);
      auth_done = true;
      continue;
    }
    for (; open.size() < sections.size(); open.push_back(sections[open.size()]))
      out << YAML::Key << sections[open.size()] << YAML::Value << YAML::BeginMap;
    out << YAML::Key << path.substr(path.rfind('.') + 1) << YAML::Value;
    emitValue(out, key, c);
  }
  for (; !open.empty(); open.pop_back()) out << YAML::EndMap;
  out << YAML::EndMap;
  return head + out.c_str() + "\n";
}

}  // namespace bb
