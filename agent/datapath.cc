#include "agent/datapath.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ptnetmap::agent {
namespace {

absl::StatusOr<UniqueFd> Dup(const UniqueFd& fd) {
  int copy = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot duplicate a VM attachment descriptor: ", std::strerror(errno),
                     "; raise the agent's open-file limit (LimitNOFILE)"));
  }
  return UniqueFd(copy);
}

absl::Status DupAll(const std::vector<UniqueFd>& from, std::vector<UniqueFd>& to) {
  for (const UniqueFd& fd : from) {
    absl::StatusOr<UniqueFd> copy = Dup(fd);
    if (!copy.ok()) return copy.status();
    to.push_back(*std::move(copy));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<VmAttachmentHandles> DupHandles(const VmAttachmentHandles& handles) {
  VmAttachmentHandles copy;
  copy.netmap_name = handles.netmap_name;
  copy.region_bytes = handles.region_bytes;
  absl::StatusOr<UniqueFd> region = Dup(handles.region);
  if (!region.ok()) return region.status();
  copy.region = *std::move(region);
  if (absl::Status s = DupAll(handles.kick_fds, copy.kick_fds); !s.ok()) return s;
  if (absl::Status s = DupAll(handles.irq_fds, copy.irq_fds); !s.ok()) return s;
  return copy;
}

}  // namespace ptnetmap::agent
