// bb-receipts-fill: writes COUNT receipts into the receipts store at PATH (created with the
// plugin's own schema if absent) through ReceiptStore::ingest, for bench/mixed/run.py: a store
// of a million receipts in about a minute rather than hours of ingest over RPC. Bench only.
//
//   bb-receipts-fill PATH COUNT
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>

#include "receipt_fill.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: bb-receipts-fill PATH COUNT\n");
    return 2;
  }
  const std::string path = argv[1];
  const long long count = std::atoll(argv[2]);
  if (count <= 0) {
    std::fprintf(stderr, "bb-receipts-fill: COUNT must be a positive integer, got '%s'\n", argv[2]);
    return 2;
  }
  try {
    const auto t0 = std::chrono::steady_clock::now();
    {
      blockbuster::receipts::ReceiptStore store(path, blockbuster::receipts::RetentionPolicy{0, 0});
      bbbench::fillReceipts(store, count);
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(path, ec);
    std::printf("bb-receipts-fill: %lld receipts in %.1f s, file %.1f MiB\n", count, s,
                ec ? 0.0 : static_cast<double>(bytes) / (1024.0 * 1024.0));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bb-receipts-fill: %s\n", e.what());
    return 1;
  }
  return 0;
}
