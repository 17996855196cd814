// ivshmem::Server: the ivshmem-doorbell server sockets QEMU connects to.
//
// One UNIX socket per guest peer, DIR/NAME.sock. When QEMU connects it gets,
// per QEMU's protocol (../../shared/spec/hypervisor.md, docs/agent.md):
// protocol version 0, its peer id (which selects its port page in the shared
// memory; the host is peer 0), the shared memory fd, the host's kick eventfds
// (peer 0, one per vector: the guest's doorbell writes signal them) and its
// own interrupt eventfds (the kernel signals them).
//
// QEMU connects once and never reconnects; after that the fds live in QEMU
// and KVM, so a stopped or restarted server does not disturb a running VM.
// The socket only matters when a VM (re)starts. One client per socket at a
// time: a second concurrent connection is refused and logged.
//
// Permissions: sockets are mode 0660, group `group` if given, so that QEMU
// running in that group (libvirt-qemu) can connect. A directory the server
// creates is mode 0750 (0710 would do for connecting; 0750 lets the group
// list the sockets), group `group`; an existing directory is left as it is.
//
// A single thread polls all sockets; everything is guarded by one mutex.
#ifndef PTNETMAP_QEMU_IVSHMEM_SERVER_H_
#define PTNETMAP_QEMU_IVSHMEM_SERVER_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "qemu/unique_fd.h"

namespace ptnetmap::ivshmem {

// The host's peer id, whose eventfds the guest kicks (PTNM_HOST_PEER).
inline constexpr int64_t kHostPeerId = 0;

// What one QEMU client is handed: the descriptors of one guest peer of a
// passthrough attachment. The kernel keeps its own references; these copies
// may be closed at any time without disturbing traffic.
struct PeerFds {
  uint16_t peer_id = 1;  // IVPosition: the guest's port page
  // memfd of region_bytes (a power of two: QEMU refuses others), laid out as
  // docs/shm-layout.md says; the guest maps it as BAR2. All peers of a
  // shared attachment get the same memory.
  UniqueFd region;
  uint64_t region_bytes = 0;
  // Guest -> host, one per vector (0 the control mailbox, 1 + i ring i):
  // QEMU turns each into a KVM ioeventfd on the doorbell register.
  std::vector<UniqueFd> kick_fds;
  // Host -> guest, one per vector: QEMU turns each into a KVM irqfd.
  std::vector<UniqueFd> irq_fds;
};

// A copy of `peer` whose descriptors are fresh dup()s (CLOEXEC).
absl::StatusOr<PeerFds> DupPeerFds(const PeerFds& peer);

// Sends the whole greeting of the ivshmem-doorbell protocol to `sock`.
absl::Status SendGreeting(int sock, const PeerFds& peer);

enum class LogLevel { kInfo, kWarning, kError };
using LogFunction = std::function<void(LogLevel, absl::string_view)>;

// Writes "ptnm-ivshmem: MESSAGE" lines to stderr.
void LogToStderr(LogLevel level, absl::string_view message);

struct ServerOptions {
  std::string dir;             // where the sockets live; created if missing
  std::optional<gid_t> group;  // owner group of the sockets (and a new dir)
  LogFunction log = LogToStderr;
};

class Server {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> Create(ServerOptions options);
  ~Server();  // Stops the thread and removes every socket.

  // The path QEMU must be given for socket `name`.
  std::string SocketPath(absl::string_view name) const;

  // Starts listening on SocketPath(name) and hands `peer` to each client.
  // A stale socket file from a previous run is replaced.
  absl::Status Serve(absl::string_view name, PeerFds peer);
  // Stops serving `name`, disconnects its client, removes the socket file.
  void Stop(absl::string_view name);

 private:
  struct Endpoint {
    UniqueFd listener;
    UniqueFd client;  // QEMU, while connected
    PeerFds peer;
  };

  Server(ServerOptions options, UniqueFd wake);
  void Loop();
  void Wake();
  void Accept(const std::string& name, Endpoint& endpoint) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ServerOptions options_;
  UniqueFd wake_;  // eventfd: the set of sockets changed or shutdown
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Endpoint> endpoints_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// The libvirt device that gives a VM the socket at `socket_path` (hypervisor
// facts: the model must be named, <size> is refused, ioeventfd keeps kicks
// in KVM).
std::string LibvirtShmemXml(absl::string_view name, absl::string_view socket_path,
                            uint32_t vectors);

}  // namespace ptnetmap::ivshmem

#endif  // PTNETMAP_QEMU_IVSHMEM_SERVER_H_
