// KernelDatapath: the Datapath over /dev/netmap, with the standard netmap
// control requests (NIOCCTRL): VALE_NEWIF/DELIF for persistent ports,
// VALE_ATTACH/DETACH for NICs, VALE_LIST for reconcile, and our own
// PTNETMAP_REQ_PORT_STATS_GET (<net/ptnetmap_ctl.h>) for per-port counters.
//
// Not available from the kernel module, and so UNIMPLEMENTED here:
//   - passthrough VM attachments (not wired to PTNETMAP_REQ_PT_* yet);
//   - persistent pipes (the module frees a pipe parent with its last pipe).
#ifndef PTNETMAP_AGENT_KERNEL_DATAPATH_H_
#define PTNETMAP_AGENT_KERNEL_DATAPATH_H_

#include <memory>
#include <string>

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
  absl::StatusOr<VmAttachmentHandles> AdoptVmAttachment(absl::string_view name) override;
  absl::Status DestroyVmAttachment(absl::string_view name) override;
  absl::StatusOr<DatapathInventory> List() override;
  absl::StatusOr<PortCounters> ReadCounters(absl::string_view netmap_name) override;

 private:
  KernelDatapath(std::string device, UniqueFd fd) : device_(std::move(device)), fd_(std::move(fd)) {}
  // Sends one NIOCCTRL request for port `name` with `body`; maps errno to a
  // status naming `what`. `header_out`, if given, receives the header back.
  absl::Status Control(uint16_t request, absl::string_view name, void* body,
                       absl::string_view what, nmreq_header* header_out = nullptr);

  const std::string device_;
  UniqueFd fd_;
};

}  // namespace ptnetmap::agent

#endif  // PTNETMAP_AGENT_KERNEL_DATAPATH_H_
