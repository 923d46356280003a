// Test support: TLS certificates made at test time by openssl (no key material in the tree).
#pragma once

#include <string>

#include "support/process.h"

namespace bbtest {

/// A self-signed certificate (its own CA) and its unencrypted key, written by openssl to
/// `dir`/<name>.pem and `dir`/<name>-key.pem, valid for one day for the subjectAltName
/// `alt_names` (openssl syntax). Throws std::runtime_error with openssl's output when it fails.
struct TestCertificate {
  explicit TestCertificate(const TempDir& dir, const std::string& name = "cert",
                           const std::string& alt_names = "IP:127.0.0.1,DNS:localhost");
  std::string cert_file;
  std::string key_file;
};

}  // namespace bbtest
