// bb_tls.so: the agent's TLS, in a module of its own that the agent loads (dlopen) only when a
// listener is configured with TLS. Poco NetSSL pulls in OpenSSL, Poco::Crypto, Poco::Util and
// Poco::XML: about 3 MiB of resident pages at start that an agent without TLS never needs
// (docs/performance.md, "Footprint"). The agent and this module are built together, from one
// tree with one compiler: the C++ types at the boundary are safe here, unlike at the plugin ABI.
#include <Poco/Net/Context.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/SecureServerSocket.h>

#include <mutex>
#include <string>

extern "C" __attribute__((visibility("default"))) bool bb_tls_server_socket(
    const std::string& cert_file, const std::string& key_file, Poco::Net::ServerSocket& out,
    std::string& error) {
  static std::once_flag ssl_once;
  std::call_once(ssl_once, [] { Poco::Net::initializeSSL(); });
  try {
    Poco::Net::Context::Ptr context =
        new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, key_file, cert_file, "",
                               Poco::Net::Context::VERIFY_NONE);
    // TLS 1.2 and later only.
    context->disableProtocols(Poco::Net::Context::PROTO_SSLV2 | Poco::Net::Context::PROTO_SSLV3 |
                              Poco::Net::Context::PROTO_TLSV1 | Poco::Net::Context::PROTO_TLSV1_1);
    out = Poco::Net::SecureServerSocket(context);
    return true;
  } catch (const Poco::Exception& e) {
    error = e.displayText();
    return false;
  }
}
