// The requests of the plugin-process protocol (`isolation: process`), on an ipc::Channel.
// Every reply's first field is a bb_status (or an HTTP status for kRoute) as decimal text.
// The host API of plugin_abi.h maps onto it one to one, so that a plugin runs unchanged in
// either mode; docs/architecture.md ("Plugin isolation") describes the whole exchange.
#pragma once

#include <cstdint>
#include <string>

namespace bb::ipc {

// agent -> runner
constexpr uint8_t kCreate = 1;   ///< [config_json, state_dir] -> [status, error]
constexpr uint8_t kCollect = 2;  ///< [] -> [status, error]
constexpr uint8_t kDestroy = 3;  ///< [] -> [status]
/// [path, key1, value1, ...] -> [http_status, body]
constexpr uint8_t kRoute = 4;

// runner -> agent (the host API)
constexpr uint8_t kLog = 20;           ///< [level, message] -> [status]
constexpr uint8_t kRpc = 21;           ///< [method, params_json] -> [status, body]
constexpr uint8_t kRpcMany = 22;       ///< [m1, p1, m2, p2, ...] -> [status, s1, b1, s2, b2, ...]
constexpr uint8_t kPublish = 23;       ///< [section, json] -> [status]
constexpr uint8_t kPublishError = 24;  ///< [section, reason] -> [status]
/// [name, help, kind, op, value, flags, n1, v1, n2, v2, ...] -> [status]
constexpr uint8_t kMetric = 25;
constexpr uint8_t kFeature = 26;  ///< [name, value] -> [status]
constexpr uint8_t kServe = 27;    ///< [path] -> [status]

/// The file descriptor on which bb-plugin-runner finds its end of the channel.
constexpr int kRunnerFd = 3;

// Bodies the two sides write themselves, built with the SDK's JSON (protocol.cc).

/// The body of a kRoute answer the plugin did not write (no such route, busy, the process
/// restarting): {"error":{"code":code,"message":message}}, the shape of the agent's own errors.
std::string routeErrorBody(const std::string& code, const std::string& message);
/// The body of an RPC call that failed before the agent answered it: {"code":0,"message":...},
/// the shape of the RPC client's own failures (rpc_client.h).
std::string callFailureBody(const std::string& message);

}  // namespace bb::ipc
