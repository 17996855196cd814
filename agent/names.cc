#include "agent/names.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ptnetmap::agent {
namespace {

constexpr size_t kMaxSwitchName = 15;  // netmap's bridge name buffer is 16 bytes
constexpr size_t kMaxInterfaceName = 15;  // IFNAMSIZ - 1: NICs, persistent ports, pipes
constexpr size_t kMaxAttachmentName = 31;  // keeps "switch:name" well inside nr_name[64]

bool AllOf(absl::string_view s, absl::string_view extra) {
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && !absl::StrContains(extra, c)) {
      return false;
    }
  }
  return true;
}

absl::Status Invalid(absl::string_view kind, absl::string_view name, absl::string_view rule) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid ", kind, " name '", name, "': ", rule));
}

absl::Status ValidateObjectName(absl::string_view kind, absl::string_view name,
                                size_t max_size, absl::string_view example) {
  if (name.empty() || name.size() > max_size || !AllOf(name, "_.-") ||
      !absl::ascii_isalnum(static_cast<unsigned char>(name[0]))) {
    return Invalid(kind, name,
                   absl::StrCat("use 1 to ", max_size,
                                " letters, digits, '_', '.' or '-', starting with a letter or "
                                "digit (e.g. ",
                                example, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateSwitchName(absl::string_view name) {
  if (!absl::StartsWith(name, "vale") || name.size() <= 4 || name.size() > kMaxSwitchName ||
      !AllOf(name, "_")) {
    return Invalid("switch", name,
                   absl::StrCat("use \"vale\" followed by 1 to ", kMaxSwitchName - 4,
                                " letters, digits or '_' (e.g. vale0)"));
  }
  return absl::OkStatus();
}

absl::Status ValidatePortName(absl::string_view name) {
  return ValidateObjectName("port", name, kMaxInterfaceName, "p1");
}

absl::Status ValidateVmAttachmentName(absl::string_view name) {
  return ValidateObjectName("VM attachment", name, kMaxAttachmentName, "vm1-net0");
}

absl::Status ValidatePipeName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxInterfaceName || !AllOf(name, "_") ||
      absl::StartsWith(name, "vale")) {
    return Invalid("pipe", name,
                   absl::StrCat("use 1 to ", kMaxInterfaceName,
                                " letters, digits or '_', not starting with \"vale\" "
                                "(e.g. pp1)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateNicName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxInterfaceName || !AllOf(name, "_.-") || name == "." ||
      name == "..") {
    return Invalid("interface", name,
                   absl::StrCat("use the name shown by `ip link`: 1 to ", kMaxInterfaceName,
                                " letters, digits, '_', '.' or '-' (e.g. eth0)"));
  }
  return absl::OkStatus();
}

}  // namespace ptnetmap::agent
