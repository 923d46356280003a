// What the agent's executable costs every process and thread before it does anything (issues 17
// and 18, idle RSS under 16 MiB; docs/performance.md, "Idle memory"): read from the built ELF
// file, so that a change that adds to it fails here rather than in a benchmark nobody runs.
#include <elf.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "support/process.h"

namespace {

struct ElfFacts {
  uint64_t tls_bytes = 0;           // PT_TLS p_memsz: static TLS, set up on every thread
  std::vector<std::string> needed;  // DT_NEEDED: libraries loaded with the executable
};

ElfFacts readElf(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ElfFacts facts;
  if (bytes.size() < sizeof(Elf64_Ehdr)) return facts;
  Elf64_Ehdr eh;
  std::memcpy(&eh, bytes.data(), sizeof eh);
  std::vector<Elf64_Phdr> ph(eh.e_phnum);
  for (size_t i = 0; i < ph.size(); ++i)
    std::memcpy(&ph[i], bytes.data() + eh.e_phoff + i * sizeof(Elf64_Phdr), sizeof(Elf64_Phdr));
  // Addresses of the dynamic section are virtual: map them to file offsets through PT_LOAD.
  auto offsetOf = [&](uint64_t vaddr) -> uint64_t {
    for (const auto& p : ph)
      if (p.p_type == PT_LOAD && vaddr >= p.p_vaddr && vaddr < p.p_vaddr + p.p_filesz)
        return vaddr - p.p_vaddr + p.p_offset;
    return 0;
  };
  for (const auto& p : ph) {
    if (p.p_type == PT_TLS) facts.tls_bytes = p.p_memsz;
    if (p.p_type != PT_DYNAMIC) continue;
    uint64_t strtab = 0;
    std::vector<uint64_t> names;
    for (uint64_t off = p.p_offset; off + sizeof(Elf64_Dyn) <= p.p_offset + p.p_filesz;
         off += sizeof(Elf64_Dyn)) {
      Elf64_Dyn d;
      std::memcpy(&d, bytes.data() + off, sizeof d);
      if (d.d_tag == DT_NULL) break;
      if (d.d_tag == DT_STRTAB) strtab = offsetOf(d.d_un.d_ptr);
      if (d.d_tag == DT_NEEDED) names.push_back(d.d_un.d_val);
    }
    for (uint64_t n : names) facts.needed.emplace_back(bytes.data() + strtab + n);
  }
  return facts;
}

TEST(Footprint, TheAgentHasNoThreadLocalBuffers) {
  // glibc sets up a module's static TLS on every thread it starts, zeroing all of it, whether or
  // not the thread uses it: a 16 KiB thread_local buffer cost the agent's ~30 threads 0.4 MiB.
  const ElfFacts agent = readElf(bbtest::binPath("blockbuster-agent"));
  EXPECT_LE(agent.tls_bytes, 256u)
      << "blockbuster-agent has " << agent.tls_bytes
      << " bytes of thread_local data, paid by every thread in RSS: keep buffers on the stack "
         "of the thread that uses them or in the object that owns them";
}

TEST(Footprint, TheAgentLoadsOnlyTheLibrariesItIsMeantTo) {
  // Each library mapped is paid in RSS for as long as the agent runs (its symbol tables, and its
  // code in 64 KiB windows around each page run): one added by a dependency's default (Boost.DLL
  // pulled in Boost.Filesystem) shows here. OpenSSL is in bb_tls.so, loaded only with TLS;
  // SQLite (Poco::Data) comes with the receipts plugin. zlib (WebSocket compression) costs
  // nothing more: libPocoFoundation loads it anyway.
  const std::set<std::string> allowed = {"libyaml-cpp.so.0.7",
                                         "libPocoNet.so.80",
                                         "libPocoFoundation.so.80",
                                         "libprometheus-cpp-core.so.1.0",
                                         "libz.so.1",
                                         "libstdc++.so.6",
                                         "libm.so.6",
                                         "libgcc_s.so.1",
                                         "libc.so.6",
                                         "ld-linux-x86-64.so.2"};
  const ElfFacts agent = readElf(bbtest::binPath("blockbuster-agent"));
  ASSERT_FALSE(agent.needed.empty()) << "no DT_NEEDED read from blockbuster-agent";
  for (const auto& lib : agent.needed)
    EXPECT_TRUE(allowed.count(lib))
        << "blockbuster-agent now needs " << lib
        << ": a library the agent did not load before, paid in its idle RSS (issue 18's 16 MiB);"
           " if it is meant, add it here and its cost to docs/performance.md";
}

}  // namespace
