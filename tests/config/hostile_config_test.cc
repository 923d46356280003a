// Hostile config files (issue 15, defects 2 and 10): YAML aliases that form a cycle or expand
// without bound, files that are huge or not files at all. Each is refused with a message naming
// the file and the key; none crashes, loops or eats the machine. The risky parses run in a child
// process (gtest's EXPECT_EXIT) with its address space capped at 1 GiB, so that the behaviour
// before the fix (a stack overflow, gigabytes of JSON) fails the test instead of the machine.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "config/config.h"
#include "support/process.h"

namespace {

// In the child: exits 0 when parsing `yaml` throws a ConfigError containing `expected`.
void parseExpectingError(const std::string& yaml, const std::string& expected) {
  rlimit as{1ull << 30, 1ull << 30};
  setrlimit(RLIMIT_AS, &as);
  try {
    bb::parseConfig(yaml, "hostile.yaml");
  } catch (const bb::ConfigError& e) {
    const std::string what = e.what();
    if (what.rfind("hostile.yaml: ", 0) == 0 && what.find(expected) != std::string::npos)
      std::exit(0);
    std::fprintf(stderr, "message: %s\n", e.what());
    std::exit(3);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "threw %s\n", e.what());
    std::exit(4);
  }
  std::fprintf(stderr, "accepted\n");
  std::exit(5);
}

TEST(HostileConfig, AnAliasInsideItsOwnAnchorIsACycle) {
  EXPECT_EXIT(parseExpectingError("plugins:\n  network:\n    options: &a {x: *a}\n",
                                  "plugins.network.options.x: an alias refers to the mapping"),
              ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(parseExpectingError("plugins:\n  network:\n    options:\n      list: &l [1, *l]\n",
                                  "plugins.network.options.list[1]: an alias refers"),
              ::testing::ExitedWithCode(0), "");
}

TEST(HostileConfig, NestedAliasesDoNotExpandWithoutBound) {
  // About 600 bytes that expand to 10^9 values: each level lists the previous one ten times.
  std::string yaml =
      "plugins:\n  network:\n    options:\n      l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 9; ++i) {
    const std::string p = "*l" + std::to_string(i - 1);
    yaml += "      l" + std::to_string(i) + ": &l" + std::to_string(i) + " [" + p;
    for (int k = 1; k < 10; ++k) yaml += ", " + p;
    yaml += "]\n";
  }
  EXPECT_LT(yaml.size(), 700u);
  EXPECT_EXIT(parseExpectingError(yaml, "KiB as JSON (aliases repeat what their anchor holds)"),
              ::testing::ExitedWithCode(0), "");
}

TEST(HostileConfig, AliasesThatRepeatALittleStillWork) {
  bb::Config c = bb::parseConfig(
      "plugins:\n  network:\n    options:\n      a: &v {k: 1}\n      b: *v\n      c: [*v, *v]\n",
      "f");
  EXPECT_EQ(c.plugins.at("network").options_json,
            "{\"a\": {\"k\": 1}, \"b\": {\"k\": 1}, \"c\": [{\"k\": 1}, {\"k\": 1}]}");
}

TEST(HostileConfig, DeepNestingIsRefused) {
  std::string yaml = "plugins:\n  network:\n    options:\n      x: ";
  yaml += std::string(40, '[') + std::string(40, ']') + "\n";
  EXPECT_EXIT(parseExpectingError(yaml, "nested more than 32 levels deep"),
              ::testing::ExitedWithCode(0), "");
}

bb::LoadOptions explicitPath(const std::string& path) {
  bb::LoadOptions o;
  o.explicit_path = path;
  return o;
}

std::string loadError(const std::string& path) {
  try {
    bb::loadConfig(explicitPath(path));
  } catch (const bb::ConfigError& e) {
    return e.what();
  }
  return "";
}

// In the child of a death test: exits 0 when loading `path` is refused at once as not a regular
// file; an alarm ends a load that waits, `address_space` (when not 0) one that grows.
void loadInChild(const std::string& path, rlim_t address_space) {
  alarm(10);
  if (address_space != 0) {
    rlimit as{address_space, address_space};
    setrlimit(RLIMIT_AS, &as);
  }
  const std::string expected =
      path + ": not a regular file (a device or FIFO); point --config at a YAML file";
  std::exit(loadError(path) == expected ? 0 : 3);
}

TEST(HostileConfig, AFileOverOneMebibyteIsRefused) {
  bbtest::TempDir dir;
  std::string text;
  while (text.size() <= 1024 * 1024) text += "# a comment line that pads the file out a bit\n";
  dir.write("big.yaml", text);
  EXPECT_EQ(loadError(dir.file("big.yaml")),
            dir.file("big.yaml") + ": larger than 1024 KiB, which no config needs; check the path");
  // Just under the cap still loads.
  dir.write("ok.yaml", text.substr(0, 1000 * 1024));
  EXPECT_EQ(loadError(dir.file("ok.yaml")), "");
}

TEST(HostileConfig, NotARegularFileIsRefusedAtOnce) {
  bbtest::TempDir dir;
  ASSERT_EQ(mkfifo(dir.file("fifo").c_str(), 0600), 0);
  // A FIFO with no writer: opening it for reading would wait forever (in a child, with an alarm).
  const std::string fifo = dir.file("fifo");
  EXPECT_EXIT(loadInChild(fifo, 0), ::testing::ExitedWithCode(0), "");
  EXPECT_EQ(loadError("/dev/null"),
            "/dev/null: not a regular file (a device or FIFO); point --config at a YAML file");
  // /dev/zero never ends: in a child with 1 GiB of address space, so that the old behaviour
  // (reading until memory ran out) fails the test and nothing else.
  EXPECT_EXIT(loadInChild("/dev/zero", 1ull << 30), ::testing::ExitedWithCode(0), "");
}

}  // namespace
