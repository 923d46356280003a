#include "host/plugin_loader.h"

#include <dlfcn.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cstring>
#include <filesystem>
#include <map>
#include <regex>

namespace bb {

struct LoadedLibrary::Handle {
  boost::dll::shared_library lib;
};

LoadedLibrary::~LoadedLibrary() = default;

size_t minPluginStructSize() { return offsetof(bb_plugin, destroy) + sizeof(void (*)(void*)); }

namespace {

std::string text(const char* s) { return s ? s : ""; }

std::vector<ConfigKeyInfo> readKeys(const bb_plugin& p, const std::string& path) {
  std::vector<ConfigKeyInfo> keys;
  if (!p.config_keys || p.config_key_count == 0) return keys;
  size_t stride = p.config_keys[0].struct_size;
  size_t min_size = offsetof(bb_config_key, help) + sizeof(const char*);
  if (stride < min_size)
    throw LoadError(path + ": config key struct_size " + std::to_string(stride) +
                    " is smaller than bb_config_key of ABI 1.0 (" + std::to_string(min_size) +
                    "); rebuild the plugin against the SDK");
  const char* base = reinterpret_cast<const char*>(p.config_keys);
  for (uint32_t i = 0; i < p.config_key_count; ++i) {
    bb_config_key k{};
    std::memcpy(&k, base + i * stride, std::min(stride, sizeof k));
    if (!k.name || !*k.name)
      throw LoadError(path + ": config key #" + std::to_string(i) + " has no name");
    if (k.type > BB_CONFIG_STRING_LIST)
      throw LoadError(path + ": config key '" + k.name + "' has unknown type " +
                      std::to_string(k.type));
    keys.push_back({k.name, static_cast<int>(k.type), text(k.default_json), text(k.help)});
  }
  return keys;
}

}  // namespace

std::shared_ptr<LoadedLibrary> loadPlugin(const std::string& path) {
  std::shared_ptr<LoadedLibrary> loaded(new LoadedLibrary());
  loaded->handle_ = std::make_unique<LoadedLibrary::Handle>();
  auto& lib = loaded->handle_->lib;
  boost::dll::fs::error_code ec;
  lib.load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
  if (ec || !lib.is_loaded()) {
    const char* why = dlerror();
    throw LoadError(path + ": not a loadable shared library (" +
                    (why ? std::string(why) : ec.message()) +
                    "); remove it from the plugin directory or rebuild it");
  }
  if (!lib.has(BB_PLUGIN_ENTRY_SYMBOL))
    throw LoadError(path + ": no '" BB_PLUGIN_ENTRY_SYMBOL
                           "' symbol; is it a Block Buster plugin? Build it with "
                           "BLOCKBUSTER_PLUGIN(...) and blockbuster_add_plugin()");
  auto entry = lib.get<const bb_plugin*()>(BB_PLUGIN_ENTRY_SYMBOL);
  const bb_plugin* p = entry();
  if (!p) throw LoadError(path + ": " BB_PLUGIN_ENTRY_SYMBOL "() returned NULL");
  if (p->struct_size < offsetof(bb_plugin, abi_minor) + sizeof(uint32_t))
    throw LoadError(path + ": bb_plugin struct_size " + std::to_string(p->struct_size) +
                    " is too small to be a plugin descriptor");
  if (p->abi_major != BB_ABI_VERSION_MAJOR)
    throw LoadError(path + ": built for plugin ABI " + std::to_string(p->abi_major) + "." +
                    std::to_string(p->abi_minor) + ", this agent speaks ABI " +
                    std::to_string(BB_ABI_VERSION_MAJOR) + "." +
                    std::to_string(BB_ABI_VERSION_MINOR) + "; rebuild the plugin against SDK " +
                    std::to_string(BB_ABI_VERSION_MAJOR) + ".x");
  if (p->struct_size < minPluginStructSize())
    throw LoadError(path + ": bb_plugin struct_size " + std::to_string(p->struct_size) +
                    " is smaller than ABI 1.0's " + std::to_string(minPluginStructSize()) +
                    "; the descriptor is truncated, rebuild the plugin against the SDK");
  // Copy what both sides know; a newer plugin's extra members are ignored, an older one's
  // missing members stay zero.
  std::memcpy(&loaded->plugin_, p, std::min<size_t>(p->struct_size, sizeof(bb_plugin)));
  const bb_plugin& c = loaded->plugin_;
  static const std::regex kName("[a-z][a-z0-9_]{0,63}");
  if (!c.name || !std::regex_match(c.name, kName))
    throw LoadError(path + ": plugin name '" + text(c.name) +
                    "' is invalid; a name is [a-z][a-z0-9_]*, at most 64 characters");
  if (!c.create || !c.collect || !c.destroy)
    throw LoadError(path + ": plugin '" + c.name +
                    "' lacks a required function (create, collect and destroy are required)");
  auto& info = loaded->info_;
  info.name = c.name;
  info.version = text(c.version);
  info.description = text(c.description);
  info.path = path;
  info.abi_major = c.abi_major;
  info.abi_minor = c.abi_minor;
  info.config_keys = readKeys(c, path);
  return loaded;
}

std::vector<std::string> findPluginFiles(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> files;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec)
    throw LoadError(dir + ": cannot read the plugin directory (" + ec.message() +
                    "); set plugin_dir in the config or --plugin-dir");
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const auto& p = it->path();
    if (p.extension() == ".so" && (it->is_regular_file(ec) || it->is_symlink(ec)))
      files.push_back(p.string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<std::shared_ptr<LoadedLibrary>> loadPluginDir(const std::string& dir,
                                                          std::vector<std::string>& errors) {
  std::vector<std::shared_ptr<LoadedLibrary>> out;
  std::map<std::string, std::string> seen;
  std::vector<std::string> files;
  for (size_t start = 0; start <= dir.size();) {  // "DIR[:DIR...]", in that order
    size_t end = dir.find(':', start);
    if (end == std::string::npos) end = dir.size();
    for (auto& f : findPluginFiles(dir.substr(start, end - start))) files.push_back(std::move(f));
    start = end + 1;
  }
  for (const auto& file : files) {
    try {
      auto lib = loadPlugin(file);
      auto it = seen.find(lib->info().name);
      if (it != seen.end()) {
        errors.push_back(file + ": a plugin named '" + lib->info().name +
                         "' is already loaded from " + it->second + "; remove one of them");
        continue;
      }
      seen[lib->info().name] = file;
      out.push_back(std::move(lib));
    } catch (const LoadError& e) {
      errors.push_back(e.what());
    }
  }
  return out;
}

}  // namespace bb
