// The kernel side of a passthrough attachment, through ptnetmap's own
// NIOCCTRL requests on /dev/netmap (<net/ptnetmap_ctl.h>): PT_ATTACH builds
// it from a memfd and eventfds made here, PT_FDS hands out fresh descriptors
// of an existing one (a restarted agent serves QEMU again with them),
// PT_DETACH destroys it, PT_INFO finds, lists and counts.
//
// Used by the agent's KernelDatapath and by ptnm-ivshmem-server, so that
// both build attachments the same way. Every function takes an open
// /dev/netmap descriptor; errors are absl statuses whose codes follow
// StatusFromErrno.
#ifndef PTNETMAP_QEMU_PASSTHROUGH_H_
#define PTNETMAP_QEMU_PASSTHROUGH_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "qemu/ivshmem_server.h"

struct nmreq_header;

namespace ptnetmap::ivshmem {

// errno of a netmap request as a status with `what` and the errno text:
//   ENOENT/ENXIO/ENODEV NOT_FOUND, EEXIST ALREADY_EXISTS, ENOMEM/ENOSPC
//   RESOURCE_EXHAUSTED, EBUSY FAILED_PRECONDITION, EINVAL INVALID_ARGUMENT,
//   ENOTTY/EOPNOTSUPP UNIMPLEMENTED (an older module), EPERM/EACCES
//   PERMISSION_DENIED, anything else INTERNAL.
absl::Status StatusFromErrno(int err, absl::string_view what);

// Sends one NIOCCTRL request (API 14) for `name` with `body`; `header_out`,
// if given, receives the header back (VALE_LIST returns names there).
absl::Status NetmapRequest(int netmap_fd, uint16_t request, absl::string_view name, void* body,
                           absl::string_view what, nmreq_header* header_out = nullptr);

using Mac = std::array<uint8_t, 6>;

// A stable, locally administered unicast MAC for the guest behind `key`
// (02:xx:xx:xx:xx:xx from a hash of it), so that a VM keeps its MAC across
// agent restarts without the agent storing one.
Mac MacFor(absl::string_view key);
std::string MacString(const Mac& mac);
// Parses "02:50:54:4e:4d:01".
absl::StatusOr<Mac> ParseMac(absl::string_view text);

// MSI-X vectors of a port with `rings` rings per direction: the control
// mailbox plus one per ring.
uint32_t VectorsForRings(uint32_t rings);

// The smallest power-of-two memory whose netmap region holds the buffers of
// `ports` ports with `rings` rings per direction at the kernel's default
// geometry (256 slots of 2 KiB). A pipe in one region counts both ends.
uint64_t MinRegionBytes(uint32_t rings, size_t ports);

struct AttachmentPeer {
  std::string port;  // "vale0:vm1" (created by the attach), "pp1{0", "pp1}0"
  Mac mac{};         // what the guest's interface gets
};

struct AttachmentSpec {
  std::string name;                  // the kernel attachment's name
  std::vector<AttachmentPeer> peers;  // peer i + 1 is peers[i]
  bool shared = false;               // one region for all peers (pipes)
  uint32_t rings = 1;                // per direction, every peer
  uint64_t region_bytes = 0;         // a power of two, >= 64 KiB
};

// Creates the memfd (sealed against shrinking) and eventfds, maps the memfd,
// and PT_ATTACHes. Returns each peer's descriptors, peers[i] with peer_id
// i + 1. ALREADY_EXISTS if an attachment of that name exists.
absl::StatusOr<std::vector<PeerFds>> Attach(int netmap_fd, const AttachmentSpec& spec);

// PT_FDS: new descriptors of peer `peer` of the existing attachment `name`.
// NOT_FOUND if it does not exist; UNIMPLEMENTED on a module without it.
absl::StatusOr<PeerFds> FdsOf(int netmap_fd, absl::string_view name, uint16_t peer);

// PT_DETACH. NOT_FOUND if it does not exist.
absl::Status Detach(int netmap_fd, absl::string_view name);

struct AttachmentInfo {
  std::string name;
  uint32_t num_peers = 0;
  bool shared = false;
  std::string port;  // of the peer asked for; empty for totals
  bool started = false;
  bool broken = false;
  uint64_t shm_size = 0;
  uint64_t region_offset = 0;
  uint64_t region_size = 0;
  uint64_t tx_packets = 0, tx_bytes = 0, rx_packets = 0, rx_bytes = 0;
  uint64_t kicks = 0, interrupts = 0, wakeups = 0, errors = 0;
};

// PT_INFO of `name`: peer 0 gives totals, 1..num_peers that peer.
absl::StatusOr<AttachmentInfo> Info(int netmap_fd, absl::string_view name, uint32_t peer = 0);
// The names of every attachment in the kernel.
absl::StatusOr<std::vector<std::string>> ListAttachments(int netmap_fd);

}  // namespace ptnetmap::ivshmem

#endif  // PTNETMAP_QEMU_PASSTHROUGH_H_
