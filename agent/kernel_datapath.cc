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

#include "absl/strings/str_cat.h"

namespace ptnetmap::agent {
namespace {

constexpr absl::string_view kNoPassthrough =
    "kernel passthrough attachments are not available in this module version";

absl::Status FromErrno(int err, absl::string_view what) {
  const std::string message = absl::StrCat(what, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
    case ENXIO:
    case ENODEV:
      return absl::NotFoundError(message);
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case ENOMEM:
    case ENOSPC:
      return absl::ResourceExhaustedError(message);
    case EBUSY:
      return absl::FailedPreconditionError(absl::StrCat(message, " (in use by an application)"));
    case EINVAL:
      return absl::InvalidArgumentError(message);
    case ENOTTY:
    case EOPNOTSUPP:
      return absl::UnimplementedError(
          absl::StrCat(message, " (the loaded module does not support this request; "
                                "update the ptnetmap module)"));
    case EPERM:
    case EACCES:
      return absl::PermissionDeniedError(
          absl::StrCat(message, " (ptnetd needs CAP_NET_ADMIN)"));
    default:
      return absl::InternalError(message);
  }
}

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
  nmreq_header header{};
  header.nr_version = NETMAP_API;
  header.nr_reqtype = request;
  if (name.size() >= sizeof(header.nr_name)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": netmap name '", name, "' is too long"));
  }
  std::memcpy(header.nr_name, name.data(), name.size());
  header.nr_body = reinterpret_cast<uintptr_t>(body);
  if (::ioctl(fd_.get(), NIOCCTRL, &header) != 0) {
    return FromErrno(errno, absl::StrCat(what, " (", device_, ")"));
  }
  if (header_out != nullptr) *header_out = header;
  return absl::OkStatus();
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

// The module has no persistent pipe parents: a pipe's parent is created by
// the first open of "name{N" and freed with its last pipe, and NEWIF only
// takes VALE names. So there is nothing the agent can create ahead of time.
absl::Status KernelDatapath::CreatePipe(absl::string_view name) {
  return absl::UnimplementedError(absl::StrCat(
      "pipe ", name, ": persistent pipes are not available in this module version "
      "(the kernel creates a pipe's parent on first open and frees it with its last pipe)"));
}

absl::Status KernelDatapath::DeletePipe(absl::string_view name) {
  return absl::NotFoundError(absl::StrCat("no persistent pipe ", name, " in the kernel"));
}

absl::StatusOr<VmAttachmentHandles> KernelDatapath::CreateVmAttachment(
    const VmAttachmentSpec&) {
  return absl::UnimplementedError(kNoPassthrough);
}

absl::StatusOr<VmAttachmentHandles> KernelDatapath::AdoptVmAttachment(absl::string_view) {
  return absl::UnimplementedError(kNoPassthrough);
}

absl::Status KernelDatapath::DestroyVmAttachment(absl::string_view name) {
  // Nothing can exist in the kernel yet, so there is nothing to destroy.
  return absl::NotFoundError(absl::StrCat("no VM attachment ", name, " in the kernel"));
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
  // Pipe parents are on no switch and cannot be enumerated: reconcile
  // re-creates them and takes EEXIST as "present" (see DatapathInventory).
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
  ptnetmap_port_stats stats{};
  absl::Status s = Control(PTNETMAP_REQ_PORT_STATS_GET, netmap_name, &stats,
                           absl::StrCat("read counters of ", netmap_name));
  if (absl::IsInvalidArgument(s)) {
    // The module answers EINVAL to request types it does not know, too.
    return absl::InvalidArgumentError(absl::StrCat(
        s.message(), " (or the loaded module predates PTNETMAP_REQ_PORT_STATS_GET)"));
  }
  if (!s.ok()) return s;
  return PortCountersFromKernel(stats);
}

}  // namespace ptnetmap::agent
