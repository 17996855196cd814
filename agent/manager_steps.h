// Helpers shared by the manager's source files; not part of its interface.
#ifndef PTNETMAP_AGENT_MANAGER_STEPS_H_
#define PTNETMAP_AGENT_MANAGER_STEPS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "agent/log.h"

namespace ptnetmap::agent::manager_steps {

// A datapath create that reports ALREADY_EXISTS found the object left by a
// previous agent (or by a crash before the database commit): adopt it.
// Returns whether this call created it, so that an undo never removes an
// object we did not make.
inline absl::StatusOr<bool> CreatedOrAdopted(absl::Status status) {
  if (status.ok()) return true;
  if (absl::IsAlreadyExists(status)) return false;
  return status;
}

// Undo of a datapath step after a later step failed. If the undo fails too
// the kernel keeps an object the database does not know; say so.
inline void Undo(const absl::Status& status, absl::string_view what) {
  if (!status.ok() && !absl::IsNotFound(status)) {
    LogError(absl::StrCat("could not undo ", what, ": ", status.message(),
                          "; it stays in the kernel and will be reported as drift"));
  }
}

// After a delete's datapath step failed, the row removed before it goes
// back so that the database keeps describing the kernel.
inline void Restore(const absl::Status& status, absl::string_view what) {
  if (!status.ok()) {
    LogError(absl::StrCat("could not restore ", what, " in the database: ", status.message()));
  }
}

}  // namespace ptnetmap::agent::manager_steps

#endif  // PTNETMAP_AGENT_MANAGER_STEPS_H_
