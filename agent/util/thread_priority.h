// Lowering the calling thread's CPU priority (Linux: nice is per thread).
#pragma once

#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

namespace bb {

/// Makes the calling thread `by` nicer than it is (so relative to the agent's own nice: a unit
/// with Nice=5 gets 5 + by), capped at 19. A thread may always lower its priority, never raise it
/// back without privilege. Returns the thread's nice value afterwards.
inline int lowerThisThreadPriority(int by) {
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, tid);
  if (errno != 0 || by <= 0) return nice;
  int target = std::min(19, nice + by);
  if (setpriority(PRIO_PROCESS, tid, target) == 0) nice = target;
  return nice;
}

}  // namespace bb
