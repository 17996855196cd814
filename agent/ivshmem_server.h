// IvshmemServer: the ivshmem-doorbell server sockets QEMU connects to.
//
// One UNIX socket per VM attachment, DIR/NAME.sock. When QEMU connects it
// gets, per QEMU's protocol (see docs/agent.md): protocol version 0, its peer
// id (handles.peer_id, which selects its port page in the shared memory; the
// host is peer 0), the shared memory fd, the host's kick eventfds (peer 0,
// one per vector: the guest's doorbell writes signal them) and its own
// interrupt eventfds (the kernel signals them).
//
// QEMU connects once and never reconnects; after that the fds live in QEMU
// and KVM, so a stopped or restarted agent does not disturb a running VM.
// The socket only matters when a VM (re)starts. One client per socket at a
// time: a second concurrent connection is refused and logged.
//
// A single thread polls all sockets; everything is guarded by one mutex.
#ifndef PTNETMAP_AGENT_IVSHMEM_SERVER_H_
#define PTNETMAP_AGENT_IVSHMEM_SERVER_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "agent/datapath.h"
#include "agent/unique_fd.h"

namespace ptnetmap::agent {

class IvshmemServer {
 public:
  // The host's peer id, whose eventfds the guest kicks (PTNM_HOST_PEER).
  static constexpr int64_t kHostPeerId = 0;

  // Creates `dir` if missing. If `group` is set, sockets are chowned to it
  // so that QEMU running as that group (libvirt-qemu) can connect.
  static absl::StatusOr<std::unique_ptr<IvshmemServer>> Create(std::string dir,
                                                               std::optional<gid_t> group);
  ~IvshmemServer();  // Stops the thread and removes every socket.

  // The path QEMU must be given for attachment `name`.
  std::string SocketPath(absl::string_view name) const;

  // Starts listening on SocketPath(name) and hands `handles` to each client.
  // A stale socket file from a previous agent is replaced.
  absl::Status Serve(absl::string_view name, VmAttachmentHandles handles);
  // Stops serving `name`, disconnects its client, removes the socket file.
  void Stop(absl::string_view name);

 private:
  struct Endpoint {
    UniqueFd listener;
    UniqueFd client;  // QEMU, while connected
    VmAttachmentHandles handles;
  };

  IvshmemServer(std::string dir, std::optional<gid_t> group, UniqueFd wake);
  void Loop();
  void Wake();
  void Accept(const std::string& name, Endpoint& endpoint) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string dir_;
  const std::optional<gid_t> group_;
  UniqueFd wake_;  // eventfd: the set of sockets changed or shutdown
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Endpoint> endpoints_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// Sends the whole greeting of the ivshmem-doorbell protocol to `fd`.
// Exposed for tests.
absl::Status SendIvshmemGreeting(int fd, const VmAttachmentHandles& handles);

}  // namespace ptnetmap::agent

#endif  // PTNETMAP_AGENT_IVSHMEM_SERVER_H_
