// Authentication of one HTTP surface: bearer tokens and basic-auth users, held as SHA-256 hashes
// only. Credentials come from the Authorization header, the `token` query parameter, or a
// Sec-WebSocket-Protocol value "bearer.<token>" (browsers cannot set headers on a WebSocket).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "http/router.h"

namespace bb {

/// Immutable once built; check() is thread-safe.
class Authenticator {
 public:
  struct BasicUser {
    std::string user;
    std::string password_sha256;  ///< "sha256:<64 lowercase hex>"
  };
  /// Open: every request passes.
  Authenticator() = default;
  /// `bearer_sha256`: "sha256:<64 lowercase hex>" each. `realm` names the surface in
  /// WWW-Authenticate. Both lists empty = open.
  Authenticator(std::vector<std::string> bearer_sha256, std::vector<BasicUser> basic,
                std::string realm);

  bool open() const { return bearer_.empty() && basic_.empty(); }
  /// Whether `request` carries a valid credential (always true when open). Compares hashes in
  /// constant time and walks every entry, so timing does not tell which one nearly matched.
  bool check(const HttpRequest& request) const;
  /// The 401 answer: WWW-Authenticate for each accepted scheme and the JSON error body. Never
  /// names what the client sent.
  HttpResponse challenge() const;

  /// "sha256:<hex>" of `secret`.
  static std::string sha256(const std::string& secret);

 private:
  std::vector<std::string> bearer_;
  std::vector<BasicUser> basic_;
  std::string realm_;
};

/// The `token` query parameter removed from `raw_query` (so the routes, which refuse unknown
/// parameters, never see it, and no error message can echo it); returns its decoded value or ""
/// when absent.
std::string takeTokenParameter(std::string& raw_query);

}  // namespace bb
