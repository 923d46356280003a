// permessage-deflate payloads made and read with plain zlib, as a browser's do: the tests check the
// agent against zlib itself, not against its own code (ws/deflate.h).
#pragma once

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

namespace bbtest {

/// Raw DEFLATE of `s` as a client sends it (RFC 7692 7.2.1): a sync flush, without the trailing
/// 00 00 ff ff.
inline std::string rawDeflate(const std::string& s, int level = 6) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, s.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(s.data()));
  z.avail_in = static_cast<uInt>(s.size());
  z.next_out = reinterpret_cast<Bytef*>(&out[0]);
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_SYNC_FLUSH), Z_OK);
  out.resize(out.size() - z.avail_out);
  deflateEnd(&z);
  EXPECT_EQ(out.substr(out.size() - 4), std::string("\x00\x00\xff\xff", 4));
  out.resize(out.size() - 4);
  return out;
}

/// Inflates a permessage-deflate payload with a fresh raw inflater (00 00 ff ff appended).
inline std::string rawInflate(std::string payload) {
  payload.append("\x00\x00\xff\xff", 4);
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, -15), Z_OK);
  std::string out;
  char buf[16384];
  z.next_in = reinterpret_cast<Bytef*>(&payload[0]);
  z.avail_in = static_cast<uInt>(payload.size());
  int rc = Z_OK;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_SYNC_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
  } while (rc == Z_OK && (z.avail_in > 0 || z.avail_out == 0));
  inflateEnd(&z);
  EXPECT_TRUE(rc == Z_OK || rc == Z_BUF_ERROR) << "inflate: " << rc;
  return out;
}

}  // namespace bbtest
