#include "http/static_files.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>

namespace bb {

namespace fs = std::filesystem;

StaticFiles::StaticFiles(const std::string& root, std::string runtime_config_json)
    : runtime_config_(std::move(runtime_config_json)) {
  std::error_code ec;
  fs::path real = fs::canonical(root, ec);
  if (ec || !fs::is_directory(real, ec))
    throw std::runtime_error("web root " + root + " is not a readable directory" +
                             (ec ? " (" + ec.message() + ")" : "") +
                             "; set web.root in the config, or web.port: -1 to disable the page");
  root_ = real.string();
}

std::string StaticFiles::mimeType(const std::string& path) {
  static const std::map<std::string, std::string> kTypes{
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".txt", "text/plain; charset=utf-8"},
      {".webmanifest", "application/manifest+json"}};
  auto ext = fs::path(path).extension().string();
  auto it = kTypes.find(ext);
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

namespace {

// A path with a segment that starts with '.' (.git, .env, .htpasswd): never served, whatever
// the web root holds.
bool hasDotSegment(const std::string& path) {
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    if (i < path.size() && path[i] == '.') return true;
    i = path.find('/', i);
  }
  return false;
}

}  // namespace

HttpResponse StaticFiles::serve(const HttpRequest& req) const {
  if (req.method != "GET" && req.method != "HEAD") {
    auto r = HttpResponse::error(405, "method_not_allowed",
                                 "method " + req.method + " is not allowed; allowed: GET, HEAD");
    r.headers.emplace_back("Allow", "GET, HEAD");
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    return r;
  }
  HttpResponse resp;
  resp.head = req.method == "HEAD";
  resp.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (req.path == "/bb-config.json") {
    resp.body = runtime_config_;
    resp.headers.emplace_back("Cache-Control", "no-store");
    return resp;
  }
  auto notFound = [&] {
    HttpResponse r = HttpResponse::error(404, "not_found", "no such file: " + req.path);
    r.head = resp.head;
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    return r;
  };
  if (req.path.empty() || req.path[0] != '/' || req.path.find('\0') != std::string::npos ||
      hasDotSegment(req.path))
    return notFound();
  std::string rel = req.path == "/" ? "index.html" : req.path.substr(1);
  // Resolve symlinks and ".." fully, then require the result to stay under the root.
  std::error_code ec;
  fs::path real = fs::weakly_canonical(fs::path(root_) / rel, ec);
  if (ec) return notFound();
  std::string real_s = real.string();
  if (real_s != root_ && real_s.rfind(root_ + "/", 0) != 0) return notFound();
  // A symlink may lead to a dotfile under a plain name.
  if (hasDotSegment(real_s.substr(root_.size()))) return notFound();
  if (fs::is_directory(real, ec)) {
    real /= "index.html";  // never a listing
    real = fs::weakly_canonical(real, ec);
    if (ec || real.string().rfind(root_ + "/", 0) != 0) return notFound();
  }
  struct stat st {};
  if (stat(real.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return notFound();
  std::string etag = "\"" + std::to_string(st.st_size) + "-" + std::to_string(st.st_mtime) + "\"";
  resp.content_type = mimeType(real.string());
  resp.headers.emplace_back("ETag", etag);
  // No build step means no hashed file names: revalidate every time (cheap, thanks to ETag).
  resp.headers.emplace_back("Cache-Control", "no-cache");
  if (resp.content_type.rfind("text/html", 0) == 0) {
    resp.headers.emplace_back(
        "Content-Security-Policy",
        "default-src 'self'; connect-src 'self' http: https: ws: wss:; img-src 'self' data:; "
        "style-src 'self'; script-src 'self'; frame-ancestors 'none'");
    resp.headers.emplace_back("Referrer-Policy", "no-referrer");
  }
  if (!req.if_none_match.empty() && req.if_none_match == etag) {
    resp.status = 304;
    resp.content_type.clear();
    return resp;
  }
  std::ifstream f(real, std::ios::binary);
  if (!f) return notFound();
  resp.body.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return resp;
}

}  // namespace bb
