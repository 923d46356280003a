// JSON helpers for bb-devnode: the real node writes object keys sorted, so do we.
#pragma once

#include <blockbuster/json.h>

#include <algorithm>
#include <string>
#include <vector>

namespace devnode {

using blockbuster::Json;

/// Appends `value` as compact JSON with every object's keys in byte order.
inline void dumpSortedTo(const Json& value, std::string& out) {
  if (value.isArray()) {
    out += '[';
    bool first = true;
    for (const auto& v : value.asArray()) {
      if (!first) out += ',';
      first = false;
      dumpSortedTo(v, out);
    }
    out += ']';
    return;
  }
  if (value.isObject()) {
    const auto& members = value.asObject();
    std::vector<const Json::Member*> sorted;
    sorted.reserve(members.size());
    for (const auto& m : members) sorted.push_back(&m);
    std::sort(sorted.begin(), sorted.end(),
              [](const Json::Member* a, const Json::Member* b) { return a->first < b->first; });
    out += '{';
    bool first = true;
    for (const auto* m : sorted) {
      if (!first) out += ',';
      first = false;
      Json::appendString(out, m->first);
      out += ':';
      dumpSortedTo(m->second, out);
    }
    out += '}';
    return;
  }
  value.dumpTo(out);
}

inline std::string dumpSorted(const Json& value) {
  std::string out;
  dumpSortedTo(value, out);
  return out;
}

}  // namespace devnode
