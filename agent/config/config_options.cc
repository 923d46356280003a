// A plugin's options, YAML to JSON (config_values.h: optionsJson), and the token scan that keeps
// a config file's auth_token out of every message (secretsInText).
#include <blockbuster/json.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>

#include "config/config_values.h"

namespace bb::config_detail {
namespace {

constexpr size_t kMaxOptionsBytes =
    size_t{256} * 1024;                  // one plugin's options as JSON, aliases expanded
constexpr size_t kMaxOptionsDepth = 32;  // nesting of one plugin's options

void appendJsonString(std::string& out, const std::string& s) {
  blockbuster::Json::appendString(out, s);
}

// A plain (untagged) scalar resolved by the YAML 1.2 core schema, appended as JSON.
void appendPlainScalar(const Context& ctx, const std::string& path, const std::string& s,
                       std::string& out) {
  if (s == "true" || s == "True" || s == "TRUE") {
    out += "true";
    return;
  }
  if (s == "false" || s == "False" || s == "FALSE") {
    out += "false";
    return;
  }
  int64_t n = 0;
  switch (parseDecimal(s, &n)) {
    case IntParse::kOk:
      out += std::to_string(n);
      return;
    case IntParse::kOverflow:
      // Valid JSON still: readers that cannot hold it exactly make it a double.
      out += formatDouble(std::strtod(s.c_str(), nullptr));
      return;
    case IntParse::kNotInteger:
      break;
  }
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    const int base = s[1] == 'x' ? 16 : 8;
    const std::string digits = s.substr(2);
    const char* valid = base == 16 ? "0123456789abcdefABCDEF" : "01234567";
    if (digits.find_first_not_of(valid) == std::string::npos) {
      errno = 0;
      unsigned long long v = std::strtoull(digits.c_str(), nullptr, base);
      if (errno == ERANGE || v > static_cast<unsigned long long>(INT64_MAX)) {
        ctx.fail(path, s + " is out of range", "expected an integer that fits in 64 bits");
      }
      out += std::to_string(v);
      return;
    }
  }
  if (looksLikeFloat(s)) {
    double d = std::strtod(s.c_str(), nullptr);
    if (!std::isfinite(d)) {
      ctx.fail(path, s + " is out of range", "expected a number JSON can hold");
    }
    out += formatDouble(d);
    return;
  }
  if (isInfOrNan(s)) {
    ctx.fail(path, s + " has no JSON equivalent",
             "write a finite number, or quote it for a string");
  }
  appendJsonString(out, s);
}

// Plugin options as JSON, bounded: YAML aliases (*name) repeat what their anchor (&name) holds,
// so a few hundred bytes of nested aliases expand to gigabytes, and an alias inside its own
// anchor is a cycle. `inside` holds the nodes from the options' root down to `node`.
struct JsonBudget {
  std::vector<YAML::Node> inside;
};

void appendJson(const Context& ctx, const YAML::Node& node, const std::string& path,
                std::string& out, JsonBudget& budget) {
  for (const YAML::Node& outer : budget.inside) {
    if (outer.is(node)) {
      ctx.fail(path, "an alias refers to the mapping or list that holds it (a cycle)",
               "replace the alias (*name) with the values it should repeat");
    }
  }
  if (budget.inside.size() >= kMaxOptionsDepth) {
    ctx.fail(path, "nested more than " + std::to_string(kMaxOptionsDepth) + " levels deep",
             "flatten the options");
  }
  if (out.size() > kMaxOptionsBytes) {
    ctx.fail(path,
             "the options grow past " + std::to_string(kMaxOptionsBytes / 1024) +
                 " KiB as JSON (aliases repeat what their anchor holds)",
             "write the options out without nested aliases");
  }
  budget.inside.push_back(node);
  struct Pop {
    JsonBudget& b;
    ~Pop() { b.inside.pop_back(); }
  } pop{budget};
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      out += '{';
      std::set<std::string> seen;
      bool first = true;
      for (auto it = node.begin(); it != node.end(); ++it) {
        if (!it->first.IsScalar()) {
          ctx.fail(path, "a key is not a plain name", "write option names as plain words");
        }
        const std::string key = it->first.Scalar();
        const std::string where = childPath(path, key);
        if (!seen.insert(key).second) {
          ctx.fail(where, "duplicate key", "keep one of the two entries");
        }
        if (!first) {
          out += ", ";
        }
        first = false;
        appendJsonString(out, key);
        out += ": ";
        appendJson(ctx, it->second, where, out, budget);
      }
      out += '}';
      return;
    }
    case YAML::NodeType::Sequence: {
      out += '[';
      for (size_t i = 0; i < node.size(); ++i) {
        if (i > 0) {
          out += ", ";
        }
        appendJson(ctx, node[i], path + "[" + std::to_string(i) + "]", out, budget);
      }
      out += ']';
      return;
    }
    case YAML::NodeType::Scalar: {
      const std::string& tag = node.Tag();
      const std::string& s = node.Scalar();
      if (tag == "?") {
        appendPlainScalar(ctx, path, s, out);
      } else if (tag == "tag:yaml.org,2002:int" || tag == "tag:yaml.org,2002:float" ||
                 tag == "tag:yaml.org,2002:bool" || tag == "tag:yaml.org,2002:null") {
        // An explicit !!int/!!float/!!bool/!!null resolves like the plain form.
        if (tag == "tag:yaml.org,2002:null") {
          out += "null";
        } else {
          appendPlainScalar(ctx, path, s, out);
        }
      } else {
        appendJsonString(out, s);
      }
      return;
    }
    default:
      out += "null";
      return;
  }
}

}  // namespace

std::string optionsJson(const Context& ctx, const YAML::Node& node, const std::string& path) {
  std::string json;
  JsonBudget budget;
  appendJson(ctx, node, path, json, budget);
  return json;
}

std::vector<std::string> secretsInText(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    size_t key = line.find("auth_token");
    if (key == std::string::npos) {
      continue;
    }
    size_t colon = line.find(':', key);
    if (colon == std::string::npos) {
      continue;
    }
    std::string value = line.substr(colon + 1);
    size_t b = value.find_first_not_of(" \t");
    size_t e = value.find_last_not_of(" \t\r");
    if (b == std::string::npos) {
      continue;
    }
    value = value.substr(b, e - b + 1);
    if (value.front() == '"' || value.front() == '\'') {
      size_t close = value.find(value.front(), 1);
      value = value.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    } else {
      size_t comment = value.find(" #");
      if (comment != std::string::npos) {
        value = value.substr(0, value.find_last_not_of(" \t", comment) + 1);
      }
    }
    if (!value.empty()) {
      out.push_back(value);
    }
  }
  return out;
}

}  // namespace bb::config_detail
