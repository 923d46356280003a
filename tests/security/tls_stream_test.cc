// The reactor's TLS streams (net::Stream over bb_tls.so) against an OpenSSL client in the same
// thread: what a stream holds between records, and records that arrive together.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "net/stream.h"
#include "net/tls.h"
#include "support/process.h"
#include "support/tls_certs.h"

namespace {

// Test programs live in tests/bin, not beside the agent: say where the TLS module is.
const bool kTlsModuleSet = [] {
  return setenv("BLOCK_BUSTER_TLS_MODULE", BB_TLS_MODULE, 1) == 0;
}();

// Bytes the allocator has handed out and not taken back, in every arena.
size_t heapInUse() { return mallinfo2().uordblks; }

// The two record buffers OpenSSL takes for a stream (16 KiB of plaintext each, plus a record's
// overhead): less than that is freed when a stream gives them back.
constexpr size_t kRecordBuffers = 2 * 16 * 1024;

// A server stream and a non-blocking OpenSSL client on one loopback connection, handshake done.
class Pair {
 public:
  explicit Pair(const bb::net::TlsContext& context) {
    int l = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(l, 1);
    ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;  // each record on the wire at once
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);  // EINPROGRESS on loopback
    int s = -1;
    for (int i = 0; i < 1000 && s < 0; ++i) s = ::accept4(l, nullptr, nullptr, SOCK_NONBLOCK);
    ::close(l);
    server = bb::net::Stream(s, context);
    ctx_ = SSL_CTX_new(TLS_client_method());
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set_connect_state(ssl_);
    for (int turn = 0; turn < 10000; ++turn) {
      const int c = SSL_do_handshake(ssl_);
      const long r = server.handshake();
      if (r == bb::net::Stream::kBroken) break;
      if (c == 1 && r == 1) {
        ok_ = true;
        break;
      }
    }
  }
  ~Pair() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    ::close(fd_);
  }

  bool ok() const { return ok_; }

  /// The client sends each of `records` as a record of its own, then the server reads until it
  /// has them all (true) or a read fails.
  bool request(const std::vector<std::string>& records) {
    if (!send(records)) return false;
    std::string all;
    for (const auto& r : records) all += r;
    std::string got;
    char buf[16 * 1024];
    for (int turn = 0; got.size() < all.size() && turn < 100000; ++turn) {
      const long n = server.read(buf, sizeof buf);
      if (n > 0) got.append(buf, static_cast<size_t>(n));
      if (n == 0 || n == bb::net::Stream::kBroken) return false;
    }
    return got == all;
  }

  /// The client sends each of `records` as a record of its own.
  bool send(const std::vector<std::string>& records) {
    for (const auto& r : records) {
      size_t put = 0;
      if (SSL_write_ex(ssl_, r.data(), r.size(), &put) != 1) return false;
    }
    return true;
  }

  /// The server writes `bytes`, then the client reads them all.
  bool answer(const std::string& bytes) {
    size_t off = 0;
    for (int turn = 0; off < bytes.size() && turn < 100000; ++turn) {
      const long n = server.write(bytes.data() + off, bytes.size() - off);
      if (n > 0) off += static_cast<size_t>(n);
      if (n == bb::net::Stream::kBroken) return false;
    }
    std::string got(bytes.size(), '\0');
    size_t in = 0;
    for (int turn = 0; in < bytes.size() && turn < 100000; ++turn) {
      size_t n = 0;
      if (SSL_read_ex(ssl_, got.data() + in, bytes.size() - in, &n) == 1) in += n;
    }
    return got == bytes;
  }

  bb::net::Stream server;

 private:
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool ok_ = false;
};

struct Streams : ::testing::Test {
  bbtest::TempDir dir;
  bbtest::TestCertificate cert{dir};
  bb::net::TlsContext context{cert.cert_file, cert.key_file, "test"};

  // `count` pairs, each through one request and one answer.
  std::vector<std::unique_ptr<Pair>> exchanged(int count, bool keep) {
    std::vector<std::unique_ptr<Pair>> pairs;
    for (int i = 0; i < count; ++i) {
      pairs.push_back(std::make_unique<Pair>(context));
      Pair& p = *pairs.back();
      EXPECT_TRUE(p.ok());
      p.server.keepBuffers(keep);
      EXPECT_TRUE(p.request({"GET / HTTP/1.1\r\nHost: x\r\n\r\n"}));
      EXPECT_TRUE(
          p.answer("HTTP/1.1 200 OK\r\nContent-Length: 600\r\n\r\n" + std::string(600, 'x')));
    }
    return pairs;
  }
};

// A busy stream keeps its record buffers between records (no free and malloc around each), and
// gives them back when asked, as the loops do once its connection idles.
TEST_F(Streams, AStreamKeepsItsRecordBuffersUntilItIdles) {
  constexpr int kPairs = 8;
  auto pairs = exchanged(kPairs, true);
  const size_t held = heapInUse();
  for (auto& p : pairs) EXPECT_TRUE(p->server.releaseBuffers());
  const size_t released = heapInUse();
  EXPECT_GE(held, released + kPairs * kRecordBuffers)
      << "held " << held << ", released " << released;
  // The next record takes them again, and works.
  for (auto& p : pairs) {
    EXPECT_TRUE(p->request({"GET /again HTTP/1.1\r\nHost: x\r\n\r\n"}));
    EXPECT_TRUE(p->answer("HTTP/1.1 204 No Content\r\n\r\n"));
  }
  EXPECT_GE(heapInUse(), released + kPairs * kRecordBuffers);
}

// A stream that does not keep them (a WebSocket client) holds none once a record is through.
TEST_F(Streams, AStreamThatDoesNotKeepBuffersHoldsNoneBetweenRecords) {
  constexpr int kPairs = 8;
  auto pairs = exchanged(kPairs, false);
  const size_t before = heapInUse();
  for (auto& p : pairs) EXPECT_TRUE(p->server.releaseBuffers());
  EXPECT_LT(before - heapInUse(), kPairs * kRecordBuffers / 4);
}

// Records that came in one read (read-ahead) are returned one by one, and until the last is,
// the stream says it holds bytes that epoll cannot see; once a read wanted more, it says none.
TEST_F(Streams, RecordsReadAheadAreReportedUntilRead) {
  auto pairs = exchanged(1, true);
  Pair& p = *pairs.front();
  const std::vector<std::string> records = {"GET /1 HTTP/1.1\r\n\r\n", "GET /22 HTTP/1.1\r\n\r\n",
                                            "GET /333 HTTP/1.1\r\n\r\n"};
  ASSERT_TRUE(p.send(records));
  char buf[16 * 1024];
  for (size_t i = 0; i < records.size(); ++i) {
    const long n = p.server.read(buf, sizeof buf);
    ASSERT_GT(n, 0) << i;
    EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), records[i]);
    EXPECT_EQ(p.server.moreToRead(static_cast<size_t>(n), sizeof buf), i + 1 < records.size()) << i;
  }
  EXPECT_EQ(p.server.read(buf, sizeof buf), bb::net::Stream::kWouldBlock);
  EXPECT_FALSE(p.server.buffered());
}

// A plain stream holds no record buffers and has nothing to give back.
TEST(PlainStream, HasNoRecordBuffers) {
  bb::net::Stream plain(::socket(AF_INET, SOCK_STREAM, 0));
  EXPECT_FALSE(plain.releaseBuffers());
  plain.keepBuffers(false);  // no effect, no crash
  EXPECT_FALSE(plain.buffered());
}

}  // namespace
