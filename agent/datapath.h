// Datapath: the one interface between the agent and the packet-moving layer.
//
// Everything above this interface (manager, service, CLI) is policy: names,
// trust, limits, persistence. Everything below it is mechanism: netmap
// objects in the kernel. Two implementations exist and main() picks one:
//   - KernelDatapath (kernel_datapath.h) speaks ioctls to /dev/netmap;
//   - FakeDatapath (fake_datapath.h) keeps objects in memory for tests.
//
// Contract shared by every method:
// - Names are already validated by the caller (manager.cc); a datapath only
//   checks what the kernel checks.
// - The datapath keeps no desired state. After an agent restart it must be
//   able to rediscover what exists (List) and re-obtain handles of existing
//   VM attachments (AdoptVmAttachment); kernel objects outlive the agent so
//   VM traffic keeps flowing while the agent is down.
// - Errors use absl status codes with messages for the operator:
//     NOT_FOUND          the object (or the NIC) does not exist in the kernel
//     ALREADY_EXISTS     the object exists already (reconcile treats this as
//                        "adopt", so a create is safe to repeat)
//     UNAVAILABLE        /dev/netmap is missing: the module is not loaded
//     UNIMPLEMENTED      the loaded module lacks the request
//     RESOURCE_EXHAUSTED the kernel ran out of memory or ports
//     INTERNAL           anything else, with the errno text
// - Implementations are thread-compatible; the manager serialises calls.
#ifndef PTNETMAP_AGENT_DATAPATH_H_
#define PTNETMAP_AGENT_DATAPATH_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/model.h"
#include "agent/unique_fd.h"
#include "qemu/ivshmem_server.h"

namespace ptnetmap::agent {

// Packets dropped by cause; see ptnetmap.v1.DropCounters.
struct DropCounters {
  uint64_t ring_full = 0;
  uint64_t bad_descriptor = 0;
  uint64_t oversize = 0;
  uint64_t no_destination = 0;
};

// Cumulative counters of one netmap port since it was created in the kernel.
// rx/tx are from the point of view of the port's user (application or VM).
struct PortCounters {
  uint64_t rx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t tx_packets = 0;
  uint64_t tx_bytes = 0;
  DropCounters drops;
  // Passthrough only: doorbell writes by the guest that reached the host
  // worker, interrupts the host injected, and worker thread wake-ups.
  uint64_t kicks = 0;
  uint64_t interrupts = 0;
  uint64_t worker_wakeups = 0;
};

// What to build for a VM attachment. The manager has already applied the
// trust policy: an untrusted attachment becomes port `name` on `switch_name`
// with memory of its own; a trusted one becomes end `pipe_end` of pipe
// `pipe_name`, whose two ends share one memory region (both VMs see both
// ends' rings and buffers: zero copy between them).
struct VmAttachmentSpec {
  std::string name;
  Trust trust = Trust::kUntrusted;
  std::string switch_name;
  std::string pipe_name;
  PipeEnd pipe_end = PipeEnd::kMaster;
  uint32_t rings = 0;         // per direction; VectorsForRings(rings) vectors
  uint16_t peer_id = 1;       // the guest's ivshmem peer id: its port page
  uint64_t region_bytes = 0;  // BAR2 size, a power of two: QEMU refuses others
};

// The spec of an attachment the manager knows (PeerIdOf gives the peer).
VmAttachmentSpec SpecOf(const VmAttachmentRecord& vm);

// The host side of a passthrough attachment: what the ivshmem server hands
// to QEMU (ivshmem::PeerFds: peer id, memory, kick and irq eventfds; see
// qemu/ivshmem_server.h) and the netmap port behind it. Both ends of a
// trusted pipe get the same memory. The kernel keeps its own references;
// the agent's copies can be closed at any time without disturbing traffic.
struct VmAttachmentHandles : ivshmem::PeerFds {
  std::string netmap_name;  // e.g. "vale0:vm1" or "pp1{0"
};

// Returns a copy of `handles` whose descriptors are fresh dup()s (CLOEXEC).
absl::StatusOr<VmAttachmentHandles> DupHandles(const VmAttachmentHandles& handles);

// What exists in the kernel, for reconcile. An implementation that cannot
// enumerate some kind of object leaves it out; reconcile then re-creates it
// and takes ALREADY_EXISTS as "it was there".
struct DatapathInventory {
  std::vector<std::string> switches;
  // Every port on a switch, whatever its kind (persistent port, NIC, VM
  // port), as (switch, port) pairs: "vale0:eth0" is {"vale0", "eth0"}.
  std::vector<std::pair<std::string, std::string>> switch_ports;
  // Pipes that exist on their own (the fake's); netmap has none: a pipe
  // lives while an end is open (see CreatePipe).
  std::vector<std::string> pipes;
  // Private passthrough attachments (untrusted VMs), by attachment name;
  // also any attachment the datapath did not make and cannot place.
  std::vector<std::string> vm_attachments;
  // Pipes whose shared passthrough attachment (both ends, trusted VMs)
  // exists: the ends of these can be adopted.
  std::vector<std::string> vm_pipes;
};

class Datapath {
 public:
  virtual ~Datapath() = default;

  // Human-readable backend name for logs and build info ("kernel", "fake").
  virtual absl::string_view Name() const = 0;

  // Makes switch `name` exist. In netmap a VALE switch is created by its
  // first port and freed with its last; a kernel implementation may therefore
  // only check that the name is acceptable.
  virtual absl::Status CreateSwitch(absl::string_view name) = 0;
  // Removes an empty switch. Precondition (manager): no ports left.
  virtual absl::Status DeleteSwitch(absl::string_view name) = 0;

  // Creates a persistent VALE port and attaches it to the switch
  // (netmap NEWIF + ATTACH). The port survives the agent.
  virtual absl::Status CreatePort(absl::string_view switch_name, absl::string_view port) = 0;
  // Detaches and destroys a persistent port (netmap DETACH + DELIF).
  virtual absl::Status DeletePort(absl::string_view switch_name, absl::string_view port) = 0;

  // Attaches host interface `nic` to the switch (netmap ATTACH of "sw:nic").
  // NOT_FOUND when the host has no such interface.
  virtual absl::Status AttachNic(absl::string_view switch_name, absl::string_view nic) = 0;
  virtual absl::Status DetachNic(absl::string_view switch_name, absl::string_view nic) = 0;

  // Makes pipe `name` usable: "name{0" and "name}0" can then be opened or
  // given to VMs. In netmap a pipe is created by the first open of one of its
  // ends and freed with the last, like a switch; a kernel implementation may
  // therefore only check the name (reconcile then re-creates pipes missing
  // from List silently, as it does switches).
  virtual absl::Status CreatePipe(absl::string_view name) = 0;
  // Precondition (manager): no VM attachment holds an end.
  virtual absl::Status DeletePipe(absl::string_view name) = 0;

  // Builds the kernel side of a passthrough attachment and returns the
  // handles of the VM's peer for the ivshmem server. A kernel worker serves
  // the port's rings from the kick eventfds to the irq eventfds; the
  // attachment outlives the agent.
  //   untrusted: port `switch_name:name`, created in fresh memory of its own,
  //     bound exclusively; ALREADY_EXISTS if an attachment of that name
  //     exists (use AdoptVmAttachment to get its handles).
  //   trusted: both ends of the pipe live in ONE shared region, built when
  //     the first end is attached (the kernel wants every peer of a shared
  //     region at once): peer 1 is the master end "pipe{0", peer 2 the slave
  //     "pipe}0". Attaching the other end later hands out that existing
  //     peer. ALREADY_EXISTS if this end is held already.
  virtual absl::StatusOr<VmAttachmentHandles> CreateVmAttachment(
      const VmAttachmentSpec& spec) = 0;
  // Returns new references to the handles of an existing attachment (after
  // an agent restart), and holds it as CreateVmAttachment would. NOT_FOUND
  // if it does not exist.
  virtual absl::StatusOr<VmAttachmentHandles> AdoptVmAttachment(
      const VmAttachmentSpec& spec) = 0;
  // Releases the attachment: an untrusted one is destroyed (worker stopped,
  // port gone); a pipe's shared region goes when neither end is held any
  // more (created or adopted in this process). A VM still running loses its
  // network but nothing else. NOT_FOUND if nothing was there.
  virtual absl::Status DestroyVmAttachment(const VmAttachmentSpec& spec) = 0;

  // Everything the kernel has now; see DatapathInventory.
  virtual absl::StatusOr<DatapathInventory> List() = 0;

  // Counters of the port an application opens as `netmap_name`.
  virtual absl::StatusOr<PortCounters> ReadCounters(absl::string_view netmap_name) = 0;
};

}  // namespace ptnetmap::agent

#endif  // PTNETMAP_AGENT_DATAPATH_H_
