#include "rpc/tls_client.h"

#include "http/server.h"

namespace bb {

const TlsClientApi& tlsClientApi() { return tlsModuleApi<TlsClientApi>("bb_tls_client_api"); }

}  // namespace bb
