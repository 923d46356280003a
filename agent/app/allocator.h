// The allocator settings the agent runs with (docs/reliability.md, "Soak").
#pragma once

namespace bb {

/// Re-executes the agent once with GLIBC_TUNABLES set for its allocator (no per-thread cache,
/// two arenas), unless BLOCK_BUSTER_ALLOCATOR_TUNING=off or GLIBC_TUNABLES already names a
/// glibc.malloc setting (the operator's choice wins). Returns only when it did not re-execute.
void tuneAllocator(char** argv);

}  // namespace bb
