// Loads plugin shared libraries through Boost.DLL (included only in plugin_loader.cc) and checks
// them against the plugin ABI before anything of theirs runs.
//
// Refusals are LoadError with one line naming the file, what is wrong and what to do.
#pragma once

#include <blockbuster/plugin_abi.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace bb {

class LoadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ConfigKeyInfo {
  std::string name;
  int type = BB_CONFIG_STRING;  ///< bb_config_type
  std::string default_json;     ///< "" = no default (the key is optional)
  std::string help;
};

struct PluginInfo {
  std::string name;
  std::string version;
  std::string description;
  std::string path;
  uint32_t abi_major = 0;
  uint32_t abi_minor = 0;
  std::vector<ConfigKeyInfo> config_keys;
};

/// A loaded plugin library. Owns the library handle: everything the plugin made must be
/// destroyed before this object (hold a shared_ptr to it wherever plugin code may still run).
class LoadedLibrary {
 public:
  ~LoadedLibrary();
  const PluginInfo& info() const { return info_; }
  /// False for a plugin described by bb-plugin-runner (describePlugin): its code is not in this
  /// process, and plugin() is all zero. openPlugin() loads it when it is to run here.
  bool loaded() const { return handle_ != nullptr; }
  /// The plugin's bb_plugin as this host knows it: members the plugin is too old to have are
  /// zero; members it has that this host does not know are ignored.
  const bb_plugin& plugin() const { return plugin_; }

 private:
  friend std::shared_ptr<LoadedLibrary> loadPlugin(const std::string& path);
  friend std::shared_ptr<LoadedLibrary> describePlugin(const std::string& path,
                                                       const std::string& runner);
  LoadedLibrary() = default;
  struct Handle;
  std::unique_ptr<Handle> handle_;  // declared first: destroyed last
  bb_plugin plugin_{};
  PluginInfo info_;
};

/// Checks that `path` is a 64-bit ELF shared object whose segments lie inside the file, before
/// anything maps it (a truncated file would raise SIGBUS in the process that maps it). Throws
/// LoadError naming the file.
void checkElfFile(const std::string& path);

/// Loads and checks one plugin file (checkElfFile first). Throws LoadError.
std::shared_ptr<LoadedLibrary> loadPlugin(const std::string& path);

/// The descriptor of one plugin file as bb-plugin-runner (`runner`) reads it in a process of its
/// own: the plugin's code (static constructors, bb_plugin_entry) never runs in this process,
/// and a plugin that crashes when loaded is refused instead of taking this process down. The
/// result is not loaded(). Throws LoadError naming the file.
std::shared_ptr<LoadedLibrary> describePlugin(const std::string& path, const std::string& runner);

/// The descriptor as JSON, as bb-plugin-runner --describe prints it and describePlugin reads it.
std::string describeJson(const PluginInfo& info);

/// The plugin files (*.so) of a directory, sorted. Throws LoadError when it cannot be read.
std::vector<std::string> findPluginFiles(const std::string& dir);

/// Loads every plugin of a directory, or of several given as "DIR:DIR..." (plugin_dir, then
/// plugin_dirs). A file that fails to load is reported in `errors` (one line each) and skipped;
/// a second plugin with a name already loaded (from any of the folders) is refused the same way.
/// With `runner` (the path of bb-plugin-runner) every file is described by it (describePlugin)
/// rather than loaded here.
std::vector<std::shared_ptr<LoadedLibrary>> loadPluginDir(const std::string& dir,
                                                          std::vector<std::string>& errors,
                                                          const std::string& runner = "");

/// Smallest struct_size of a bb_plugin this host accepts (ABI 1.0: up to `destroy`).
size_t minPluginStructSize();

}  // namespace bb
