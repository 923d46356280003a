// Fuzz target: query-string parsing and the router's handling of any request line.
#include <cstddef>
#include <cstdint>
#include <string>

#include "http/router.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  bb::QueryParams params;
  std::string error = bb::parseQuery(text, params);
  if (error.empty()) {
    long long value = 0;
    bb::intParam(params, "limit", 100, 1, 1000, value);
    if (value < 1 || value > 1000) __builtin_trap();  // a value outside the range got through
  }
  static bb::Router router = [] {
    bb::Router r({"http://allowed.example"});
    r.get("/theblock/receipts", [](const bb::HttpRequest&) { return bb::HttpResponse::json("{}"); },
          {"limit", "offset", "market"});
    return r;
  }();
  bb::HttpRequest req;
  size_t q = text.find('?');
  req.method = size % 3 == 0 ? "GET" : size % 3 == 1 ? "HEAD" : "DELETE";
  req.path = text.substr(0, q);
  if (q != std::string::npos) req.raw_query = text.substr(q + 1);
  bb::HttpResponse resp = router.handle(req);
  if (resp.status < 200 || resp.status >= 500) __builtin_trap();  // never a 5xx for client input
  return 0;
}
