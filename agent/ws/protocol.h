// The JSON messages of the dashboard stream (/theblock/ws) and of the feature stream, and the
// content fingerprints that decide whether a stream's data changed. Pure functions, reentrant.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/api_table.h"

namespace bb::ws {

/// The dashboard streams, in the order of the welcome message: the streamed rows of the API
/// table (api/api_table.h). A client receives every stream but the opt-in ones (`history`) until
/// it subscribes explicitly.
inline constexpr auto kStreams = api::streamNames();
constexpr int kStreamCount = static_cast<int>(kStreams.size());
constexpr int kHealthStream = api::streamIndexOf("health");
constexpr int kHistoryStream = api::streamIndexOf("history");
/// What a client receives until it subscribes explicitly (bit i = kStreams[i]).
constexpr uint32_t kDefaultStreamMask = api::defaultStreams();
static_assert(kHealthStream >= 0 && kHistoryStream >= 0, "the API table names these streams");

/// Index of a stream name in kStreams, or -1.
int streamIndex(std::string_view name);

/// Agent wall-clock time in unix milliseconds.
int64_t unixMillis();

/// The data of a section or composed body without the fields that change every second (the
/// top-level "timestamp", and "age_seconds", "uptime_seconds", "*_age_seconds" at any depth),
/// as a 128-bit digest of the rest (whitespace outside strings ignored), computed while reading the
/// text, without building it: two bodies with the same fingerprint carry the same information. A
/// body that is not well-formed JSON is its own fingerprint.
std::string contentFingerprint(const std::string& body);

/// What a health change means for a page: status, reasons, node reachability (and ban), and each
/// plugin's state. Ages, counters and durations are left out.
std::string healthFingerprint(const std::string& health_body);

/// {"type":type,"stream":stream,"data":<data_json>,"seq":seq,"timestamp":ms}. `data_json` must
/// be valid JSON (it is inserted as is).
std::string dataMessage(std::string_view type, std::string_view stream,
                        const std::string& data_json, uint64_t seq, int64_t timestamp_ms);

/// A message outside any stream's sequence: "seq" is null, "stream" is null when empty.
std::string controlMessage(std::string_view type, std::string_view stream,
                           const std::string& data_json, int64_t timestamp_ms);

/// {"topic":"features","names":[...],"data":[...],"feature_lag_seconds":x|null,"timestamp":ms};
/// non-finite values are null. `names` and `values` have the same length.
std::string featureMessage(const std::vector<std::string>& names, const std::vector<double>& values,
                           std::optional<double> feature_lag_seconds, int64_t timestamp_ms);

/// A client request on the dashboard stream.
struct ClientRequest {
  enum class Kind { kSubscribe, kUnsubscribe, kPing, kInvalid } kind = Kind::kInvalid;
  int stream = -1;    ///< for subscribe/unsubscribe
  std::string error;  ///< kInvalid: what is wrong, for the client
  std::string code;   ///< kInvalid: bad_json, unknown_type, unknown_stream, bad_request
};

/// Parses one text message from a client. `allow_streams` false (feature stream): only ping.
ClientRequest parseClientRequest(std::string_view text, bool allow_streams = true);

}  // namespace bb::ws
