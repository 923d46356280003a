// The loader refuses, with one clear line each, every kind of wrong plugin file.
#include "host/plugin_loader.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "support/process.h"

namespace {

std::string fixture(const std::string& name) {
  return std::string(BB_FIXTURE_DIR) + "/" + name + ".so";
}

std::string refusal(const std::string& file) {
  try {
    bb::loadPlugin(file);
  } catch (const bb::LoadError& e) {
    return e.what();
  }
  return "";
}

TEST(PluginLoader, LoadsAGoodPluginAndReadsItsDescriptor) {
  auto lib = bb::loadPlugin(fixture("good"));
  EXPECT_EQ(lib->info().name, "good");
  EXPECT_EQ(lib->info().version, "0.0.1");
  EXPECT_EQ(lib->info().abi_major, BB_ABI_VERSION_MAJOR);
  ASSERT_EQ(lib->info().config_keys.size(), 1u);
  EXPECT_EQ(lib->info().config_keys[0].name, "threshold");
  EXPECT_EQ(lib->info().config_keys[0].default_json, "7");
  EXPECT_NE(lib->plugin().create, nullptr);
}

TEST(PluginLoader, RefusesAFileThatIsNotASharedLibrary) {
  bbtest::TempDir dir;
  dir.write("text.so", "this is not an ELF file\n");
  std::string why = refusal(dir.file("text.so"));
  EXPECT_NE(why.find(dir.file("text.so")), std::string::npos) << why;
  EXPECT_NE(why.find("not a loadable shared library"), std::string::npos) << why;
  EXPECT_EQ(why.find('\n'), std::string::npos) << "one line: " << why;
}

TEST(PluginLoader, RefusesALibraryWithoutTheEntrySymbol) {
  std::string why = refusal(fixture("no_entry"));
  EXPECT_NE(why.find("no 'bb_plugin_entry' symbol"), std::string::npos) << why;
  EXPECT_NE(why.find("BLOCKBUSTER_PLUGIN"), std::string::npos) << "says what to do: " << why;
}

TEST(PluginLoader, RefusesAnEntryReturningNull) {
  EXPECT_NE(refusal(fixture("null_entry")).find("returned NULL"), std::string::npos);
}

TEST(PluginLoader, RefusesAnotherAbiMajorVersion) {
  std::string why = refusal(fixture("abi_major_2"));
  EXPECT_NE(why.find("built for plugin ABI 2."), std::string::npos) << why;
  EXPECT_NE(why.find("rebuild the plugin against SDK 1.x"), std::string::npos) << why;
}

TEST(PluginLoader, RefusesATruncatedDescriptor) {
  std::string why = refusal(fixture("too_small"));
  EXPECT_NE(why.find("struct_size"), std::string::npos) << why;
  EXPECT_NE(why.find("smaller than ABI 1.0"), std::string::npos) << why;
}

TEST(PluginLoader, RefusesAMissingRequiredFunction) {
  EXPECT_NE(refusal(fixture("no_collect")).find("lacks a required function"), std::string::npos);
}

TEST(PluginLoader, RefusesAnInvalidName) {
  EXPECT_NE(refusal(fixture("bad_name")).find("plugin name 'Bad-Name' is invalid"),
            std::string::npos);
}

TEST(PluginLoader, LoadsANewerMinorWithALargerDescriptorUsingWhatItKnows) {
  auto lib = bb::loadPlugin(fixture("future_minor"));
  EXPECT_EQ(lib->info().name, "future");
  EXPECT_EQ(lib->info().abi_minor, 99u);
  EXPECT_EQ(lib->plugin().struct_size, sizeof(bb_plugin) + sizeof(void*) + 64);
}

TEST(PluginLoader, RefusesADuplicateNameInADirectoryAndKeepsTheFirst) {
  bbtest::TempDir dir;
  std::filesystem::copy_file(fixture("good"), dir.file("a_good.so"));
  std::filesystem::copy_file(fixture("good_twin"), dir.file("b_good_twin.so"));
  std::filesystem::copy_file(fixture("no_entry"), dir.file("c_no_entry.so"));
  dir.write("README.txt", "not a plugin, not a .so: ignored");
  std::vector<std::string> errors;
  auto libs = bb::loadPluginDir(dir.path(), errors);
  ASSERT_EQ(libs.size(), 1u);
  EXPECT_EQ(libs[0]->info().path, dir.file("a_good.so"));
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0].find("a plugin named 'good' is already loaded from " + dir.file("a_good.so")),
            std::string::npos)
      << errors[0];
  EXPECT_NE(errors[1].find("c_no_entry.so"), std::string::npos) << errors[1];
}

TEST(PluginLoader, ReportsAnUnreadableDirectory) {
  try {
    bb::findPluginFiles("/nonexistent/plugins");
    FAIL() << "expected a LoadError";
  } catch (const bb::LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/plugins: cannot read"), std::string::npos);
  }
}

}  // namespace
