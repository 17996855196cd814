// Starts the gRPC server of ptnetd: the Ptnetmap service and the standard
// health service, on a UNIX socket (the default, guarded by file
// permissions) and optionally on TCP, where mutual TLS is mandatory: a TCP
// listener without client certificates would let anyone on the network
// reconfigure the host's datapath.
#ifndef PTNETMAP_AGENT_GRPC_SERVER_H_
#define PTNETMAP_AGENT_GRPC_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace ptnetmap::agent {

struct GrpcServerOptions {
  std::string unix_socket;   // path; empty: no UNIX listener
  std::string socket_group;  // group owning the socket; empty: the agent's
  std::string tcp_address;   // host:port; empty: no TCP listener
  std::string tls_cert;      // PEM files, all three required with tcp_address
  std::string tls_key;
  std::string tls_client_ca;
};

// Checks the options (TCP needs all three TLS files, which must be readable)
// and serves `service`. The UNIX socket is created mode 0660.
absl::StatusOr<std::unique_ptr<grpc::Server>> StartGrpcServer(grpc::Service& service,
                                                              const GrpcServerOptions& options);

}  // namespace ptnetmap::agent

#endif  // PTNETMAP_AGENT_GRPC_SERVER_H_
