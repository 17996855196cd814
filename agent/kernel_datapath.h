// KernelDatapath: the Datapath over /dev/netmap, with the standard netmap
// control requests (NIOCCTRL): VALE_NEWIF/DELIF for persistent ports,
// VALE_ATTACH/DETACH for NICs, VALE_LIST for reconcile, and our own
// (<net/ptnetmap_ctl.h>): PTNETMAP_REQ_PORT_STATS_GET for per-port counters
// and the passthrough requests for VM attachments, through qemu/'s
// passthrough.h (the same code ptnm-ivshmem-server uses):
//
//   untrusted VM "vm1" on vale0  kernel attachment "vm1": one peer, port
//                                "vale0:vm1", memory of its own
//   trusted VMs on pipe pp1      kernel attachment "pipe:pp1", PTNETMAP_PT_SHARED:
//                                peer 1 "pp1{0" (master), peer 2 "pp1}0" (slave),
//                                made with the first VM, gone with the last
//
// Adopting (after an agent restart) and attaching the second end of a pipe
// use PTNETMAP_REQ_PT_FDS. Pipes themselves are not objects here: the module
// creates a pipe when an end is first opened (by an attachment or an app) and
// frees it with the last, so CreatePipe only validates.
#ifndef PTNETMAP_AGENT_KERNEL_DATAPATH_H_
#define PTNETMAP_AGENT_KERNEL_DATAPATH_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

#include "agent/datapath.h"
#include "agent/unique_fd.h"

struct nmreq_header;
struct ptnetmap_port_stats;

namespace ptnetmap::agent {

// The kernel's per-port counters in the agent's terms: traffic as is, the
// kernel's eight drop causes folded into the API's four (each drop counted
// once): ring_full <- rx_drop_ring_full; bad_descriptor <- rx_drop_bad_buf,
// tx_drop_bad_buf, tx_drop_bad_len, tx_drop_frag; oversize <-
// rx_drop_oversize; no_destination <- rx_drop_inactive, tx_drop_xmit.
PortCounters PortCountersFromKernel(const ptnetmap_port_stats& stats);

class KernelDatapath : public Datapath {
 public:
  // Opens the control device. UNAVAILABLE with "modprobe ptnetmap" when it
  // does not exist; PERMISSION_DENIED when the agent may not open it.
  static absl::StatusOr<std::unique_ptr<KernelDatapath>> Open(const std::string& device);

  absl::string_view Name() const override { return "kernel"; }
  absl::Status CreateSwitch(absl::string_view name) override;
  absl::Status DeleteSwitch(absl::string_view name) override;
  absl::Status CreatePort(absl::string_view switch_name, absl::string_view port) override;
  absl::Status DeletePort(absl::string_view switch_name, absl::string_view port) override;
  absl::Status AttachNic(absl::string_view switch_name, absl::string_view nic) override;
  absl::Status DetachNic(absl::string_view switch_name, absl::string_view nic) override;
  absl::Status CreatePipe(absl::string_view name) override;
  absl::Status DeletePipe(absl::string_view name) override;
  absl::StatusOr<VmAttachmentHandles> CreateVmAttachment(const VmAttachmentSpec& spec) override;
  absl::StatusOr<VmAttachmentHandles> AdoptVmAttachment(const VmAttachmentSpec& spec) override;
  absl::Status DestroyVmAttachment(const VmAttachmentSpec& spec) override;
  absl::StatusOr<DatapathInventory> List() override;
  absl::StatusOr<PortCounters> ReadCounters(absl::string_view netmap_name) override;

 private:
  KernelDatapath(std::string device, UniqueFd fd) : device_(std::move(device)), fd_(std::move(fd)) {}
  // Sends one NIOCCTRL request for port `name` with `body`; maps errno to a
  // status naming `what`. `header_out`, if given, receives the header back.
  absl::Status Control(uint16_t request, absl::string_view name, void* body,
                       absl::string_view what, nmreq_header* header_out = nullptr);

  // The kernel attachment behind `spec` and the peer that is the VM's.
  static std::string AttachmentName(const VmAttachmentSpec& spec);
  // Fresh handles of an existing attachment's peer (PT_FDS); records the
  // port for ReadCounters.
  absl::StatusOr<VmAttachmentHandles> HandlesOf(const VmAttachmentSpec& spec);
  void Hold(const VmAttachmentSpec& spec) ABSL_LOCKS_EXCLUDED(mu_);

  const std::string device_;
  UniqueFd fd_;
  absl::Mutex mu_;
  // Ends of pipes handed out (created or adopted) by this process: the
  // shared attachment goes when the last is destroyed.
  std::map<std::string, std::set<PipeEnd>> held_pipe_ends_ ABSL_GUARDED_BY(mu_);
  // VM ports -> (attachment, peer), so that their counters include the
  // passthrough ones (PT_INFO).
  std::map<std::string, std::pair<std::string, uint16_t>, std::less<>> vm_ports_
      ABSL_GUARDED_BY(mu_);
};

// "pipe:pp1": the shared attachment of both ends of pipe pp1. The prefix
// keeps it apart from attachments named after untrusted VMs (whose names
// cannot contain ':').
std::string PipeAttachmentName(absl::string_view pipe);

}  // namespace ptnetmap::agent

#endif  // PTNETMAP_AGENT_KERNEL_DATAPATH_H_
