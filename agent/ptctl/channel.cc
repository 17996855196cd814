// Connecting ptctl to ptnetd, and the whole of main().
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "agent/ptctl/ptctl.h"

namespace ptnetmap::ptctl {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view flag) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in || text.str().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read ", flag, " file '", path, "'"));
  }
  return text.str();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const GlobalOptions& options) {
  if (options.address.empty()) {
    return grpc::CreateChannel("unix:" + options.socket, grpc::InsecureChannelCredentials());
  }
  // The agent's TCP listener only speaks mutual TLS.
  if (options.tls_ca.empty() || options.tls_cert.empty() || options.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "--address needs --tls_ca, --tls_cert and --tls_key: ptnetd's TCP listener requires "
        "a client certificate");
  }
  grpc::SslCredentialsOptions ssl;
  absl::StatusOr<std::string> ca = ReadFile(options.tls_ca, "--tls_ca");
  if (!ca.ok()) return ca.status();
  absl::StatusOr<std::string> cert = ReadFile(options.tls_cert, "--tls_cert");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadFile(options.tls_key, "--tls_key");
  if (!key.ok()) return key.status();
  ssl.pem_root_certs = *ca;
  ssl.pem_cert_chain = *cert;
  ssl.pem_private_key = *key;
  return grpc::CreateChannel(options.address, grpc::SslCredentials(ssl));
}

int Main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  absl::StatusOr<Command> command = ParseArgs(args);
  if (!command.ok()) {
    err << "ptctl: " << command.status().message() << "; run ptctl --help\n";
    return kExitUsage;
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(command->global);
  if (!channel.ok()) {
    err << "ptctl: " << channel.status().message() << "\n";
    return kExitUsage;
  }
  auto stub = ptnetmap::v1::Ptnetmap::NewStub(*channel);
  auto health = grpc::health::v1::Health::NewStub(*channel);
  return RunCommand(*command, *stub, *health, out, err);
}

}  // namespace ptnetmap::ptctl
