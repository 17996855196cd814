#include "agent/kernel_datapath.h"

// <net/netmap.h> wants these first, as every netmap application does.
#include <stdint.h>
#include <net/if.h>
#include <net/netmap.h>
#include <net/ptnetmap_ctl.h>

#include <fcntl.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/log.h"
#include "qemu/passthrough.h"

namespace ptnetmap::agent {
namespace {

// The guest peer of each pipe end in the pipe's shared attachment.
uint16_t PeerOfEnd(PipeEnd end) { return end == PipeEnd::kMaster ? 1 : 2; }

}  // namespace

absl::StatusOr<std::unique_ptr<KernelDatapath>> KernelDatapath::Open(const std::string& device) {
  UniqueFd fd(::open(device.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT || errno == ENODEV || errno == ENXIO) {
      return absl::UnavailableError(absl::StrCat(
          device, " does not exist: module not loaded: modprobe ptnetmap"));
    }
    if (errno == EACCES || errno == EPERM) {
      return absl::PermissionDeniedError(absl::StrCat(
          "cannot open ", device, ": ", std::strerror(errno), "; run ptnetd as root"));
    }
    return absl::UnavailableError(absl::StrCat("cannot open ", device, ": ", std::strerror(errno)));
  }
  return std::unique_ptr<KernelDatapath>(new KernelDatapath(device, std::move(fd)));
}

absl::Status KernelDatapath::Control(uint16_t request, absl::string_view name, void* body,
                                     absl::string_view what, nmreq_header* header_out) {
  return ivshmem::NetmapRequest(fd_.get(), request, name, body,
                                absl::StrCat(what, " (", device_, ")"), header_out);
}

// netmap creates a VALE switch with its first port and frees it with its
// last, so there is nothing to do for the switch itself.
absl::Status KernelDatapath::CreateSwitch(absl::string_view) { return absl::OkStatus(); }
absl::Status KernelDatapath::DeleteSwitch(absl::string_view) { return absl::OkStatus(); }

absl::Status KernelDatapath::CreatePort(absl::string_view switch_name, absl::string_view port) {
  // ptnetmap's NEWIF takes the switch-qualified name and makes the port on
  // that switch directly (docs/vale.md); netmap's two-step "NEWIF p, then
  // ATTACH valeX:p" is refused by the module with EINVAL.
  nmreq_vale_newif newif{};  // zeroes: the module's default rings and slots
  const std::string member = SwitchPortNetmapName(switch_name, port);
  return Control(NETMAP_REQ_VALE_NEWIF, member, &newif,
                 absl::StrCat("create persistent port ", member));
}

absl::Status KernelDatapath::DeletePort(absl::string_view switch_name, absl::string_view port) {
  // DELIF takes the port off its switch and frees it (EBUSY while open);
  // DETACH is for NICs only.
  const std::string member = SwitchPortNetmapName(switch_name, port);
  return Control(NETMAP_REQ_VALE_DELIF, member, nullptr,
                 absl::StrCat("delete persistent port ", member));
}

absl::Status KernelDatapath::AttachNic(absl::string_view switch_name, absl::string_view nic) {
  // NIC rings only, as `vale-ctl -a` does; the host stack keeps its own path.
  nmreq_vale_attach attach{};
  attach.reg.nr_mode = NR_REG_ALL_NIC;
  const std::string member = SwitchPortNetmapName(switch_name, nic);
  return Control(NETMAP_REQ_VALE_ATTACH, member, &attach, absl::StrCat("attach NIC ", member));
}

absl::Status KernelDatapath::DetachNic(absl::string_view switch_name, absl::string_view nic) {
  nmreq_vale_detach detach{};
  const std::string member = SwitchPortNetmapName(switch_name, nic);
  return Control(NETMAP_REQ_VALE_DETACH, member, &detach, absl::StrCat("detach NIC ", member));
}

// The module has no persistent pipes: a pipe is created by the first open
// of "name{N" or "name}N" (an application, or the attachment of a trusted VM)
// and freed with its last end; NEWIF only takes VALE names. So there is
// nothing to create or delete ahead of time: the name was validated by the
// manager, and its ends appear when used.
absl::Status KernelDatapath::CreatePipe(absl::string_view) { return absl::OkStatus(); }
absl::Status KernelDatapath::DeletePipe(absl::string_view) { return absl::OkStatus(); }

std::string PipeAttachmentName(absl::string_view pipe) { return absl::StrCat("pipe:", pipe); }

std::string KernelDatapath::AttachmentName(const VmAttachmentSpec& spec) {
  return spec.trust == Trust::kTrusted ? PipeAttachmentName(spec.pipe_name) : spec.name;
}

void KernelDatapath::Hold(const VmAttachmentSpec& spec) {
  absl::MutexLock lock(&mu_);
  const uint16_t peer = spec.trust == Trust::kTrusted ? PeerOfEnd(spec.pipe_end) : 1;
  const std::string port = spec.trust == Trust::kTrusted
                               ? PipeEndNetmapName(spec.pipe_name, spec.pipe_end)
                               : SwitchPortNetmapName(spec.switch_name, spec.name);
  vm_ports_[port] = {AttachmentName(spec), peer};
  if (spec.trust == Trust::kTrusted) held_pipe_ends_[spec.pipe_name].insert(spec.pipe_end);
}

absl::StatusOr<VmAttachmentHandles> KernelDatapath::HandlesOf(const VmAttachmentSpec& spec) {
  const bool trusted = spec.trust == Trust::kTrusted;
  const uint16_t peer = trusted ? PeerOfEnd(spec.pipe_end) : 1;
  absl::StatusOr<ivshmem::PeerFds> fds = ivshmem::FdsOf(fd_.get(), AttachmentName(spec), peer);
  if (!fds.ok()) return fds.status();
  VmAttachmentHandles handles;
  static_cast<ivshmem::PeerFds&>(handles) = *std::move(fds);
  handles.netmap_name = trusted ? PipeEndNetmapName(spec.pipe_name, spec.pipe_end)
                                : SwitchPortNetmapName(spec.switch_name, spec.name);
  // The name alone does not say which port the attachment drives: a VM
  // re-created on another switch, or an attachment someone else made under
  // this name, would hand the guest a port it was not configured for.
  absl::StatusOr<ivshmem::AttachmentInfo> info =
      ivshmem::Info(fd_.get(), AttachmentName(spec), peer);
  if (!info.ok()) return info.status();
  if (info->port != handles.netmap_name) {
    return absl::FailedPreconditionError(absl::StrCat(
        "passthrough attachment ", AttachmentName(spec), " peer ", peer, " drives port ",
        info->port, " but VM attachment ", spec.name, " is configured for ",
        handles.netmap_name, "; delete and re-create the VM attachment"));
  }
  if (handles.kick_fds.size() != VectorsForRings(spec.rings)) {
    // Configured with other rings than the kernel has: QEMU would be given
    // a vector count (libvirt XML) that does not match the port.
    return absl::FailedPreconditionError(absl::StrCat(
        "passthrough attachment ", AttachmentName(spec), " has ", handles.kick_fds.size(),
        " vectors but VM attachment ", spec.name, " is configured with ",
        VectorsForRings(spec.rings), "; delete and re-create the VM attachment"));
  }
  Hold(spec);
  return handles;
}

absl::StatusOr<VmAttachmentHandles> KernelDatapath::CreateVmAttachment(
    const VmAttachmentSpec& spec) {
  const std::string attachment = AttachmentName(spec);
  ivshmem::AttachmentSpec kernel{.name = attachment, .peers = {},
                                 .shared = spec.trust == Trust::kTrusted, .rings = spec.rings,
                                 .region_bytes = spec.region_bytes};
  size_t mine = 0;  // index of the VM's own peer in kernel.peers
  if (spec.trust == Trust::kTrusted) {
    {
      absl::MutexLock lock(&mu_);
      auto held = held_pipe_ends_.find(spec.pipe_name);
      if (held != held_pipe_ends_.end() && held->second.contains(spec.pipe_end)) {
        return absl::AlreadyExistsError(absl::StrCat(
            PipeEndNetmapName(spec.pipe_name, spec.pipe_end), " is attached already"));
      }
    }
    // The first end builds the attachment of both; the second takes its peer.
    absl::StatusOr<ivshmem::AttachmentInfo> existing = ivshmem::Info(fd_.get(), attachment);
    if (existing.ok()) return HandlesOf(spec);
    if (!absl::IsNotFound(existing.status())) return existing.status();
    for (PipeEnd end : {PipeEnd::kMaster, PipeEnd::kSlave}) {
      const std::string port = PipeEndNetmapName(spec.pipe_name, end);
      kernel.peers.push_back({.port = port, .mac = ivshmem::MacFor(port)});
    }
    mine = PeerOfEnd(spec.pipe_end) - 1;
  } else {
    const std::string port = SwitchPortNetmapName(spec.switch_name, spec.name);
    kernel.peers.push_back({.port = port, .mac = ivshmem::MacFor(port)});
  }
  absl::StatusOr<std::vector<ivshmem::PeerFds>> made = ivshmem::Attach(fd_.get(), kernel);
  if (!made.ok()) {
    if (absl::IsInvalidArgument(made.status()) && spec.trust == Trust::kUntrusted) {
      return absl::InvalidArgumentError(absl::StrCat(
          made.status().message(), " (is ", kernel.peers[0].port,
          " already a port outside the attachment?)"));
    }
    return made.status();
  }
  VmAttachmentHandles handles;
  static_cast<ivshmem::PeerFds&>(handles) = std::move((*made)[mine]);
  handles.netmap_name = kernel.peers[mine].port;
  Hold(spec);
  return handles;
}

absl::StatusOr<VmAttachmentHandles> KernelDatapath::AdoptVmAttachment(
    const VmAttachmentSpec& spec) {
  return HandlesOf(spec);
}

absl::Status KernelDatapath::DestroyVmAttachment(const VmAttachmentSpec& spec) {
  absl::MutexLock lock(&mu_);
  if (spec.trust == Trust::kTrusted) {
    vm_ports_.erase(PipeEndNetmapName(spec.pipe_name, spec.pipe_end));
    auto held = held_pipe_ends_.find(spec.pipe_name);
    if (held != held_pipe_ends_.end()) {
      held->second.erase(spec.pipe_end);
      if (!held->second.empty()) return absl::OkStatus();  // the other VM still uses it
      held_pipe_ends_.erase(held);
    }
  } else {
    vm_ports_.erase(SwitchPortNetmapName(spec.switch_name, spec.name));
  }
  return ivshmem::Detach(fd_.get(), AttachmentName(spec));
}

absl::StatusOr<DatapathInventory> KernelDatapath::List() {
  // VALE_LIST with an empty name walks every port of every switch: each call
  // returns the port at (bridge_idx, port_idx) or after it, ENOENT at the end.
  DatapathInventory inventory;
  nmreq_vale_list cursor{};
  while (true) {
    nmreq_header header{};
    absl::Status s = Control(NETMAP_REQ_VALE_LIST, "", &cursor, "list VALE ports", &header);
    if (absl::IsNotFound(s)) break;
    if (!s.ok()) return s;
    const std::string member(header.nr_name, strnlen(header.nr_name, sizeof(header.nr_name)));
    const size_t colon = member.find(':');
    if (colon != std::string::npos) {
      std::string sw = member.substr(0, colon);
      if (inventory.switches.empty() || inventory.switches.back() != sw) {
        inventory.switches.push_back(sw);
      }
      inventory.switch_ports.emplace_back(std::move(sw), member.substr(colon + 1));
    }
    ++cursor.nr_port_idx;
  }
  // Pipes are on no switch and cannot be enumerated; they need no creating
  // either (see CreatePipe).
  absl::StatusOr<std::vector<std::string>> attachments = ivshmem::ListAttachments(fd_.get());
  if (absl::IsUnimplemented(attachments.status())) {
    LogWarning(absl::StrCat("the loaded module has no passthrough attachments: ",
                            attachments.status().message()));
    return inventory;
  }
  if (!attachments.ok()) return attachments.status();
  for (std::string& name : *attachments) {
    if (absl::StartsWith(name, "pipe:")) {
      inventory.vm_pipes.push_back(name.substr(5));
    } else {
      inventory.vm_attachments.push_back(std::move(name));
    }
  }
  return inventory;
}

PortCounters PortCountersFromKernel(const ptnetmap_port_stats& k) {
  PortCounters c;
  c.rx_packets = k.rx_packets;
  c.rx_bytes = k.rx_bytes;
  c.tx_packets = k.tx_packets;
  c.tx_bytes = k.tx_bytes;
  // The kernel counts each drop once, by its own cause; the API has four.
  c.drops.ring_full = k.rx_drop_ring_full;
  c.drops.bad_descriptor =
      k.rx_drop_bad_buf + k.tx_drop_bad_buf + k.tx_drop_bad_len + k.tx_drop_frag;
  c.drops.oversize = k.rx_drop_oversize;
  // Nobody could take the packet: the port is not open or its device is
  // down (rx), or the device or stack refused it (tx).
  c.drops.no_destination = k.rx_drop_inactive + k.tx_drop_xmit;
  return c;
}

absl::StatusOr<PortCounters> KernelDatapath::ReadCounters(absl::string_view netmap_name) {
  std::optional<std::pair<std::string, uint16_t>> vm_port;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = vm_ports_.find(netmap_name); it != vm_ports_.end()) vm_port = it->second;
  }
  ptnetmap_port_stats stats{};
  absl::Status s = Control(PTNETMAP_REQ_PORT_STATS_GET, netmap_name, &stats,
                           absl::StrCat("read counters of ", netmap_name));
  if (vm_port) {
    // A VM's port: traffic as the guest saw it, and the notifications, from
    // its attachment; drops from the port when it has them (VALE).
    absl::StatusOr<ivshmem::AttachmentInfo> info =
        ivshmem::Info(fd_.get(), vm_port->first, vm_port->second);
    if (!info.ok()) return info.status();
    PortCounters c = s.ok() ? PortCountersFromKernel(stats) : PortCounters{};
    c.tx_packets = info->tx_packets;
    c.tx_bytes = info->tx_bytes;
    c.rx_packets = info->rx_packets;
    c.rx_bytes = info->rx_bytes;
    c.kicks = info->kicks;
    c.interrupts = info->interrupts;
    c.worker_wakeups = info->wakeups;
    return c;
  }
  if (absl::IsInvalidArgument(s)) {
    // The module answers EINVAL to request types it does not know, too.
    return absl::InvalidArgumentError(absl::StrCat(
        s.message(), " (or the loaded module predates PTNETMAP_REQ_PORT_STATS_GET)"));
  }
  if (!s.ok()) return s;
  return PortCountersFromKernel(stats);
}

}  // namespace ptnetmap::agent
