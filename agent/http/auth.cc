#include "http/auth.h"

#include <Poco/Base64Decoder.h>
#include <Poco/DigestEngine.h>
#include <Poco/SHA2Engine.h>

#include <cctype>
#include <iterator>
#include <sstream>

namespace bb {
namespace {

bool constantTimeEqual(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

bool startsWithNoCase(const std::string& s, const std::string& prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  return true;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

// The tokens a request presents as a bearer: the header, the query parameter, and each
// "bearer.<token>" WebSocket subprotocol.
std::vector<std::string> bearerCandidates(const HttpRequest& r) {
  std::vector<std::string> out;
  if (startsWithNoCase(r.authorization, "bearer ")) out.push_back(trim(r.authorization.substr(7)));
  if (!r.token_param.empty()) out.push_back(r.token_param);
  std::stringstream protocols(r.ws_protocols);
  std::string p;
  while (std::getline(protocols, p, ',')) {
    p = trim(p);
    if (p.rfind("bearer.", 0) == 0 && p.size() > 7) out.push_back(p.substr(7));
  }
  return out;
}

}  // namespace

Authenticator::Authenticator(std::vector<std::string> bearer_sha256, std::vector<BasicUser> basic,
                             std::string realm)
    : bearer_(std::move(bearer_sha256)), basic_(std::move(basic)), realm_(std::move(realm)) {}

std::string Authenticator::sha256(const std::string& secret) {
  Poco::SHA2Engine engine(Poco::SHA2Engine::SHA_256);
  engine.update(secret);
  return "sha256:" + Poco::DigestEngine::digestToHex(engine.digest());
}

bool Authenticator::check(const HttpRequest& request) const {
  if (open()) return true;
  bool ok = false;
  if (!bearer_.empty()) {
    for (const auto& token : bearerCandidates(request)) {
      const std::string hash = sha256(token);
      for (const auto& want : bearer_) ok |= constantTimeEqual(hash, want);
    }
  }
  if (!basic_.empty() && startsWithNoCase(request.authorization, "basic ")) {
    std::istringstream in(trim(request.authorization.substr(6)));
    Poco::Base64Decoder decoder(in);
    std::string pair;
    try {
      pair.assign(std::istreambuf_iterator<char>(decoder), std::istreambuf_iterator<char>());
    } catch (const std::exception&) {
      pair.clear();
    }
    size_t colon = pair.find(':');
    if (colon != std::string::npos) {
      const std::string user = pair.substr(0, colon);
      const std::string hash = sha256(pair.substr(colon + 1));
      for (const auto& u : basic_)
        ok |= constantTimeEqual(user, u.user) & constantTimeEqual(hash, u.password_sha256);
    }
  }
  return ok;
}

HttpResponse Authenticator::challenge() const {
  HttpResponse r = HttpResponse::error(401, "unauthorized",
                                       "this endpoint needs authentication (" + realm_ +
                                           "): send \"Authorization: Bearer <token>\"" +
                                           (basic_.empty() ? "" : " or basic auth") +
                                           ", or ?token=<token>; see docs/security.md");
  if (!bearer_.empty())
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"" + realm_ + "\"");
  if (!basic_.empty())
    r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"" + realm_ + "\", charset=\"UTF-8\"");
  return r;
}

std::string takeTokenParameter(std::string& raw_query) {
  std::string token, kept;
  size_t start = 0;
  while (start <= raw_query.size()) {
    size_t end = raw_query.find('&', start);
    if (end == std::string::npos) end = raw_query.size();
    std::string part = raw_query.substr(start, end - start);
    if (part.rfind("token=", 0) == 0) {
      std::string decoded;
      if (percentDecode(part.substr(6), decoded, true)) token = decoded;
    } else if (!part.empty()) {
      kept += (kept.empty() ? "" : "&") + part;
    }
    start = end + 1;
  }
  raw_query = kept;
  return token;
}

}  // namespace bb
