#include "agent/model.h"

#include <net/ptnetmap.h>

#include "absl/strings/str_cat.h"
#include "qemu/ivshmem_server.h"

namespace ptnetmap::agent {

absl::string_view TrustName(Trust trust) {
  return trust == Trust::kTrusted ? "trusted" : "untrusted";
}

std::string SwitchPortNetmapName(absl::string_view switch_name, absl::string_view port) {
  return absl::StrCat(switch_name, ":", port);
}

std::string PipeEndNetmapName(absl::string_view pipe, PipeEnd end) {
  return absl::StrCat(pipe, end == PipeEnd::kMaster ? "{" : "}", "0");
}

std::string VmAttachmentNetmapName(const VmAttachmentRecord& vm) {
  return vm.trust == Trust::kTrusted ? PipeEndNetmapName(vm.pipe_name, vm.pipe_end)
                                     : SwitchPortNetmapName(vm.switch_name, vm.name);
}

uint32_t VectorsForRings(uint32_t rings) { return PTNM_RING_VECTOR(2 * rings - 1) + 1; }

uint16_t PeerIdOf(const VmAttachmentRecord& vm) {
  return vm.trust == Trust::kTrusted && vm.pipe_end == PipeEnd::kSlave ? 2 : 1;
}

std::string LibvirtShmemXml(absl::string_view name, absl::string_view socket_path,
                            uint32_t vectors) {
  return ivshmem::LibvirtShmemXml(name, socket_path, vectors);
}

}  // namespace ptnetmap::agent
