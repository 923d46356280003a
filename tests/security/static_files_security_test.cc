// The web listener's static files, through a real HttpServer and a raw socket: nothing outside
// the root (traversal, encoded traversal, absolute paths, symlinks), no listing, MIME, ETag/304.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "http/server.h"
#include "http/static_files.h"
#include "security/raw_client.h"
#include "support/process.h"

namespace {

using sectest::exchange;
using sectest::statusOf;

const char kOutside[] = "OUTSIDE-THE-ROOT-do-not-serve";

struct Site {
  Site() {
    namespace fs = std::filesystem;
    fs::create_directories(dir.file("root/js"));
    fs::create_directories(dir.file("root/empty"));
    dir.write("root/index.html", "<html>index</html>");
    dir.write("root/js/app.js", "console.log(1)");
    dir.write("root/style.css", "body{}");
    dir.write("root/icon.svg", "<svg/>");
    dir.write("secret.txt", kOutside);
    fs::create_symlink(dir.file("secret.txt"), dir.file("root/link.txt"));
    fs::create_directory_symlink(dir.path(), dir.file("root/up"));
    files = std::make_unique<bb::StaticFiles>(dir.file("root"), "{\"api_port\":1}");
    bb::ServerOptions o;
    o.port = 0;
    server = std::make_unique<bb::HttpServer>(
        o, [this](bb::HttpRequest&& r) { return files->serve(r); });
    server->start();
  }
  std::string get(const std::string& target, const std::string& headers = "") {
    return exchange(server->port(), "GET " + target +
                                        " HTTP/1.1\r\nHost: x\r\nConnection: "
                                        "close\r\n" +
                                        headers + "\r\n");
  }
  bbtest::TempDir dir;
  std::unique_ptr<bb::StaticFiles> files;
  std::unique_ptr<bb::HttpServer> server;
};

TEST(StaticFiles, NoTraversalOutOfTheRoot) {
  Site s;
  for (const char* target :
       {"/../secret.txt", "/js/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt",
        "/js/%2e%2e/%2e%2e/secret.txt", "//etc/passwd", "/..%2f..%2f..%2fetc/passwd",
        "/%2fetc%2fpasswd", "/link.txt", "/up/secret.txt"}) {
    std::string answer = s.get(target);
    EXPECT_EQ(statusOf(answer), 404) << target << "\n" << answer;
    EXPECT_EQ(answer.find(kOutside), std::string::npos) << target;
    EXPECT_EQ(answer.find("root:"), std::string::npos) << target;
  }
  // A symlink whose target resolves back inside the root is fine: only the real path counts.
  EXPECT_EQ(statusOf(s.get("/up/root/index.html")), 200);
}

TEST(StaticFiles, NoDirectoryListing) {
  Site s;
  std::string answer = s.get("/empty/");
  EXPECT_EQ(statusOf(answer), 404) << answer;
  EXPECT_EQ(statusOf(s.get("/js/")), 404);
  // A directory with an index serves the index, never a listing.
  answer = s.get("/");
  EXPECT_EQ(statusOf(answer), 200);
  EXPECT_NE(answer.find("<html>index</html>"), std::string::npos);
}

TEST(StaticFiles, MimeTypes) {
  Site s;
  EXPECT_NE(s.get("/").find("Content-Type: text/html; charset=utf-8"), std::string::npos);
  EXPECT_NE(s.get("/js/app.js").find("Content-Type: text/javascript; charset=utf-8"),
            std::string::npos);
  EXPECT_NE(s.get("/style.css").find("Content-Type: text/css; charset=utf-8"), std::string::npos);
  EXPECT_NE(s.get("/icon.svg").find("Content-Type: image/svg+xml"), std::string::npos);
  EXPECT_NE(s.get("/bb-config.json").find("Content-Type: application/json"), std::string::npos);
  EXPECT_NE(s.get("/js/app.js").find("X-Content-Type-Options: nosniff"), std::string::npos);
}

TEST(StaticFiles, EtagGives304) {
  Site s;
  std::string first = s.get("/js/app.js");
  ASSERT_EQ(statusOf(first), 200);
  size_t at = first.find("ETag: ");
  ASSERT_NE(at, std::string::npos) << first;
  std::string etag = first.substr(at + 6, first.find("\r\n", at) - at - 6);
  std::string again = s.get("/js/app.js", "If-None-Match: " + etag + "\r\n");
  EXPECT_EQ(statusOf(again), 304) << again;
  EXPECT_EQ(again.find("console.log"), std::string::npos);
  EXPECT_EQ(statusOf(s.get("/js/app.js", "If-None-Match: \"other\"\r\n")), 200);
}

TEST(StaticFiles, OnlyGetAndHead) {
  Site s;
  std::string answer = exchange(
      s.server->port(), "DELETE /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(statusOf(answer), 405);
}

}  // namespace
