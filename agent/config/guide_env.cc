// SHA-256 of a token (config_values.h: sha256Text), for METRICS_AUTH_TOKEN, the Python server's
// variable the guide's list leaves out: the config holds hashes, never tokens. Poco here only for
// the digest.
#include <Poco/DigestEngine.h>
#include <Poco/SHA2Engine.h>

#include "config/config_values.h"

namespace bb::config_detail {

std::string sha256Text(const std::string& text) {
  Poco::SHA2Engine engine(Poco::SHA2Engine::SHA_256);
  engine.update(text);
  return "sha256:" + Poco::DigestEngine::digestToHex(engine.digest());
}

}  // namespace bb::config_detail
