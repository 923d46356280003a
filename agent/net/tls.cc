#include "net/tls.h"

#include <dlfcn.h>
#include <limits.h>
#include <unistd.h>

#include <cstdlib>

namespace bb {

void* tlsModuleSymbol(const char* symbol, std::string& error) {
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  std::string dir = n > 0 ? std::string(exe, static_cast<size_t>(n)) : std::string(".");
  dir = dir.substr(0, dir.rfind('/') + 1);
  const char* chosen = std::getenv("BLOCK_BUSTER_TLS_MODULE");  // e.g. for test programs
  const std::string path = chosen && *chosen ? chosen : dir + BB_TLS_MODULE_RELPATH;
  // dlopen of a module already loaded returns the same handle: each caller may ask once.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  void* found = handle ? dlsym(handle, symbol) : nullptr;
  if (!found) {
    const char* why = dlerror();
    error = "the TLS module " + path + " cannot be loaded (" +
            (why ? why : std::string("no ") + symbol) +
            "); install it with the agent, or remove the tls settings";
  }
  return found;
}

namespace net {

const TlsApi& tlsApi() { return tlsModuleApi<TlsApi>("bb_tls_stream_api"); }

TlsContext::TlsContext(const std::string& cert_file, const std::string& key_file,
                       const std::string& name, const std::string& config_key) {
  try {
    api_ = &tlsApi();
  } catch (const std::exception& e) {
    throw std::runtime_error(name + ": " + e.what());
  }
  char error[1024] = "";
  context_ = api_->server_context(cert_file.c_str(), key_file.c_str(), error, sizeof error);
  if (!context_)
    throw std::runtime_error((config_key.empty() ? name : config_key) +
                             ": cannot load the TLS certificate " + cert_file + " and key " +
                             key_file + (config_key.empty() ? "" : " for " + name) + " (" + error +
                             "); give PEM files readable by the agent, the key unencrypted");
}

TlsContext::~TlsContext() {
  if (context_) api_->free_context(context_);
}

}  // namespace net
}  // namespace bb
