#include "agent/log.h"

#include <cstdio>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ptnetmap::agent {

void Log(LogSeverity severity, absl::string_view message) {
  const char letter = severity == LogSeverity::kInfo      ? 'I'
                      : severity == LogSeverity::kWarning ? 'W'
                                                          : 'E';
  // One fprintf call per line so that lines from threads do not interleave.
  absl::FPrintF(stderr, "%c%s ptnetd] %s\n", letter,
                absl::FormatTime("%m%d %H:%M:%E6S", absl::Now(), absl::LocalTimeZone()),
                message);
}

}  // namespace ptnetmap::agent
