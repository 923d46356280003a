// A recorded JSON fixture read from disk, for the plugin tests (one loader for all of them).
#ifndef BB_TESTS_PLUGINS_SUPPORT_FIXTURE_H_
#define BB_TESTS_PLUGINS_SUPPORT_FIXTURE_H_

#include <blockbuster/json.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace bbtest {

/// The JSON in `dir`/`name`; a missing file fails the test (and parsing its empty text throws).
inline blockbuster::Json readFixture(const std::string& dir, const std::string& name) {
  std::ifstream in(dir + "/" + name);
  EXPECT_TRUE(in.good()) << "missing fixture " << dir << "/" << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return blockbuster::Json::parse(ss.str());
}

}  // namespace bbtest

#endif  // BB_TESTS_PLUGINS_SUPPORT_FIXTURE_H_
