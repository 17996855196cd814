// The agent's desired configuration: plain records shared by the manager, the
// state store and the datapath interface. No behaviour lives here except the
// netmap port names derived from the records.
#ifndef PTNETMAP_AGENT_MODEL_H_
#define PTNETMAP_AGENT_MODEL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace ptnetmap::agent {

// Values match ptnetmap.v1.TrustPolicy and are stored in the database.
enum class Trust : int { kUntrusted = 1, kTrusted = 2 };

absl::string_view TrustName(Trust trust);  // "untrusted" or "trusted"

// A trusted attachment holds one end of a pipe; the ends are told apart by
// netmap's '{' (master) and '}' (slave) name suffixes.
enum class PipeEnd : int { kMaster = 0, kSlave = 1 };

struct SwitchRecord {
  std::string name;
  friend bool operator==(const SwitchRecord&, const SwitchRecord&) = default;
};

struct PortRecord {
  std::string switch_name;
  std::string name;
  friend bool operator==(const PortRecord&, const PortRecord&) = default;
};

struct NicRecord {
  std::string switch_name;
  std::string nic;
  friend bool operator==(const NicRecord&, const NicRecord&) = default;
};

struct PipeRecord {
  std::string name;
  friend bool operator==(const PipeRecord&, const PipeRecord&) = default;
};

struct VmAttachmentRecord {
  std::string name;
  Trust trust = Trust::kUntrusted;
  std::string switch_name;  // kUntrusted only
  std::string pipe_name;    // kTrusted only
  PipeEnd pipe_end = PipeEnd::kMaster;  // kTrusted only
  std::vector<std::string> peers;       // kTrusted only, sorted
  uint32_t rings = 0;  // per direction
  uint64_t region_bytes = 0;
  friend bool operator==(const VmAttachmentRecord&, const VmAttachmentRecord&) = default;
};

// Everything the agent has been asked to keep, as stored in the database.
struct DesiredState {
  std::vector<SwitchRecord> switches;
  std::vector<PortRecord> ports;
  std::vector<NicRecord> nics;
  std::vector<PipeRecord> pipes;
  std::vector<VmAttachmentRecord> vm_attachments;
  friend bool operator==(const DesiredState&, const DesiredState&) = default;
};

// MSI-X vectors of a passthrough port with `rings` rings per direction:
// the control mailbox plus one per ring (include/net/ptnetmap.h).
uint32_t VectorsForRings(uint32_t rings);

// The ivshmem peer id (IVPosition) of the VM behind an attachment: a private
// port has the single guest peer 1; the two ends of a shared pipe region are
// peers 1 (master) and 2 (slave), each with its own port descriptor page.
uint16_t PeerIdOf(const VmAttachmentRecord& vm);

// Netmap names, what applications pass after "netmap:".
// A port, NIC or untrusted VM port on a switch: "vale0:p1".
std::string SwitchPortNetmapName(absl::string_view switch_name, absl::string_view port);
// One end of pipe "pp1": "pp1{0" (master) or "pp1}0" (slave).
std::string PipeEndNetmapName(absl::string_view pipe, PipeEnd end);
// The netmap port behind a VM attachment.
std::string VmAttachmentNetmapName(const VmAttachmentRecord& vm);

// The libvirt device that gives a VM this attachment (hypervisor facts:
// the model must be named, <size> is refused, ioeventfd keeps kicks in KVM).
std::string LibvirtShmemXml(absl::string_view name, absl::string_view socket_path,
                            uint32_t vectors);

}  // namespace ptnetmap::agent

#endif  // PTNETMAP_AGENT_MODEL_H_
