// Serves the dashboard's static files (web/) on the web port: correct MIME types, ETag with
// 304, no directory listing, and nothing outside the root (no "..", no symlink escape).
// Also serves /bb-config.json, the runtime config that tells the page where the API is.
#pragma once

#include <string>

#include "http/router.h"

namespace bb {

class StaticFiles {
 public:
  /// `root` must be a directory (its real path is taken once, here). Throws std::runtime_error.
  StaticFiles(const std::string& root, std::string runtime_config_json);
  HttpResponse serve(const HttpRequest& request) const;
  const std::string& root() const { return root_; }

  static std::string mimeType(const std::string& path);

 private:
  std::string root_;
  std::string runtime_config_;
};

}  // namespace bb
