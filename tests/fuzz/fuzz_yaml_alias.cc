// Fuzz target: YAML anchors and aliases where they can multiply: plugin options, which the
// loader turns into JSON. The input is a plugin's options block. It loads, or it is refused with
// one line naming the file; it never recurses without bound or expands past the cap
// (docs/security.md, "Bounded input"), which libFuzzer's -rss_limit_mb and -timeout would catch.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text = "plugins:\n  network:\n    options:\n";
  std::string line = "      ";
  for (size_t i = 0; i < size; ++i) {
    const char c = static_cast<char>(data[i]);
    line += c;
    if (c == '\n') {
      text += line;
      line = "      ";
    }
  }
  text += line + "\n";
  try {
    bb::Config c = bb::parseConfig(text, "fuzz.yaml");
    auto it = c.plugins.find("network");
    if (it != c.plugins.end() && it->second.options_json.size() > 512 * 1024) __builtin_trap();
  } catch (const bb::ConfigError& e) {
    const std::string m = e.what();
    // One line (the file name may show redacted: a token can be any text, "fuzz" included).
    if (m.find('\n') != std::string::npos) __builtin_trap();
  }
  return 0;
}
