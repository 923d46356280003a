// Fuzz target: the config loader on any YAML text. It either loads or throws ConfigError.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    bb::Config c = bb::parseConfig(text, "fuzz.yaml");
    bb::describeConfig(c);
  } catch (const bb::ConfigError& e) {
    std::string m = e.what();
    if (m.find('\n') != std::string::npos) __builtin_trap();  // errors are one line
  }
  return 0;
}
