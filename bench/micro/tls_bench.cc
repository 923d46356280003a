// The agent's side of one HTTPS request on a kept-alive connection, without the HTTP: a
// request record read and decrypted, the head and body written (net::Stream over bb_tls.so, as
// the loops drive it), on a loopback TCP connection whose client is OpenSSL itself, in this
// thread. Only the server's calls are timed (manual time: this thread's CPU time in them, the
// kernel's loopback work included); the client's work is not counted.
//
//   BM_TlsExchange/<body bytes>/<buffers>  buffers 1: the stream keeps its record buffers
//   between records (the loops' default); 0: freed after every record (keepBuffers(false), as
//   for a WebSocket client, and as every stream did before).
//   BM_PlainExchange/<body bytes>: the same over a plain stream, for the difference.
//
// The certificate is made here (EC P-256, one day); the record path does not depend on it.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>

#include "net/stream.h"
#include "net/tls.h"

namespace {

const char kRequest[] =
    "GET /theblock/network/metrics HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: bench\r\n\r\n";

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "tls_bench: %s\n", what);
  ERR_print_errors_fp(stderr);
  std::exit(2);
}

// A self-signed certificate and its key in a temporary directory, for the process's life.
struct Certificate {
  std::string dir, cert_file, key_file;
  Certificate() {
    char tmpl[] = "/tmp/bb-tls-bench-XXXXXX";
    if (!mkdtemp(tmpl)) fail("cannot make a temporary directory");
    dir = tmpl;
    cert_file = dir + "/cert.pem";
    key_file = dir + "/key.pem";
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* x = X509_new();
    if (!key || !x) fail("cannot make a key");
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    if (!X509_sign(x, key, EVP_sha256())) fail("cannot sign the certificate");
    FILE* c = std::fopen(cert_file.c_str(), "w");
    FILE* k = std::fopen(key_file.c_str(), "w");
    if (!c || !k || !PEM_write_X509(c, x) ||
        !PEM_write_PrivateKey(k, key, nullptr, nullptr, 0, nullptr, nullptr))
      fail("cannot write the certificate");
    std::fclose(c);
    std::fclose(k);
    X509_free(x);
    EVP_PKEY_free(key);
  }
  ~Certificate() {
    ::unlink(cert_file.c_str());
    ::unlink(key_file.c_str());
    ::rmdir(dir.c_str());
  }
};

// CPU time of this thread (user and system): what another process on the cores does not change.
double threadSeconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// A connected loopback pair: {client (blocking), server (non-blocking)}, Nagle off on both.
std::pair<int, int> loopbackPair() {
  int l = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(l, 1) != 0 ||
      ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    fail("cannot listen on loopback");
  int c = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) fail("cannot connect");
  int s = ::accept4(l, nullptr, nullptr, SOCK_NONBLOCK);
  ::close(l);
  int one = 1;
  ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return {c, s};
}

// The server's half of an exchange: reads the request, writes head and body (one writev, as
// the loops gather an answer). Returns the seconds it took.
double serve(bb::net::Stream& server, const std::string& head, const std::string& body) {
  const double t0 = threadSeconds();
  char buf[16 * 1024];
  size_t got = 0;
  while (got < sizeof kRequest - 1) {
    const long n = server.read(buf, sizeof buf);
    if (n > 0)
      got += static_cast<size_t>(n);
    else if (n != bb::net::Stream::kWouldBlock)
      fail("the server's read failed");
  }
  size_t head_off = 0, body_off = 0;
  while (head_off < head.size() || body_off < body.size()) {
    iovec iov[2];
    size_t count = 0;
    if (head_off < head.size())
      iov[count++] = {const_cast<char*>(head.data()) + head_off, head.size() - head_off};
    if (body_off < body.size())
      iov[count++] = {const_cast<char*>(body.data()) + body_off, body.size() - body_off};
    long n = server.writev(iov, count);
    if (n == bb::net::Stream::kWouldBlock) continue;  // the client reads after; never here
    if (n < 0) fail("the server's write failed");
    const size_t h = std::min(static_cast<size_t>(n), head.size() - head_off);
    head_off += h;
    body_off += static_cast<size_t>(n) - h;
  }
  return threadSeconds() - t0;
}

std::string headFor(size_t body_bytes) {
  return "HTTP/1.1 200 OK\r\nDate: Sat, 05 Dec 2026 21:00:00 GMT\r\nConnection: Keep-Alive\r\n"
         "Content-Type: application/json\r\nAccess-Control-Allow-Origin: *\r\n"
         "Content-Length: " +
         std::to_string(body_bytes) + "\r\n\r\n";
}

void BM_TlsExchange(benchmark::State& state) {
  static Certificate cert;
  static bb::net::TlsContext context(cert.cert_file, cert.key_file, "bench");
  const size_t body_bytes = static_cast<size_t>(state.range(0));
  const std::string head = headFor(body_bytes), body(body_bytes, 'x');
  auto [cfd, sfd] = loopbackPair();
  bb::net::Stream server(sfd, context);
  server.keepBuffers(state.range(1) != 0);
  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  SSL* client = SSL_new(cctx);
  SSL_set_fd(client, cfd);
  // The handshake, both sides non-blocking in turn; then the client blocks.
  const int flags = ::fcntl(cfd, F_GETFL, 0);
  ::fcntl(cfd, F_SETFL, flags | O_NONBLOCK);
  SSL_set_connect_state(client);
  for (int turns = 0;; ++turns) {
    const int r = SSL_do_handshake(client);
    const long s = server.handshake();
    if (s == bb::net::Stream::kBroken || turns > 1000) fail("the handshake failed");
    if (r == 1 && s == 1) break;
    if (r != 1 && SSL_get_error(client, r) != SSL_ERROR_WANT_READ) fail("the handshake failed");
  }
  ::fcntl(cfd, F_SETFL, flags);
  const size_t answer = head.size() + body.size();
  std::string in(answer, '\0');
  for (auto _ : state) {
    size_t put = 0;
    if (SSL_write_ex(client, kRequest, sizeof kRequest - 1, &put) != 1) fail("client write");
    state.SetIterationTime(serve(server, head, body));
    size_t got = 0;
    while (got < answer) {
      size_t n = 0;
      if (SSL_read_ex(client, in.data() + got, answer - got, &n) != 1) fail("client read");
      got += n;
    }
  }
  state.counters["body_bytes"] = static_cast<double>(body_bytes);
  SSL_free(client);
  SSL_CTX_free(cctx);
  ::close(cfd);
}
BENCHMARK(BM_TlsExchange)
    ->Args({512, 1})
    ->Args({512, 0})
    ->Args({27 * 1024, 1})
    ->Args({27 * 1024, 0})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

void BM_PlainExchange(benchmark::State& state) {
  const size_t body_bytes = static_cast<size_t>(state.range(0));
  const std::string head = headFor(body_bytes), body(body_bytes, 'x');
  auto [cfd, sfd] = loopbackPair();
  bb::net::Stream server(sfd);
  const size_t answer = head.size() + body.size();
  std::string in(answer, '\0');
  for (auto _ : state) {
    if (::send(cfd, kRequest, sizeof kRequest - 1, 0) != sizeof kRequest - 1) fail("send");
    state.SetIterationTime(serve(server, head, body));
    size_t got = 0;
    while (got < answer) {
      ssize_t n = ::recv(cfd, in.data() + got, answer - got, 0);
      if (n <= 0) fail("client read");
      got += static_cast<size_t>(n);
    }
  }
  state.counters["body_bytes"] = static_cast<double>(body_bytes);
  ::close(cfd);
}
BENCHMARK(BM_PlainExchange)
    ->Arg(512)
    ->Arg(27 * 1024)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
