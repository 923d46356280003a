#include "ws/tls_stream.h"

#include <mutex>
#include <stdexcept>
#include <string>

#include "http/server.h"

namespace bb::ws {

const TlsStreamApi& tlsStreamApi() {
  static std::mutex mutex;
  static const TlsStreamApi* api = nullptr;
  static std::string error;
  std::lock_guard<std::mutex> lock(mutex);
  if (!api && error.empty()) {
    using Get = const TlsStreamApi* (*)();
    if (auto get = reinterpret_cast<Get>(tlsModuleSymbol("bb_tls_stream_api", error))) api = get();
  }
  if (!api) throw std::runtime_error(error);
  return *api;
}

}  // namespace bb::ws
