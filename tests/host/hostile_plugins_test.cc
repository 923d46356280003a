// Hostile plugin files (issue 15): a truncated .so (defect 4) is refused by name instead of
// killing the agent with SIGBUS, and a plugin with isolation: process never runs any of its code
// in the agent, not even its static constructors (defect 3): its descriptor comes from
// bb-plugin-runner. The real agent, as a process.
#include <elf.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "integration/stack.h"

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Where the last loaded segment of an ELF file ends: the part of the file dlopen maps (debug
// sections after it are never mapped, so cutting those is harmless).
uintmax_t loadedEnd(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  Elf64_Ehdr eh{};
  in.read(reinterpret_cast<char*>(&eh), sizeof eh);
  uintmax_t end = 0;
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph{};
    in.seekg(static_cast<std::streamoff>(eh.e_phoff + i * sizeof ph));
    in.read(reinterpret_cast<char*>(&ph), sizeof ph);
    if (ph.p_type == PT_LOAD) end = std::max<uintmax_t>(end, ph.p_offset + ph.p_filesz);
  }
  return end;
}

// A copy of the built network plugin cut to `keep` of its loaded part, alone in `dir`/plugins.
std::string truncatedPlugin(const bbtest::TempDir& dir, double keep) {
  const std::string plugins = dir.file("plugins");
  fs::create_directories(plugins);
  const std::string file = plugins + "/bb_network.so";
  fs::copy_file(std::string(BB_TEST_PLUGIN_DIR) + "/bb_network.so", file,
                fs::copy_options::overwrite_existing);
  const uintmax_t end = loadedEnd(file);
  EXPECT_GT(end, 4096u);
  fs::resize_file(file, static_cast<uintmax_t>(static_cast<double>(end) * keep));
  return plugins;
}

TEST(HostilePlugins, ATruncatedPluginIsRefusedByName) {
  for (double keep : {0.9, 0.5, 0.02}) {
    bbtest::TempDir dir;
    const std::string plugins = truncatedPlugin(dir, keep);
    auto [status, output] = bbtest::runProgram(
        {bbtest::binPath("blockbuster-agent"), "--list-plugins", "--plugin-dir", plugins},
        {{"HOME", dir.path()}}, 30s);
    EXPECT_NE(status, 128 + SIGBUS) << "SIGBUS: " << output;
    EXPECT_EQ(status, 1) << output;  // listed as refused
    EXPECT_NE(output.find(plugins + "/bb_network.so: "), std::string::npos) << output;
    EXPECT_NE(output.find("truncated"), std::string::npos) << output;
  }
}

TEST(HostilePlugins, TheAgentStartsWithATruncatedPluginInItsDirectory) {
  bbtest::TempDir dir;
  const std::string plugins = truncatedPlugin(dir, 0.5);
  bbtest::DevNode node("spec");
  bbtest::Agent agent(dir, node.url(), "plugin_dir: " + plugins + "\n");
  EXPECT_EQ(bbtest::httpGet(agent.port(), "/health").status, 200);
  EXPECT_NE(agent.process().output().find(plugins + "/bb_network.so: "), std::string::npos)
      << agent.process().output();
}

TEST(HostilePlugins, AnIsolatedPluginsCodeNeverRunsInTheAgent) {
  // bb_runner_only aborts any process but bb-plugin-runner that loads it.
  bbtest::TempDir dir;
  auto [status, output] = bbtest::runProgram(
      {bbtest::binPath("blockbuster-agent"), "--list-plugins", "--plugin-dir", BB_RUNNER_ONLY_DIR},
      {{"HOME", dir.path()}}, 30s);
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("runner_only"), std::string::npos) << output;

  bbtest::DevNode node("spec");
  bbtest::Agent agent(dir, node.url(),
                      std::string("plugin_dir: ") + BB_RUNNER_ONLY_DIR +
                          "\nplugins:\n  runner_only:\n    isolation: process\n"
                          "    interval_ms: 200\n");
  std::string state;
  const bool ok = bbtest::eventually([&] {
    auto h = bbtest::httpGet(agent.port(), "/health").json();
    const auto& s = h["plugins"]["runner_only"]["state"];
    state = s.isString() ? s.asString() : h.dump();
    return state == "ok";
  });
  EXPECT_TRUE(ok) << state << "\n" << agent.process().output();
  EXPECT_TRUE(agent.process().running());
}

TEST(HostilePlugins, CheckConfigNeverLoadsAPluginIntoTheAgent) {
  // --check-config reads every plugin's descriptor and checks its options: through
  // bb-plugin-runner, so a plugin that kills the process loading it is no threat to it.
  bbtest::TempDir dir;
  dir.write("c.yaml", std::string("plugin_dir: ") + BB_RUNNER_ONLY_DIR +
                          "\nplugins:\n  runner_only:\n    isolation: process\n");
  auto [status, output] = bbtest::runProgram(
      {bbtest::binPath("blockbuster-agent"), "--check-config", "--config", dir.file("c.yaml")},
      {{"HOME", dir.path()}}, 30s);
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("config OK"), std::string::npos) << output;
}

}  // namespace
