#include "devnode_client.h"

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/StreamCopier.h>
#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include "support/await.h"

namespace devnodetest {

Devnode::Devnode(std::vector<std::string> args) {
  std::vector<std::string> argv = {bbtest::binPath("bb-devnode"), "--listen", "127.0.0.1:0"};
  argv.insert(argv.end(), args.begin(), args.end());
  proc_ = std::make_unique<bbtest::ChildProcess>(argv);
  auto line = proc_->waitForLine("bb-devnode ready", std::chrono::seconds(20));
  if (!line) {
    ADD_FAILURE() << "bb-devnode did not get ready; output:\n" << proc_->output();
    return;
  }
  auto port = bbtest::portFromLine(*line, "rpc");
  if (!port) {
    ADD_FAILURE() << "no rpc= in ready line: " << *line;
    return;
  }
  port_ = *port;
}

HttpResult Devnode::http(const std::string& verb, const std::string& path, const std::string& body,
                         const std::map<std::string, std::string>& headers,
                         std::chrono::milliseconds timeout) const {
  HttpResult out;
  try {
    Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port_));
    session.setTimeout(Poco::Timespan(static_cast<long>(timeout.count() / 1000),
                                      static_cast<long>(timeout.count() % 1000) * 1000));
    Poco::Net::HTTPRequest req(verb, path, Poco::Net::HTTPMessage::HTTP_1_1);
    req.setHost("127.0.0.1", static_cast<Poco::UInt16>(port_));
    for (const auto& [k, v] : headers) req.set(k, v);
    if (!body.empty() || verb == "POST") {
      req.setContentType("application/json");
      req.setContentLength(static_cast<std::streamsize>(body.size()));
    }
    session.sendRequest(req) << body;
    Poco::Net::HTTPResponse resp;
    std::istream& in = session.receiveResponse(resp);
    out.ok = true;
    out.status = resp.getStatus();
    out.content_length = resp.hasContentLength() ? resp.getContentLength64() : -1;
    try {
      Poco::StreamCopier::copyToString(in, out.body);
    } catch (const Poco::Exception& e) {
      out.error = e.displayText();  // a body cut short: keep what arrived
    }
  } catch (const Poco::TimeoutException& e) {
    out.ok = false;
    out.timed_out = true;
    out.error = e.displayText();
  } catch (const Poco::Exception& e) {
    out.ok = false;
    out.error = e.displayText();
  }
  return out;
}

HttpResult Devnode::rpc(const std::string& method, const std::string& params_json,
                        const std::map<std::string, std::string>& headers,
                        std::chrono::milliseconds timeout) const {
  std::string body = "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"" + method + "\"";
  if (!params_json.empty()) body += ",\"params\":" + params_json;
  body += "}";
  return http("POST", "/", body, headers, timeout);
}

Json Devnode::result(const std::string& method, const std::string& params_json) const {
  HttpResult r = rpc(method, params_json);
  EXPECT_TRUE(r.ok) << method << ": " << r.error;
  EXPECT_EQ(r.status, 200) << method << ": " << r.body;
  if (!r.ok || r.status != 200) return Json();
  Json j = r.json();
  EXPECT_TRUE(j.contains("result")) << method << ": " << r.body;
  EXPECT_EQ(j["id"], Json(7)) << method;
  EXPECT_EQ(j["jsonrpc"], Json("2.0")) << method;
  return j["result"];
}

Json Devnode::control(const std::string& verb, const std::string& path,
                      const std::string& body) const {
  HttpResult r = http(verb, path, body);
  EXPECT_TRUE(r.ok) << verb << " " << path << ": " << r.error;
  EXPECT_EQ(r.status, 200) << verb << " " << path << ": " << r.body;
  if (!r.ok) return Json();
  return r.json();
}

uint64_t Devnode::height() const {
  return static_cast<uint64_t>(control("GET", "/_devnode/state")["height"].asInt());
}

::testing::AssertionResult hasKeys(const Json& obj, const std::vector<std::string>& keys) {
  if (!obj.isObject()) return ::testing::AssertionFailure() << "not an object: " << obj.dump();
  for (const auto& k : keys)
    if (!obj.contains(k))
      return ::testing::AssertionFailure()
             << "missing \"" << k << "\" in " << obj.dump().substr(0, 400);
  return ::testing::AssertionSuccess();
}

bool waitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  return bbtest::eventually(pred, timeout, std::chrono::milliseconds(25));
}

}  // namespace devnodetest
