// ptctl: the command-line client of ptnetd. A library so that parsing,
// dispatch and formatting are tested without a process; main.cc is a thin
// wrapper. Verbs are grouped by object: `ptctl switch create vale0`.
#ifndef PTNETMAP_AGENT_PTCTL_PTCTL_H_
#define PTNETMAP_AGENT_PTCTL_PTCTL_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "ptnetmap/v1/ptnetmap.grpc.pb.h"

namespace ptnetmap::ptctl {

// Exit codes scripts can rely on (also in `ptctl --help` and docs/agent.md).
enum ExitCode : int {
  kExitOk = 0,
  kExitUsage = 1,            // bad command line
  kExitNotFound = 2,         // NOT_FOUND
  kExitAlreadyExists = 3,    // ALREADY_EXISTS
  kExitRejected = 4,         // INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE
  kExitUnavailable = 5,      // agent not reachable, module not loaded, deadline
  kExitLimit = 6,            // RESOURCE_EXHAUSTED
  kExitUnimplemented = 7,    // UNIMPLEMENTED (module lacks the feature)
  kExitPermission = 8,       // PERMISSION_DENIED, UNAUTHENTICATED
  kExitInternal = 10,        // anything else (INTERNAL, DATA_LOSS, ...)
};

int ExitCodeFor(grpc::StatusCode code);

struct GlobalOptions {
  std::string socket = "/run/ptnetmap/ptnetd.sock";
  std::string address;  // host:port; selects TCP with mutual TLS instead of the socket
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string output = "table";  // or "json"
  int timeout_seconds = 10;
};

struct Command {
  GlobalOptions global;
  std::vector<std::string> words;  // object, action, then arguments
  std::map<std::string, std::vector<std::string>> options;  // --trust, --peer, ...
  bool help = false;
};

// Parses argv (without argv[0]). Flags may come anywhere, as --name=value
// or --name value.
absl::StatusOr<Command> ParseArgs(const std::vector<std::string>& args);

// The usage text.
std::string Usage();

// Runs a parsed command against `stub`, writing results to `out` and errors
// to `err`. Returns an ExitCode.
int RunCommand(const Command& command, ptnetmap::v1::Ptnetmap::StubInterface& stub,
               grpc::health::v1::Health::StubInterface& health, std::ostream& out,
               std::ostream& err);

// Opens the channel chosen by the global options.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const GlobalOptions& options);

// Everything main() does: parse, connect, run.
int Main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace ptnetmap::ptctl

#endif  // PTNETMAP_AGENT_PTCTL_PTCTL_H_
