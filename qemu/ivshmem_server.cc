#include "qemu/ivshmem_server.h"

#include <fcntl.h>
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

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"

namespace ptnetmap::ivshmem {
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

absl::StatusOr<UniqueFd> Dup(const UniqueFd& fd) {
  int copy = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot duplicate a passthrough descriptor: ", std::strerror(errno),
                     "; raise the open-file limit (LimitNOFILE)"));
  }
  return UniqueFd(copy);
}

absl::Status DupAll(const std::vector<UniqueFd>& from, std::vector<UniqueFd>& to) {
  for (const UniqueFd& fd : from) {
    absl::StatusOr<UniqueFd> copy = Dup(fd);
    if (!copy.ok()) return copy.status();
    to.push_back(*std::move(copy));
  }
  return absl::OkStatus();
}

// Makes `dir` exist. Only a directory made here gets our mode and group:
// an existing one (say /run/ptnetmap from systemd) is the deployment's.
absl::Status MakeSocketDirectory(const std::string& dir, std::optional<gid_t> group) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return absl::OkStatus();
  const std::filesystem::path path(dir);
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  if (!ec && ::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) {
    ec = std::error_code(errno, std::generic_category());
  }
  if (ec) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot create the ivshmem socket directory ", dir, ": ", ec.message(),
        "; create it or choose another directory"));
  }
  // The group needs search permission to reach the sockets; the umask may
  // have taken it away.
  if (::chmod(dir.c_str(), 0750) != 0 ||
      (group && ::chown(dir.c_str(), static_cast<uid_t>(-1), *group) != 0)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot set the mode or group of ", dir, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

void LogToStderr(LogLevel level, absl::string_view message) {
  const char* tag = level == LogLevel::kInfo ? "" : level == LogLevel::kWarning ? "warning: "
                                                                                 : "error: ";
  absl::FPrintF(stderr, "ptnm-ivshmem: %s%s\n", tag, message);
}

absl::StatusOr<PeerFds> DupPeerFds(const PeerFds& peer) {
  PeerFds copy;
  copy.peer_id = peer.peer_id;
  copy.region_bytes = peer.region_bytes;
  absl::StatusOr<UniqueFd> region = Dup(peer.region);
  if (!region.ok()) return region.status();
  copy.region = *std::move(region);
  if (absl::Status s = DupAll(peer.kick_fds, copy.kick_fds); !s.ok()) return s;
  if (absl::Status s = DupAll(peer.irq_fds, copy.irq_fds); !s.ok()) return s;
  return copy;
}

absl::Status SendGreeting(int sock, const PeerFds& peer) {
  const int64_t kProtocolVersion = 0;
  const int64_t kSharedMemoryMarker = -1;
  absl::Status s = SendMessage(sock, kProtocolVersion, -1);
  if (s.ok()) s = SendMessage(sock, peer.peer_id, -1);
  if (s.ok()) s = SendMessage(sock, kSharedMemoryMarker, peer.region.get());
  // The host's eventfds, in vector order: what the guest's doorbell kicks.
  // Guests of a shared region never kick each other, only the host.
  for (const UniqueFd& kick : peer.kick_fds) {
    if (s.ok()) s = SendMessage(sock, kHostPeerId, kick.get());
  }
  // The VM's own eventfds, in vector order: what raises its MSI-X vectors.
  for (const UniqueFd& irq : peer.irq_fds) {
    if (s.ok()) s = SendMessage(sock, peer.peer_id, irq.get());
  }
  return s;
}

absl::StatusOr<std::unique_ptr<Server>> Server::Create(ServerOptions options) {
  if (!options.log) options.log = LogToStderr;
  if (absl::Status s = MakeSocketDirectory(options.dir, options.group); !s.ok()) return s;
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return Errno("eventfd");
  std::unique_ptr<Server> server(new Server(std::move(options), std::move(wake)));
  server->thread_ = std::thread([s = server.get()] { s->Loop(); });
  return server;
}

Server::Server(ServerOptions options, UniqueFd wake)
    : options_(std::move(options)), wake_(std::move(wake)) {}

Server::~Server() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  Wake();
  thread_.join();
  absl::MutexLock lock(&mu_);
  for (const auto& [name, endpoint] : endpoints_) ::unlink(SocketPath(name).c_str());
}

std::string Server::SocketPath(absl::string_view name) const {
  return absl::StrCat(options_.dir, "/", name, ".sock");
}

void Server::Wake() {
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
}

absl::Status Server::Serve(absl::string_view name, PeerFds peer) {
  const std::string path = SocketPath(name);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ivshmem socket path ", path, " is longer than ", sizeof(addr.sun_path) - 1,
        " bytes; use a shorter socket directory"));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listener.valid()) return Errno("socket");
  ::unlink(path.c_str());  // a stale socket from a previous run
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Errno(absl::StrCat("bind ", path));
  }
  // QEMU runs as another user; the group (if given) is what lets it in.
  if (::chmod(path.c_str(), 0660) != 0 ||
      (options_.group && ::chown(path.c_str(), static_cast<uid_t>(-1), *options_.group) != 0)) {
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
                                Endpoint{std::move(listener), UniqueFd(), std::move(peer)});
  }
  Wake();
  return absl::OkStatus();
}

void Server::Stop(absl::string_view name) {
  {
    absl::MutexLock lock(&mu_);
    if (endpoints_.erase(std::string(name)) == 0) return;
  }
  ::unlink(SocketPath(name).c_str());
  Wake();
}

void Server::Accept(const std::string& name, Endpoint& endpoint) {
  UniqueFd client(::accept4(endpoint.listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!client.valid()) return;
  if (endpoint.client.valid()) {
    options_.log(LogLevel::kWarning,
                 absl::StrCat("ivshmem ", name, ": refused a second client; one VM per socket"));
    return;
  }
  timeval timeout{.tv_sec = 0, .tv_usec = kSendTimeoutMs * 1000};
  ::setsockopt(client.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  if (absl::Status s = SendGreeting(client.get(), endpoint.peer); !s.ok()) {
    options_.log(LogLevel::kWarning, absl::StrCat("ivshmem ", name,
                                                  ": client dropped during setup: ", s.message()));
    return;
  }
  options_.log(LogLevel::kInfo, absl::StrCat("ivshmem ", name, ": VM connected (peer ",
                                             endpoint.peer.peer_id, ")"));
  endpoint.client = std::move(client);
}

void Server::Loop() {
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
      options_.log(LogLevel::kError, absl::StrCat("ivshmem server: poll: ", std::strerror(errno)));
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
        options_.log(LogLevel::kInfo, absl::StrCat("ivshmem ", name, ": VM disconnected"));
        endpoint.client.reset();
      }
    }
  }
}

std::string LibvirtShmemXml(absl::string_view name, absl::string_view socket_path,
                            uint32_t vectors) {
  // Attribute values are quoted with '; the socket directory may contain
  // anything.
  auto escape = [](absl::string_view s) {
    return absl::StrReplaceAll(s, {{"&", "&amp;"}, {"'", "&apos;"}, {"<", "&lt;"}});
  };
  return absl::StrCat("<shmem name='", escape(name), "'><model type='ivshmem-doorbell'/>",
                      "<server path='", escape(socket_path), "'/><msi vectors='", vectors,
                      "' ioeventfd='on'/></shmem>");
}

}  // namespace ptnetmap::ivshmem
