// Text from outside (the node's error messages, receipt ids, a plugin's words) never forges a log
// line, never reaches the terminal as an escape sequence, and never makes a line longer than
// bb::kMaxLogMessage (issue 15, defect 5).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "api/node_monitor.h"
#include "rpc/rpc_client.h"
#include "util/log.h"

namespace {

// Everything written to stderr while `fn` runs.
template <typename Fn>
std::string captureStderr(Fn fn) {
  std::fflush(stderr);
  char path[] = "/tmp/bb-log-XXXXXX";
  const int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  const int saved = dup(2);
  dup2(fd, 2);
  fn();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::string out;
  char buf[4096];
  lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fd);
  unlink(path);
  return out;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
    out.push_back(text.substr(start, nl - start));
  if (start < text.size()) out.push_back(text.substr(start));
  return out;
}

bool hasControlByte(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

TEST(LogInjection, NewlinesAndEscapesInAMessageStayOnOneLine) {
  const std::string forged =
      "net.stats: boom\n2026-01-01T00:00:00.000Z error [agent] auth bypass granted\r\x1b[2J\x1b]0;"
      "pwned\x07 \xc2\x9b"
      "31m \xff\xfe end";
  const std::string out = captureStderr([&] { bb::logWarn("node", forged); });
  const auto got = lines(out);
  ASSERT_EQ(got.size(), 1u) << out;
  EXPECT_FALSE(hasControlByte(got[0])) << got[0];
  EXPECT_EQ(got[0].find("\xc2\x9b"), std::string::npos) << "C1 CSI reached the terminal";
  EXPECT_NE(got[0].find("boom\\n2026-01-01T00:00:00.000Z error [agent] auth bypass"),
            std::string::npos)
      << got[0];
  EXPECT_NE(got[0].find("\\x1b[2J"), std::string::npos) << got[0];
  EXPECT_NE(got[0].find("\\xff\\xfe end"), std::string::npos) << got[0];
  // /health's recent_errors holds the same safe text.
  const auto recent = bb::recentErrors(1, nullptr);
  ASSERT_EQ(recent.size(), 1u);
  EXPECT_FALSE(hasControlByte(recent[0].message)) << recent[0].message;
}

TEST(LogInjection, AHugeValueIsCut) {
  const std::string id(100 * 1024, 'A');
  const std::string out =
      captureStderr([&] { bb::logWarn("plugin:receipts", "skipped receipt " + id + ": bad"); });
  const auto got = lines(out);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_LT(got[0].size(), bb::kMaxLogMessage + 200) << got[0].size();
  EXPECT_NE(got[0].find("...(+"), std::string::npos);
  EXPECT_LE(bb::recentErrors(1, nullptr)[0].message.size(), bb::kMaxLogMessage + 32);
}

TEST(LogInjection, LogValueKeepsUtf8AndCutsAtACharacter) {
  EXPECT_EQ(bb::logValue("héllo ✓ 🙂"), "héllo ✓ 🙂");
  EXPECT_EQ(bb::logValue("a\tb"), "a\\tb");
  EXPECT_EQ(bb::logValue("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate is not UTF-8
  EXPECT_EQ(bb::logValue("\xc0\xaf"), "\\xc0\\xaf");           // overlong '/'
  EXPECT_EQ(bb::logValue(std::string(300, 'x')), std::string(200, 'x') + "...(+100 bytes)");
  EXPECT_EQ(bb::logValue("ééé", 3), "éé...(+2 bytes)");
}

TEST(LogInjection, TheNodesErrorTextIsCappedWhereItIsDescribed) {
  // A node answering every call with a 100 KB error message, newlines in it.
  bb::RpcConfig config;
  config.url = "http://127.0.0.1:9";
  bb::RpcClient rpc(config);
  bb::NodeMonitor monitor(&rpc);
  bb::RpcOutcome outcome;
  outcome.status = bb::RpcStatus::Transport;
  outcome.json = "{\"code\":-1,\"message\":\"x\\nforged " + std::string(100 * 1024, 'B') + "\"}";
  monitor.record("net.stats", outcome);
  const std::string error = monitor.state().last_error;
  EXPECT_LT(error.size(), bb::kMaxLoggedValue + 64) << error.size();
  EXPECT_FALSE(hasControlByte(error));
}

}  // namespace
