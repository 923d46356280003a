#include "ws/tls_stream.h"

#include "http/server.h"

namespace bb::ws {

const TlsStreamApi& tlsStreamApi() { return tlsModuleApi<TlsStreamApi>("bb_tls_stream_api"); }

}  // namespace bb::ws
