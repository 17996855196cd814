// Naming rules for every object the agent manages. Names end up inside
// netmap port names ("vale0:p1", "pp1{0"), socket file names and libvirt
// XML, so only characters that mean nothing to any of those are allowed.
// Each function returns INVALID_ARGUMENT with the rule and an example.
#ifndef PTNETMAP_AGENT_NAMES_H_
#define PTNETMAP_AGENT_NAMES_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ptnetmap::agent {

// "vale" followed by 1..11 of [A-Za-z0-9_]: netmap recognises VALE ports by
// the prefix, and keeps switch names under 16 bytes.
absl::Status ValidateSwitchName(absl::string_view name);
// 1..15 of [A-Za-z0-9_.-], starting with a letter or digit: a persistent
// VALE port is a host-wide network interface, so IFNAMSIZ applies.
absl::Status ValidatePortName(absl::string_view name);
// 1..31 of [A-Za-z0-9_.-], starting with a letter or digit: it names a
// socket file and a libvirt device.
absl::Status ValidateVmAttachmentName(absl::string_view name);
// 1..15 of [A-Za-z0-9_] (its parent is a host-wide interface, like a
// persistent port), not starting with "vale" (netmap would read it as a
// switch).
absl::Status ValidatePipeName(absl::string_view name);
// A Linux interface name netmap can address: 1..15 of [A-Za-z0-9_.-],
// not "." or "..".
absl::Status ValidateNicName(absl::string_view name);

}  // namespace ptnetmap::agent

#endif  // PTNETMAP_AGENT_NAMES_H_
