// Fuzz target: the SDK's JSON parser (every node answer a plugin reads goes through it), and
// the round trip parse -> dump -> parse.
#include <blockbuster/json.h>

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    blockbuster::Json j = blockbuster::Json::parse(text);
    std::string out = j.dump();
    blockbuster::Json again = blockbuster::Json::parse(out);
    if (again.dump() != out) __builtin_trap();  // dump is a fixed point
  } catch (const blockbuster::JsonError&) {
  }
  return 0;
}
