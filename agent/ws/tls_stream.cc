#include "ws/tls_stream.h"

#include <dlfcn.h>
#include <limits.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>

namespace bb::ws {

const TlsStreamApi& tlsStreamApi() {
  static std::mutex mutex;
  static const TlsStreamApi* api = nullptr;
  static std::string error;
  std::lock_guard<std::mutex> lock(mutex);
  if (!api && error.empty()) {
    // The same module, found the same way, as the HTTP listeners' TLS (http/server.cc).
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    std::string dir = n > 0 ? std::string(exe, static_cast<size_t>(n)) : std::string(".");
    dir = dir.substr(0, dir.rfind('/') + 1);
    const char* chosen = std::getenv("BLOCK_BUSTER_TLS_MODULE");  // e.g. for test programs
    const std::string path = chosen && *chosen ? chosen : dir + BB_TLS_MODULE_RELPATH;
    using Get = const TlsStreamApi* (*)();
    Get get = nullptr;
    if (void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL))
      get = reinterpret_cast<Get>(dlsym(handle, "bb_tls_stream_api"));
    if (get) api = get();
    if (!api) {
      const char* why = dlerror();
      error = "the TLS module " + path + " cannot be loaded (" +
              (why ? why : "no bb_tls_stream_api") +
              "); install it with the agent, or remove the tls settings";
    }
  }
  if (!api) throw std::runtime_error(error);
  return *api;
}

}  // namespace bb::ws
