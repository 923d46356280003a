#include "support/tls_certs.h"

#include <stdexcept>

namespace bbtest {

TestCertificate::TestCertificate(const TempDir& dir, const std::string& name,
                                 const std::string& alt_names)
    : cert_file(dir.file(name + ".pem")), key_file(dir.file(name + "-key.pem")) {
  auto [status, out] =
      runProgram({BB_OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                  "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=" + alt_names, "-keyout",
                  key_file, "-out", cert_file});
  if (status != 0) throw std::runtime_error("openssl req failed: " + out);
}

}  // namespace bbtest
