#include "host/plugin_loader.h"

#include <blockbuster/json.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <regex>

extern char** environ;

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

void checkElfFile(const std::string& path) {
  // dlopen maps each PT_LOAD segment of the file; a page of one that lies past the end of a
  // truncated file raises SIGBUS when touched, which kills the whole agent. Read the headers
  // ourselves first and refuse a file that does not hold what they describe.
  const auto refuse = [&](const std::string& why) {
    throw LoadError(path + ": not a loadable shared library (" + why +
                    "); remove it from the plugin directory or rebuild it");
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) refuse(std::string("cannot open: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) refuse("not a regular file");
  const auto size = static_cast<uint64_t>(st.st_size);
  Elf64_Ehdr eh{};
  if (::pread(fd, &eh, sizeof eh, 0) != static_cast<ssize_t>(sizeof eh) ||
      std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
    refuse("no ELF header");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_type != ET_DYN)
    refuse("not a 64-bit ELF shared object");
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 4096 ||
      eh.e_phoff > size || size - eh.e_phoff < uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr))
    refuse("its program headers lie outside the file (" + std::to_string(size) +
           " bytes): the file is truncated");
  std::vector<Elf64_Phdr> ph(eh.e_phnum);
  const auto bytes = static_cast<ssize_t>(ph.size() * sizeof(Elf64_Phdr));
  if (::pread(fd, ph.data(), static_cast<size_t>(bytes), static_cast<off_t>(eh.e_phoff)) != bytes)
    refuse("cannot read its program headers");
  for (const auto& p : ph) {
    if (p.p_type != PT_LOAD && p.p_type != PT_DYNAMIC) continue;
    if (p.p_offset > size || size - p.p_offset < p.p_filesz)
      refuse("a segment ends at byte " + std::to_string(p.p_offset + p.p_filesz) +
             " but the file has " + std::to_string(size) + ": the file is truncated");
  }
}

std::shared_ptr<LoadedLibrary> loadPlugin(const std::string& path) {
  checkElfFile(path);
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

std::string describeJson(const PluginInfo& info) {
  using blockbuster::Json;
  Json keys = Json::array();
  for (const auto& k : info.config_keys)
    keys.push_back(Json{{"name", k.name},
                        {"type", static_cast<int64_t>(k.type)},
                        {"default_json", k.default_json},
                        {"help", k.help}});
  return Json{{"name", info.name},
              {"version", info.version},
              {"description", info.description},
              {"abi_major", static_cast<int64_t>(info.abi_major)},
              {"abi_minor", static_cast<int64_t>(info.abi_minor)},
              {"config_keys", keys}}
      .dump();
}

std::shared_ptr<LoadedLibrary> describePlugin(const std::string& path, const std::string& runner) {
  using Clock = std::chrono::steady_clock;
  // Reading a descriptor takes milliseconds; a plugin whose loading hangs is refused after this.
  constexpr auto kDescribeTimeout = std::chrono::seconds(10);
  const auto refuse = [&](const std::string& why) {
    throw LoadError(path + ": " + why + "; remove it from the plugin directory or rebuild it");
  };
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) refuse("cannot start bb-plugin-runner (pipe)");
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    refuse("cannot start bb-plugin-runner (pipe)");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  const char* argv[] = {runner.c_str(), "--describe", path.c_str(), nullptr};
  pid_t pid = -1;
  const int rc =
      posix_spawn(&pid, runner.c_str(), &actions, nullptr, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  std::string out, err;
  if (rc == 0) {
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    const auto deadline = Clock::now() + kDescribeTimeout;
    int open_fds = 2;
    while (open_fds > 0) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) {
        ::kill(pid, SIGKILL);
        break;
      }
      if (::poll(fds, 2, static_cast<int>(left)) < 0 && errno != EINTR) break;
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        char buf[4096];
        const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
        std::string& into = i == 0 ? out : err;
        if (n > 0 && into.size() < (1u << 20)) into.append(buf, static_cast<size_t>(n));
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
          fds[i].fd = -1;
          --open_fds;
        }
      }
    }
  }
  ::close(out_pipe[0]);
  ::close(err_pipe[0]);
  if (rc != 0) refuse("cannot start bb-plugin-runner " + runner + " (" + std::strerror(rc) + ")");
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  while (!err.empty() && (err.back() == '\n' || err.back() == '\r')) err.pop_back();
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    refuse(std::string("the plugin crashed while bb-plugin-runner loaded it (") + strsignal(sig) +
           "); the agent never loads it itself");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    // The runner's message names the file already (it is a LoadError of loadPlugin).
    const std::string prefix = "bb-plugin-runner: ";
    if (err.rfind(prefix, 0) == 0) err.erase(0, prefix.size());
    throw LoadError(err.empty() ? path + ": bb-plugin-runner could not read the plugin" : err);
  }
  std::shared_ptr<LoadedLibrary> described(new LoadedLibrary());
  PluginInfo& info = described->info_;
  try {
    const auto j = blockbuster::Json::parse(out);
    info.name = j["name"].asString();
    info.version = j["version"].asString();
    info.description = j["description"].asString();
    info.abi_major = static_cast<uint32_t>(j["abi_major"].asInt());
    info.abi_minor = static_cast<uint32_t>(j["abi_minor"].asInt());
    for (const auto& k : j["config_keys"].asArray())
      info.config_keys.push_back({k["name"].asString(), static_cast<int>(k["type"].asInt()),
                                  k["default_json"].asString(), k["help"].asString()});
  } catch (const std::exception& e) {
    refuse(std::string("bb-plugin-runner described it in a form this agent cannot read (") +
           e.what() + ")");
  }
  info.path = path;
  return described;
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
                                                          std::vector<std::string>& errors,
                                                          const std::string& runner) {
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
      auto lib = runner.empty() ? loadPlugin(file) : describePlugin(file, runner);
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
