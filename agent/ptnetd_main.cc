// ptnetd: the ptnetmap host agent. Composition root: flags, construction of
// the adapters, reconcile, serving, and shutdown on SIGTERM/SIGINT.
// Operator documentation: docs/agent.md.
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <prometheus/exposer.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/fake_datapath.h"
#include "agent/grpc_server.h"
#include "agent/kernel_datapath.h"
#include "agent/log.h"
#include "agent/manager.h"
#include "agent/metrics.h"
#include "agent/service.h"
#include "agent/state_store.h"
#include "qemu/ivshmem_server.h"

ABSL_FLAG(std::string, socket, "/run/ptnetmap/ptnetd.sock",
          "UNIX socket of the gRPC API (mode 0660); empty to disable");
ABSL_FLAG(std::string, socket_group, "",
          "Group that owns the API socket; its members may use ptctl");
ABSL_FLAG(std::string, listen_tcp, "",
          "Optional host:port for the gRPC API over TCP; requires --tls_cert, --tls_key "
          "and --tls_client_ca (mutual TLS)");
ABSL_FLAG(std::string, tls_cert, "", "PEM server certificate for --listen_tcp");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle; TCP clients must present a certificate it signed");
ABSL_FLAG(std::string, datapath, "kernel",
          "kernel: netmap objects through /dev/netmap; fake: in memory, for tests and demos");
ABSL_FLAG(std::string, netmap_device, "/dev/netmap", "Device of the kernel datapath");
ABSL_FLAG(std::string, fake_nics, "eth0,eth1",
          "Interfaces the fake datapath pretends the host has");
ABSL_FLAG(std::string, db_path, "/var/lib/ptnetmap/ptnetd.db",
          "SQLite database holding the configuration");
ABSL_FLAG(std::string, ivshmem_dir, "/run/ptnetmap/ivshmem",
          "Directory of the ivshmem-doorbell sockets QEMU connects to");
ABSL_FLAG(std::string, ivshmem_group, "",
          "Group that owns the ivshmem sockets (the group QEMU runs as, e.g. libvirt-qemu)");
ABSL_FLAG(std::string, metrics_address, "",
          "host:port of the Prometheus /metrics endpoint; empty to disable");

#ifndef PTNETMAP_VERSION
#define PTNETMAP_VERSION "unknown"
#endif

namespace ptnetmap::agent {
namespace {

// Exit codes, for systemd and scripts.
constexpr int kExitOk = 0;
constexpr int kExitBadConfig = 2;  // flags; nothing was started
constexpr int kExitStartFailed = 1;

absl::StatusOr<std::optional<gid_t>> LookupGroup(const std::string& name,
                                                 absl::string_view flag) {
  if (name.empty()) return std::nullopt;
  const group* entry = ::getgrnam(name.c_str());
  if (entry == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": no group named '", name, "'"));
  }
  return entry->gr_gid;
}

absl::StatusOr<std::unique_ptr<Datapath>> MakeDatapath() {
  const std::string kind = absl::GetFlag(FLAGS_datapath);
  if (kind == "fake") {
    std::vector<std::string> nics = absl::StrSplit(absl::GetFlag(FLAGS_fake_nics), ',',
                                                   absl::SkipEmpty());
    return std::make_unique<FakeDatapath>(std::move(nics));
  }
  if (kind == "kernel") {
    absl::StatusOr<std::unique_ptr<KernelDatapath>> kernel =
        KernelDatapath::Open(absl::GetFlag(FLAGS_netmap_device));
    if (!kernel.ok()) return kernel.status();
    return std::unique_ptr<Datapath>(*std::move(kernel));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--datapath=", kind, ": use 'kernel' or 'fake'"));
}

void LogIvshmem(ivshmem::LogLevel level, absl::string_view message) {
  Log(level == ivshmem::LogLevel::kInfo      ? LogSeverity::kInfo
      : level == ivshmem::LogLevel::kWarning ? LogSeverity::kWarning
                                             : LogSeverity::kError,
      message);
}

int Fail(int code, const absl::Status& status) {
  LogError(status.ToString());
  return code;
}

int Run() {
  // Only the group may use what we create (sockets, database).
  ::umask(0007);
  // Block the shutdown signals in every thread; main waits for them below.
  sigset_t shutdown_signals;
  sigemptyset(&shutdown_signals);
  sigaddset(&shutdown_signals, SIGTERM);
  sigaddset(&shutdown_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &shutdown_signals, nullptr);

  absl::StatusOr<std::optional<gid_t>> ivshmem_group =
      LookupGroup(absl::GetFlag(FLAGS_ivshmem_group), "--ivshmem_group");
  if (!ivshmem_group.ok()) return Fail(kExitBadConfig, ivshmem_group.status());
  const GrpcServerOptions grpc_options{
      .unix_socket = absl::GetFlag(FLAGS_socket),
      .socket_group = absl::GetFlag(FLAGS_socket_group),
      .tcp_address = absl::GetFlag(FLAGS_listen_tcp),
      .tls_cert = absl::GetFlag(FLAGS_tls_cert),
      .tls_key = absl::GetFlag(FLAGS_tls_key),
      .tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca)};
  if (!grpc_options.tcp_address.empty() &&
      (grpc_options.tls_cert.empty() || grpc_options.tls_key.empty() ||
       grpc_options.tls_client_ca.empty())) {
    return Fail(kExitBadConfig,
                absl::InvalidArgumentError(
                    "--listen_tcp requires --tls_cert, --tls_key and --tls_client_ca "
                    "(mutual TLS); refusing to serve the API on TCP without them"));
  }

  absl::StatusOr<std::unique_ptr<Datapath>> datapath = MakeDatapath();
  if (!datapath.ok()) return Fail(kExitStartFailed, datapath.status());
  absl::StatusOr<std::unique_ptr<StateStore>> store =
      StateStore::Open(absl::GetFlag(FLAGS_db_path));
  if (!store.ok()) return Fail(kExitStartFailed, store.status());
  absl::StatusOr<std::unique_ptr<ivshmem::Server>> sockets = ivshmem::Server::Create(
      {.dir = absl::GetFlag(FLAGS_ivshmem_dir), .group = *ivshmem_group, .log = LogIvshmem});
  if (!sockets.ok()) return Fail(kExitStartFailed, sockets.status());

  Manager manager(**datapath, **store, **sockets);
  if (absl::StatusOr<ReconcileReport> report = manager.Start(); !report.ok()) {
    return Fail(kExitStartFailed, report.status());
  }

  AgentMetrics metrics(manager, PTNETMAP_VERSION, (*datapath)->Name());
  std::unique_ptr<prometheus::Exposer> exposer;
  if (const std::string address = absl::GetFlag(FLAGS_metrics_address); !address.empty()) {
    try {
      exposer = std::make_unique<prometheus::Exposer>(address);
    } catch (const std::exception& e) {
      return Fail(kExitStartFailed,
                  absl::UnavailableError(absl::StrCat("--metrics_address=", address,
                                                      ": cannot listen: ", e.what())));
    }
    for (const auto& collectable : metrics.Collectables()) {
      exposer->RegisterCollectable(collectable);
    }
    LogInfo(absl::StrCat("metrics on http://", address, "/metrics"));
  }

  PtnetmapService service(manager, &metrics);
  absl::StatusOr<std::unique_ptr<grpc::Server>> server = StartGrpcServer(service, grpc_options);
  if (!server.ok()) return Fail(kExitStartFailed, server.status());
  LogInfo(absl::StrCat("ptnetd ", PTNETMAP_VERSION, " serving (datapath ",
                       (*datapath)->Name(), ", socket ", grpc_options.unix_socket,
                       grpc_options.tcp_address.empty() ? "" : ", tcp ",
                       grpc_options.tcp_address, ")"));

  int signal_number = 0;
  sigwait(&shutdown_signals, &signal_number);
  LogInfo(absl::StrCat("signal ", signal_number, ": shutting down; VM traffic keeps flowing"));
  // In-flight RPCs get a moment to finish; kernel objects stay as they are.
  (*server)->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (!grpc_options.unix_socket.empty()) ::unlink(grpc_options.unix_socket.c_str());
  return kExitOk;
}

}  // namespace
}  // namespace ptnetmap::agent

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "ptnetmap host agent: serves the ptnetmap.v1 gRPC API and keeps the netmap "
      "configuration. See docs/agent.md.");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    std::fprintf(stderr, "ptnetd takes no arguments, only flags; see --help\n");
    return 2;
  }
  return ptnetmap::agent::Run();
}
