#include "config/node_url.h"

#include <arpa/inet.h>

#include <cctype>

namespace bb {
namespace {

constexpr size_t kMaxEchoed = 60;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool isHostNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.' || c == '_';
}

}  // namespace

std::string redactUrlCredentials(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  const size_t host_start = scheme + 3;
  const size_t host_end = url.find_first_of("/?#", host_start);
  const size_t at = url.rfind('@', host_end == std::string_view::npos ? url.size() : host_end);
  if (at == std::string_view::npos || at < host_start) return std::string(url);
  return std::string(url.substr(0, host_start)) + "<redacted>" + std::string(url.substr(at));
}

std::string echoUrl(std::string_view value) {
  std::string v = redactUrlCredentials(value);
  if (v.size() > kMaxEchoed) v = v.substr(0, kMaxEchoed) + "...";
  return "'" + v + "'";
}

bool parseNodeUrl(std::string_view text, NodeUrlUse use, NodeUrl& out, NodeUrlProblem& problem) {
  const bool ws = use == NodeUrlUse::kWebSocket;
  const char* plain = ws ? "ws" : "http";
  const char* secure = ws ? "wss" : "https";
  const std::string expected = ws ? "expected a ws:// or wss:// URL, e.g. ws://localhost:9944"
                                  : "expected an http:// or https:// URL, e.g. "
                                    "http://localhost:9933";
  const auto fail = [&](const std::string& what, const std::string& fix) {
    problem = {echoUrl(text) + " " + what, fix};
    return false;
  };
  const size_t sep = text.find("://");
  const std::string scheme = sep == std::string_view::npos ? "" : lower(text.substr(0, sep));
  if (scheme != plain && scheme != secure) {
    return fail(std::string("does not start with ") + plain + ":// or " + secure + "://", expected);
  }
  const size_t host_start = sep + 3;
  if (host_start == text.size() || text[host_start] == '/' || text[host_start] == ':') {
    return fail("has no host", expected);
  }
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
      return fail("contains whitespace", expected);
    if (u < 0x20 || u == 0x7f) return fail("contains a control character", expected);
  }
  if (text.find('#') != std::string_view::npos) {
    return fail("has a fragment ('#...')", "remove it: " + expected);
  }
  const size_t authority_end = std::min(text.find_first_of("/?", host_start), text.size());
  std::string_view authority = text.substr(host_start, authority_end - host_start);
  if (authority.find('@') != std::string_view::npos) {
    return fail("carries credentials (user@host)",
                "remove them; the node's bearer token goes in auth_token (or THEBLOCK_AUTH_TOKEN)");
  }
  std::string host;
  std::string_view port_text;
  bool has_port = false;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return fail("has an IPv6 address without its closing ']'", expected);
    }
    host = std::string(authority.substr(1, close - 1));
    in6_addr addr{};
    if (host.empty() || inet_pton(AF_INET6, host.c_str(), &addr) != 1) {
      return fail("has '[" + host + "]', which is not an IPv6 address", expected);
    }
    const std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return fail("has text after the IPv6 address's ']'", expected);
      has_port = true;
      port_text = rest.substr(1);
    }
  } else {
    const size_t colon = authority.find(':');
    host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
      if (port_text.find(':') != std::string_view::npos) {
        return fail("has more than one ':' in its host",
                    "write an IPv6 address in brackets, e.g. " + std::string(plain) +
                        "://[::1]:" + (ws ? "9944" : "9933"));
      }
    }
    for (char c : host) {
      if (!isHostNameChar(c)) {
        return fail("has a host with '" + std::string(1, c) + "' in it", expected);
      }
    }
  }
  int port = scheme == secure ? 443 : 80;
  if (has_port) {
    bool digits = !port_text.empty() && port_text.size() <= 5;
    for (char c : port_text) digits = digits && std::isdigit(static_cast<unsigned char>(c)) != 0;
    port = digits ? std::stoi(std::string(port_text)) : -1;
    if (port < 1 || port > 65535) {
      return fail("has port '" + std::string(port_text.substr(0, 12)) +
                      "'; a port is a number from 1 to 65535",
                  expected);
    }
  }
  out.scheme = scheme;
  out.host = host;
  out.host_header = authority.front() == '[' ? "[" + host + "]" : host;
  out.port = static_cast<uint16_t>(port);
  out.target = authority_end < text.size() ? std::string(text.substr(authority_end)) : "/";
  if (out.target.front() == '?') out.target.insert(0, "/");
  return true;
}

}  // namespace bb
