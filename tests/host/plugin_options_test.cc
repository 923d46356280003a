#include "host/plugin_options.h"

#include <blockbuster/json.h>
#include <gtest/gtest.h>

namespace {

bb::PluginInfo info() {
  bb::PluginInfo i;
  i.name = "demo";
  i.path = "/x/bb_demo.so";
  i.config_keys = {{"limit", BB_CONFIG_INT, "10", "max"},
                   {"ratio", BB_CONFIG_DOUBLE, "0.5", ""},
                   {"label", BB_CONFIG_STRING, "", ""},
                   {"tags", BB_CONFIG_STRING_LIST, "[]", ""},
                   {"on", BB_CONFIG_BOOL, "true", ""}};
  return i;
}

std::string error(const std::string& options) {
  try {
    bb::effectiveOptions(info(), options);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(PluginOptions, AppliesDefaultsAndKeepsGivenValues) {
  auto j = blockbuster::Json::parse(bb::effectiveOptions(info(), R"({"limit":3,"ratio":2})"));
  EXPECT_EQ(j["limit"].asInt(), 3);
  EXPECT_EQ(j["ratio"].asDouble(), 2.0);  // an integer is a valid number
  EXPECT_TRUE(j["on"].asBool());
  EXPECT_EQ(j["tags"].size(), 0u);
  EXPECT_FALSE(j.contains("label"));  // no default: absent
}

TEST(PluginOptions, RefusesAnUnknownKeyNamingTheKnownOnes) {
  EXPECT_EQ(error(R"({"limt":3})"),
            "plugins.demo.options.limt: unknown option of plugin 'demo'; known options: limit, "
            "ratio, label, tags, on");
}

TEST(PluginOptions, RefusesAWrongType) {
  EXPECT_EQ(error(R"({"limit":"3"})"),
            "plugins.demo.options.limit: expected an integer, got string \"3\"");
  EXPECT_NE(error(R"({"tags":["a",1]})").find("expected a list of strings"), std::string::npos);
  EXPECT_NE(error(R"({"on":1})").find("expected a boolean"), std::string::npos);
}

TEST(PluginOptions, RefusesOptionsThatAreNotAMap) {
  EXPECT_NE(error("[1]").find("expected a map"), std::string::npos);
}

}  // namespace
