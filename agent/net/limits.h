// The reactor's own limits, the same on every port whatever it serves (HTTP, HTTPS, WebSocket
// upgrades, the WebSocket clients). What a listener lets a request carry (target, fields, body,
// timeouts, connections) is its ServerOptions (http/server.h); what a WebSocket client may do
// is ws::ServerLimits.
#pragma once

#include <chrono>
#include <cstddef>

namespace bb::net {

/// How often a loop looks for connections past their timeouts (and pings silent clients).
constexpr std::chrono::milliseconds kSweep{250};
/// Connections accepted per wake-up of a listener, so that a burst spreads over the loops.
constexpr int kAcceptsPerEvent = 16;
/// Reads per readable event, so that one client that keeps sending cannot hold its loop.
constexpr int kReadsPerEvent = 4;
/// Bytes asked of the socket per read.
constexpr size_t kReadBytes = 16 * 1024;

// The request head. Poco's own parser limits (Poco::Net::HTTPRequest, MessageHeader), kept so
// that a request that breaks one gets the 400 it always got; ServerOptions' limits are tighter.
constexpr size_t kMaxMethodBytes = 32;
constexpr size_t kMaxTargetBytes = 16384;
constexpr size_t kMaxVersionBytes = 8;
constexpr size_t kMaxNameBytes = 256;
constexpr size_t kMaxValueBytes = 8192;
constexpr size_t kMaxFields = 100;
/// A request line longer than the limits above allow is refused (400) before it ends.
constexpr size_t kMaxRequestLine = kMaxMethodBytes + kMaxTargetBytes + kMaxVersionBytes + 8;
/// A head that has not ended after this many bytes is answered 431: a request within
/// ServerOptions' limits (16 KiB of headers) never comes near it.
constexpr size_t kMaxHeadBytes = 64 * 1024;

}  // namespace bb::net
