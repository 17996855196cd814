#include "qemu/passthrough.h"

// <net/netmap.h> wants these first, as every netmap application does.
#include <stdint.h>
#include <net/if.h>
#include <net/netmap.h>
#include <net/ptnetmap.h>
#include <net/ptnetmap_ctl.h>

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace ptnetmap::ivshmem {
namespace {

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

absl::StatusOr<UniqueFd> NewRegion(absl::string_view name, uint64_t bytes) {
  UniqueFd fd(::memfd_create(absl::StrCat("ptnm-", name).c_str(),
                             MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) return Errno("memfd_create");
  if (::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot size the memory of ", name, " to ", bytes, " bytes: ",
                     std::strerror(errno)));
  }
  // QEMU and the kernel take the size once: it must never change.
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return Errno("seal the memfd");
  }
  return fd;
}

absl::Status NewEventfds(uint32_t count, std::vector<UniqueFd>& out) {
  for (uint32_t i = 0; i < count; ++i) {
    UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd.valid()) return Errno("eventfd");
    out.push_back(std::move(fd));
  }
  return absl::OkStatus();
}

// A MAP_SHARED mapping of a whole memfd, for the length of PT_ATTACH: the
// kernel pins the pages through it and needs it no longer afterwards.
class Mapping {
 public:
  Mapping(int fd, uint64_t bytes)
      : bytes_(bytes),
        addr_(::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) {}
  ~Mapping() {
    if (ok()) ::munmap(addr_, bytes_);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  bool ok() const { return addr_ != MAP_FAILED; }
  uint64_t address() const { return reinterpret_cast<uintptr_t>(addr_); }

 private:
  uint64_t bytes_;
  void* addr_;
};

std::string FromFixed(const char* s, size_t size) { return std::string(s, strnlen(s, size)); }

}  // namespace

absl::Status StatusFromErrno(int err, absl::string_view what) {
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
    case EMFILE:
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
      return absl::PermissionDeniedError(absl::StrCat(message, " (needs CAP_NET_ADMIN)"));
    default:
      return absl::InternalError(message);
  }
}

absl::Status NetmapRequest(int netmap_fd, uint16_t request, absl::string_view name, void* body,
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
  if (::ioctl(netmap_fd, NIOCCTRL, &header) != 0) return StatusFromErrno(errno, what);
  if (header_out != nullptr) *header_out = header;
  return absl::OkStatus();
}

Mac MacFor(absl::string_view key) {
  // FNV-1a, 64 bits: stable across builds and hosts, unlike std::hash.
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ull;
  }
  Mac mac;
  mac[0] = 0x02;  // locally administered, unicast
  for (int i = 1; i < 6; ++i) mac[i] = static_cast<uint8_t>(h >> (8 * (i - 1)));
  return mac;
}

std::string MacString(const Mac& mac) {
  return absl::StrFormat("%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                         mac[4], mac[5]);
}

absl::StatusOr<Mac> ParseMac(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  Mac mac;
  bool ok = parts.size() == mac.size();
  for (size_t i = 0; ok && i < parts.size(); ++i) {
    uint32_t byte = 0;
    ok = parts[i].size() == 2 && absl::SimpleHexAtoi(parts[i], &byte);
    mac[i] = static_cast<uint8_t>(byte);
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid MAC '", text, "': write six hex bytes, e.g. 02:50:54:4e:4d:01"));
  }
  return mac;
}

uint32_t VectorsForRings(uint32_t rings) { return PTNM_RING_VECTOR(2 * rings - 1) + 1; }

uint64_t MinRegionBytes(uint32_t rings, size_t ports) {
  // Every slot of every ring holds a buffer (the module's 2 KiB default, 256
  // slots per ring when the attachment leaves it to the kernel); the pages
  // before the region, the rings and the reserved buffers fit in a quarter
  // MiB for any attachment QEMU can take.
  const uint64_t buffers = uint64_t{2} * rings * ports * 256;
  return std::bit_ceil(buffers * 2048 + (uint64_t{256} << 10));
}

absl::StatusOr<std::vector<PeerFds>> Attach(int netmap_fd, const AttachmentSpec& spec) {
  const std::string what = absl::StrCat("passthrough attachment ", spec.name);
  if (spec.peers.empty() || spec.peers.size() > PTNETMAP_PT_MAX_PEERS) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": 1 to ", PTNETMAP_PT_MAX_PEERS, " peers, not ", spec.peers.size()));
  }
  const uint32_t vectors = VectorsForRings(spec.rings);
  if (spec.rings == 0 || vectors > PTNETMAP_PT_MAX_VECTORS) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", spec.rings,
                                                   " rings per direction; use 1 to ",
                                                   (PTNETMAP_PT_MAX_VECTORS - 1) / 2));
  }
  if (!std::has_single_bit(spec.region_bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": memory of ", spec.region_bytes, " bytes; QEMU needs a power of two"));
  }
  absl::StatusOr<UniqueFd> region = NewRegion(spec.name, spec.region_bytes);
  if (!region.ok()) return region.status();

  std::vector<PeerFds> peers(spec.peers.size());
  std::vector<ptnetmap_pt_peer> kernel_peers(spec.peers.size());
  for (size_t i = 0; i < spec.peers.size(); ++i) {
    const AttachmentPeer& in = spec.peers[i];
    PeerFds& out = peers[i];
    ptnetmap_pt_peer& k = kernel_peers[i];
    if (in.port.empty() || in.port.size() >= sizeof(k.port)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": port name '", in.port, "' is empty or too long"));
    }
    out.peer_id = static_cast<uint16_t>(i + 1);
    out.region_bytes = spec.region_bytes;
    if (i == 0) {
      out.region = *std::move(region);
    } else {
      out.region.reset(::fcntl(peers[0].region.get(), F_DUPFD_CLOEXEC, 0));  // the same memory
      if (!out.region.valid()) return Errno("dup the memfd");
    }
    if (absl::Status s = NewEventfds(vectors, out.kick_fds); !s.ok()) return s;
    if (absl::Status s = NewEventfds(vectors, out.irq_fds); !s.ok()) return s;
    std::memcpy(k.port, in.port.data(), in.port.size());
    std::memcpy(k.mac, in.mac.data(), sizeof(k.mac));
    k.num_vectors = vectors;
    for (uint32_t v = 0; v < PTNETMAP_PT_MAX_VECTORS; ++v) {
      k.kick_fds[v] = v < vectors ? out.kick_fds[v].get() : -1;
      k.irq_fds[v] = v < vectors ? out.irq_fds[v].get() : -1;
    }
  }

  Mapping mapping(peers[0].region.get(), spec.region_bytes);
  if (!mapping.ok()) return Errno(absl::StrCat("map the memory of ", spec.name));
  ptnetmap_pt_attach attach{};
  attach.shm_addr = mapping.address();
  attach.peers = reinterpret_cast<uintptr_t>(kernel_peers.data());
  attach.memfd = peers[0].region.get();
  attach.num_peers = static_cast<uint32_t>(kernel_peers.size());
  attach.flags = spec.shared ? PTNETMAP_PT_SHARED : 0;
  attach.num_tx_rings = static_cast<uint16_t>(spec.rings);
  attach.num_rx_rings = static_cast<uint16_t>(spec.rings);
  absl::Status s = NetmapRequest(netmap_fd, PTNETMAP_REQ_PT_ATTACH, spec.name, &attach,
                                 absl::StrCat("attach ", what));
  if (absl::IsResourceExhausted(s)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        s.message(), "; unless the host is short of memory, ", spec.region_bytes,
        " bytes are too few for the buffers of ", spec.rings, " ring(s) each way of ",
        spec.peers.size(), " port(s) (at least ", MinRegionBytes(spec.rings, spec.peers.size()),
        "): use more memory"));
  }
  if (!s.ok()) return s;
  return peers;
}

absl::StatusOr<PeerFds> FdsOf(int netmap_fd, absl::string_view name, uint16_t peer) {
  ptnetmap_pt_fds fds{};
  fds.peer = peer;
  fds.memfd = -1;
  if (absl::Status s = NetmapRequest(
          netmap_fd, PTNETMAP_REQ_PT_FDS, name, &fds,
          absl::StrCat("get the descriptors of peer ", peer, " of passthrough attachment ", name));
      !s.ok()) {
    return s;
  }
  // Own every descriptor the kernel installed before checking anything.
  PeerFds out;
  out.peer_id = peer;
  out.region.reset(fds.memfd);
  out.region_bytes = fds.shm_size;
  const uint32_t vectors = std::min<uint32_t>(fds.num_vectors, PTNETMAP_PT_MAX_VECTORS);
  for (uint32_t v = 0; v < vectors; ++v) {
    out.kick_fds.emplace_back(fds.kick_fds[v]);
    out.irq_fds.emplace_back(fds.irq_fds[v]);
  }
  if (!out.region.valid() || fds.num_vectors == 0 || fds.num_vectors > PTNETMAP_PT_MAX_VECTORS) {
    return absl::InternalError(absl::StrCat("PT_FDS of ", name, " peer ", peer,
                                            " returned no memory or ", fds.num_vectors,
                                            " vectors"));
  }
  for (uint32_t v = 0; v < vectors; ++v) {
    if (!out.kick_fds[v].valid() || !out.irq_fds[v].valid()) {
      return absl::InternalError(
          absl::StrCat("PT_FDS of ", name, " peer ", peer, ": vector ", v, " has no eventfd"));
    }
  }
  return out;
}

absl::Status Detach(int netmap_fd, absl::string_view name) {
  return NetmapRequest(netmap_fd, PTNETMAP_REQ_PT_DETACH, name, nullptr,
                       absl::StrCat("detach passthrough attachment ", name));
}

absl::StatusOr<AttachmentInfo> Info(int netmap_fd, absl::string_view name, uint32_t peer) {
  ptnetmap_pt_info k{};
  k.peer = peer;
  if (absl::Status s = NetmapRequest(netmap_fd, PTNETMAP_REQ_PT_INFO, name, &k,
                                     absl::StrCat("read passthrough attachment ", name));
      !s.ok()) {
    return s;
  }
  AttachmentInfo info;
  info.name = FromFixed(k.name, sizeof(k.name));
  info.num_peers = k.num_peers;
  info.shared = (k.flags & PTNETMAP_PT_SHARED) != 0;
  info.port = FromFixed(k.port, sizeof(k.port));
  info.started = (k.state & PTNETMAP_PT_STARTED) != 0;
  info.broken = (k.state & PTNETMAP_PT_BROKEN) != 0;
  info.shm_size = k.shm_size;
  info.region_offset = k.region_offset;
  info.region_size = k.region_size;
  info.tx_packets = k.tx_packets;
  info.tx_bytes = k.tx_bytes;
  info.rx_packets = k.rx_packets;
  info.rx_bytes = k.rx_bytes;
  info.kicks = k.kicks;
  info.interrupts = k.interrupts;
  info.wakeups = k.wakeups;
  info.errors = k.errors;
  return info;
}

absl::StatusOr<std::vector<std::string>> ListAttachments(int netmap_fd) {
  std::vector<std::string> names;
  // Bounded: the kernel's list could change under us, but not grow forever.
  for (uint32_t index = 0; index < 1u << 16; ++index) {
    ptnetmap_pt_info k{};
    k.index = index;
    absl::Status s = NetmapRequest(netmap_fd, PTNETMAP_REQ_PT_INFO, "", &k,
                                   "list passthrough attachments");
    if (absl::IsNotFound(s)) break;  // past the last one
    if (!s.ok()) return s;
    names.push_back(FromFixed(k.name, sizeof(k.name)));
  }
  return names;
}

}  // namespace ptnetmap::ivshmem
