// Minimal logging to stderr for ptnetd. Abseil 20220623, the version Debian
// 12 ships, has no absl/log; this keeps the same shape (severity letter,
// time, message) so switching later is mechanical. journald adds the rest.
#ifndef PTNETMAP_AGENT_LOG_H_
#define PTNETMAP_AGENT_LOG_H_

#include "absl/strings/string_view.h"

namespace ptnetmap::agent {

enum class LogSeverity { kInfo, kWarning, kError };

void Log(LogSeverity severity, absl::string_view message);
inline void LogInfo(absl::string_view message) { Log(LogSeverity::kInfo, message); }
inline void LogWarning(absl::string_view message) { Log(LogSeverity::kWarning, message); }
inline void LogError(absl::string_view message) { Log(LogSeverity::kError, message); }

}  // namespace ptnetmap::agent

#endif  // PTNETMAP_AGENT_LOG_H_
