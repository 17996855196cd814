#include "agent/datapath.h"

namespace ptnetmap::agent {

absl::StatusOr<VmAttachmentHandles> DupHandles(const VmAttachmentHandles& handles) {
  absl::StatusOr<ivshmem::PeerFds> fds = ivshmem::DupPeerFds(handles);
  if (!fds.ok()) return fds.status();
  VmAttachmentHandles copy;
  static_cast<ivshmem::PeerFds&>(copy) = *std::move(fds);
  copy.netmap_name = handles.netmap_name;
  return copy;
}

VmAttachmentSpec SpecOf(const VmAttachmentRecord& vm) {
  return VmAttachmentSpec{.name = vm.name, .trust = vm.trust, .switch_name = vm.switch_name,
                          .pipe_name = vm.pipe_name, .pipe_end = vm.pipe_end,
                          .rings = vm.rings, .peer_id = PeerIdOf(vm),
                          .region_bytes = vm.region_bytes};
}

}  // namespace ptnetmap::agent
