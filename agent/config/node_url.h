// The one check of the node's URLs (rpc_url, ws_url and their environment variables), used by
// the config loader and by the RPC client, so that --check-config refuses exactly the URLs the
// agent would refuse at start. Every message names the URL with its user info (user:password@)
// replaced by "<redacted>" and long values cut.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace bb {

enum class NodeUrlUse {
  kRpc,        ///< rpc_url: http:// or https://
  kWebSocket,  ///< ws_url: ws:// or wss://
};

/// A node URL taken apart.
struct NodeUrl {
  std::string scheme;       ///< lower case: http, https, ws or wss
  std::string host;         ///< as written, without the brackets of an IPv6 literal
  std::string host_header;  ///< host as sent in Host: an IPv6 literal in brackets
  uint16_t port = 0;        ///< the URL's port, or the scheme's default
  std::string target;       ///< path and query as written, "/" when none
};

/// Why a URL was refused: what is wrong (naming the URL, credentials redacted) and the fix.
struct NodeUrlProblem {
  std::string what;
  std::string fix;
};

/// Checks `text`: the scheme for `use`, a host (a name, an IPv4 address or a bracketed IPv6
/// address), an optional port from 1 to 65535, no user info (credentials in a URL end up in logs
/// and process listings: the token goes in auth_token), no fragment, no whitespace or control
/// character. Returns true and fills `out`, or false and fills `problem`.
bool parseNodeUrl(std::string_view text, NodeUrlUse use, NodeUrl& out, NodeUrlProblem& problem);

/// `url` with the user info of its authority (anything before '@') replaced by "<redacted>".
std::string redactUrlCredentials(std::string_view url);

/// `value` as it appears in a message: quoted, credentials redacted, cut after 60 characters.
std::string echoUrl(std::string_view value);

}  // namespace bb
