// SPDX-License-Identifier: BSD-2-Clause
// The one clock of the tools: CLOCK_MONOTONIC in nanoseconds. Packet
// timestamps use it too, so ping and pong on one machine agree.
#ifndef PTNETMAP_TOOLS_COMMON_CLOCK_H_
#define PTNETMAP_TOOLS_COMMON_CLOCK_H_

#include <time.h>

#include <cstdint>

namespace ptools {

inline constexpr uint64_t kNsPerSec = 1'000'000'000;

inline uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * kNsPerSec + static_cast<uint64_t>(ts.tv_nsec);
}

// Sleeps for `ns` (returns early on a signal, which is what a stop request wants).
inline void SleepNs(uint64_t ns) {
  timespec ts{static_cast<time_t>(ns / kNsPerSec), static_cast<long>(ns % kNsPerSec)};
  nanosleep(&ts, nullptr);
}

}  // namespace ptools

#endif  // PTNETMAP_TOOLS_COMMON_CLOCK_H_
