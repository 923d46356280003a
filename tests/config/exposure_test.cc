// The start-up warning for a surface that serves data on a non-loopback address with no
// authentication (issue 8, docs/security.md): computed from the config, logged at start and
// printed by --check-config.
#include "config/exposure.h"

#include <gtest/gtest.h>

namespace {

bb::Config parse(const std::string& yaml) { return bb::parseConfig(yaml, "test.yaml"); }

size_t count(const std::vector<std::string>& lines, const std::string& needle) {
  size_t n = 0;
  for (const auto& l : lines)
    if (l.find(needle) != std::string::npos) ++n;
  return n;
}

TEST(Exposure, LoopbackHostsAreRecognised) {
  for (const char* h : {"127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"})
    EXPECT_TRUE(bb::isLoopbackHost(h)) << h;
  for (const char* h : {"0.0.0.0", "::", "10.0.0.5", "192.168.1.2", "128.0.0.1", "localhost.evil"})
    EXPECT_FALSE(bb::isLoopbackHost(h)) << h;
}

TEST(Exposure, LoopbackOnlyGivesNoWarning) {
  auto w = bb::exposureWarnings(
      parse("http: {host: 127.0.0.1, port: 5000}\nws: {host: localhost, port: 5001}\n"));
  EXPECT_TRUE(w.empty()) << w.front();
}

TEST(Exposure, EachOpenSurfaceOnAnyAddressIsNamedWithItsKey) {
  auto w = bb::exposureWarnings(
      parse("http: {host: 0.0.0.0, port: 5000}\nws: {host: 0.0.0.0, port: 5001}\n"));
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(count(w, "0.0.0.0:5000 without authentication for the REST API"), 1u);
  EXPECT_EQ(count(w, "set auth.api"), 1u);
  EXPECT_EQ(count(w, "without authentication for /metrics"), 1u);
  EXPECT_EQ(count(w, "set auth.metrics"), 1u);
  EXPECT_EQ(count(w, "0.0.0.0:5001 without authentication for the WebSocket ports"), 1u);
  EXPECT_EQ(count(w, "set auth.ws"), 1u);
}

TEST(Exposure, AuthenticationSilencesOnlyItsOwnSurface) {
  const std::string hash =
      "sha256:33008ea374a93b18297c7ff15b324d599c30cbeac8a9073b82f7837fe0049e27";
  auto w =
      bb::exposureWarnings(parse("http: {host: 0.0.0.0, port: 5000}\n"
                                 "ws: {host: 127.0.0.1, port: 5001}\n"
                                 "auth:\n  api:\n    bearer_sha256: [\"" +
                                 hash + "\"]\n"));
  ASSERT_EQ(w.size(), 1u) << w.front();
  EXPECT_NE(w[0].find("/metrics"), std::string::npos) << w[0];
}

}  // namespace
