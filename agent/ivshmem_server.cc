#include "agent/ivshmem_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/log.h"

namespace ptnetmap::agent {
namespace {

// A client that stops reading must not stall the single server thread.
constexpr int kSendTimeoutMs = 1000;

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// One protocol message: a little-endian int64, optionally with one fd.
absl::Status SendMessage(int sock, int64_t value, int fd) {
  static_assert(std::endian::native == std::endian::little, "x86-64 and arm64 only");
  iovec iov{.iov_base = &value, .iov_len = sizeof(value)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  }
  if (::sendmsg(sock, &msg, MSG_NOSIGNAL) != sizeof(value)) return Errno("sendmsg");
  return absl::OkStatus();
}

}  // namespace

absl::Status SendIvshmemGreeting(int fd, const VmAttachmentHandles& handles) {
  const int64_t kProtocolVersion = 0;
  const int64_t kSharedMemoryMarker = -1;
  absl::Status s = SendMessage(fd, kProtocolVersion, -1);
  if (s.ok()) s = SendMessage(fd, handles.peer_id, -1);
  if (s.ok()) s = SendMessage(fd, kSharedMemoryMarker, handles.region.get());
  // The host's eventfds, in vector order: what the guest's doorbell kicks.
  for (const UniqueFd& kick : handles.kick_fds) {
    if (s.ok()) s = SendMessage(fd, IvshmemServer::kHostPeerId, kick.get());
  }
  // The VM's own eventfds, in vector order: what raises its MSI-X vectors.
  for (const UniqueFd& irq : handles.irq_fds) {
    if (s.ok()) s = SendMessage(fd, handles.peer_id, irq.get());
  }
  return s;
}

absl::StatusOr<std::unique_ptr<IvshmemServer>> IvshmemServer::Create(
    std::string dir, std::optional<gid_t> group) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot create the ivshmem socket directory ", dir, ": ", ec.message(),
        "; create it or point --ivshmem_dir elsewhere"));
  }
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return Errno("eventfd");
  std::unique_ptr<IvshmemServer> server(
      new IvshmemServer(std::move(dir), group, std::move(wake)));
  server->thread_ = std::thread([s = server.get()] { s->Loop(); });
  return server;
}

IvshmemServer::IvshmemServer(std::string dir, std::optional<gid_t> group, UniqueFd wake)
    : dir_(std::move(dir)), group_(group), wake_(std::move(wake)) {}

IvshmemServer::~IvshmemServer() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  Wake();
  thread_.join();
  absl::MutexLock lock(&mu_);
  for (const auto& [name, endpoint] : endpoints_) ::unlink(SocketPath(name).c_str());
}

std::string IvshmemServer::SocketPath(absl::string_view name) const {
  return absl::StrCat(dir_, "/", name, ".sock");
}

void IvshmemServer::Wake() {
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
}

absl::Status IvshmemServer::Serve(absl::string_view name, VmAttachmentHandles handles) {
  const std::string path = SocketPath(name);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ivshmem socket path ", path, " is longer than ", sizeof(addr.sun_path) - 1,
        " bytes; use a shorter --ivshmem_dir"));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listener.valid()) return Errno("socket");
  ::unlink(path.c_str());  // a stale socket from a previous agent run
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Errno(absl::StrCat("bind ", path));
  }
  // QEMU runs as another user; the group (if given) is what lets it in.
  if (::chmod(path.c_str(), 0660) != 0 ||
      (group_ && ::chown(path.c_str(), static_cast<uid_t>(-1), *group_) != 0)) {
    absl::Status s = Errno(absl::StrCat("set permissions of ", path));
    ::unlink(path.c_str());
    return s;
  }
  if (::listen(listener.get(), 4) != 0) {
    absl::Status s = Errno(absl::StrCat("listen ", path));
    ::unlink(path.c_str());
    return s;
  }
  {
    absl::MutexLock lock(&mu_);
    endpoints_.insert_or_assign(std::string(name),
                                Endpoint{std::move(listener), UniqueFd(), std::move(handles)});
  }
  Wake();
  return absl::OkStatus();
}

void IvshmemServer::Stop(absl::string_view name) {
  {
    absl::MutexLock lock(&mu_);
    if (endpoints_.erase(std::string(name)) == 0) return;
  }
  ::unlink(SocketPath(name).c_str());
  Wake();
}

void IvshmemServer::Accept(const std::string& name, Endpoint& endpoint) {
  UniqueFd client(::accept4(endpoint.listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!client.valid()) return;
  if (endpoint.client.valid()) {
    LogWarning(absl::StrCat("ivshmem ", name,
                            ": refused a second client; one VM per attachment"));
    return;
  }
  timeval timeout{.tv_sec = 0, .tv_usec = kSendTimeoutMs * 1000};
  ::setsockopt(client.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  if (absl::Status s = SendIvshmemGreeting(client.get(), endpoint.handles); !s.ok()) {
    LogWarning(absl::StrCat("ivshmem ", name, ": client dropped during setup: ", s.message()));
    return;
  }
  LogInfo(absl::StrCat("ivshmem ", name, ": VM connected"));
  endpoint.client = std::move(client);
}

void IvshmemServer::Loop() {
  while (true) {
    // Rebuilt every round: the set changes rarely and stays small.
    std::vector<pollfd> fds{{.fd = wake_.get(), .events = POLLIN, .revents = 0}};
    std::vector<std::pair<std::string, bool>> owners;  // (name, is_client)
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      for (const auto& [name, endpoint] : endpoints_) {
        fds.push_back({.fd = endpoint.listener.get(), .events = POLLIN, .revents = 0});
        owners.emplace_back(name, false);
        if (endpoint.client.valid()) {
          fds.push_back({.fd = endpoint.client.get(), .events = POLLIN, .revents = 0});
          owners.emplace_back(name, true);
        }
      }
    }
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) {
      LogError(absl::StrCat("ivshmem server: poll: ", std::strerror(errno)));
      return;
    }
    if (fds[0].revents) {
      uint64_t drained;
      (void)!::read(wake_.get(), &drained, sizeof(drained));
    }
    absl::MutexLock lock(&mu_);
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      const auto& [name, is_client] = owners[i - 1];
      auto it = endpoints_.find(name);
      if (it == endpoints_.end()) continue;  // stopped meanwhile
      Endpoint& endpoint = it->second;
      if (!is_client && endpoint.listener.get() == fds[i].fd) {
        Accept(name, endpoint);
      } else if (is_client && endpoint.client.get() == fds[i].fd) {
        // QEMU never sends; readable means it hung up (the VM stopped).
        LogInfo(absl::StrCat("ivshmem ", name, ": VM disconnected"));
        endpoint.client.reset();
      }
    }
  }
}

}  // namespace ptnetmap::agent
