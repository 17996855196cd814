#include "agent/grpc_server.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace ptnetmap::agent {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view flag) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in || text.str().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", flag, " file '", path, "'; give a readable PEM file"));
  }
  return text.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MutualTls(
    const GrpcServerOptions& options) {
  if (options.tls_cert.empty() || options.tls_key.empty() || options.tls_client_ca.empty()) {
    return absl::InvalidArgumentError(
        "--listen_tcp requires --tls_cert, --tls_key and --tls_client_ca: the TCP listener "
        "only accepts clients with a certificate signed by that CA (mutual TLS)");
  }
  absl::StatusOr<std::string> cert = ReadPem(options.tls_cert, "--tls_cert");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(options.tls_key, "--tls_key");
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> ca = ReadPem(options.tls_client_ca, "--tls_client_ca");
  if (!ca.ok()) return ca.status();
  grpc::SslServerCredentialsOptions ssl(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = *ca;
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(ssl);
}

absl::Status SecureSocket(const std::string& path, const std::string& group_name) {
  if (::chmod(path.c_str(), 0660) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("chmod 0660 ", path, ": ", std::strerror(errno)));
  }
  if (group_name.empty()) return absl::OkStatus();
  const struct group* entry = ::getgrnam(group_name.c_str());
  if (entry == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("--socket_group: no group named '",
                                                   group_name, "'; create it (groupadd ",
                                                   group_name, ")"));
  }
  if (::chown(path.c_str(), static_cast<uid_t>(-1), entry->gr_gid) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("chown :", group_name, " ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// True if something accepts connections on the UNIX socket at `path`.
bool SocketIsServed(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool served = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return served;
}

}  // namespace

absl::StatusOr<std::unique_ptr<grpc::Server>> StartGrpcServer(grpc::Service& service,
                                                              const GrpcServerOptions& options) {
  if (options.unix_socket.empty() && options.tcp_address.empty()) {
    return absl::InvalidArgumentError("no listener: give --socket and/or --listen_tcp");
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  if (!options.unix_socket.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(
        std::filesystem::path(options.unix_socket).parent_path(), ec);
    if (SocketIsServed(options.unix_socket)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "another process (a second ptnetd?) is serving ", options.unix_socket,
          "; stop it or choose another --socket"));
    }
    // A socket file left by a killed agent would make bind fail.
    ::unlink(options.unix_socket.c_str());
    builder.AddListeningPort("unix:" + options.unix_socket, grpc::InsecureServerCredentials());
  }
  if (!options.tcp_address.empty()) {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> tls = MutualTls(options);
    if (!tls.ok()) return tls.status();
    builder.AddListeningPort(options.tcp_address, *tls);
  }
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options.unix_socket.empty() ? "" : options.unix_socket,
        options.unix_socket.empty() || options.tcp_address.empty() ? "" : " and ",
        options.tcp_address,
        "; check that the directory is writable, the address is free and no other ptnetd runs"));
  }
  if (!options.unix_socket.empty()) {
    if (absl::Status s = SecureSocket(options.unix_socket, options.socket_group); !s.ok()) {
      server->Shutdown();
      return s;
    }
  }
  return server;
}

}  // namespace ptnetmap::agent
