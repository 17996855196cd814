// ptnm-ivshmem-server: one kernel passthrough attachment served to QEMU,
// without the agent. For tests and for trying ptnetmap by hand; ptnetd does
// the same for the VMs it manages (docs/agent.md). See qemu/README.md.
#include <grp.h>
#include <signal.h>
#include <fcntl.h>
#include <getopt.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "qemu/passthrough.h"

namespace ptnetmap::ivshmem {
namespace {

constexpr char kUsage[] = R"(usage: ptnm-ivshmem-server --name NAME --port PORT [--port PORT ...] [options]

Creates a kernel passthrough attachment (PTNETMAP_REQ_PT_ATTACH) of one netmap
port per guest peer, serves each peer to QEMU's ivshmem-doorbell on its own
UNIX socket, and detaches it on SIGTERM or SIGINT.

  --name NAME      the attachment's name in the kernel; sockets are DIR/NAME.sock
                   (one peer) or DIR/NAME-P.sock (peer P of several)
  --port PORT      the netmap port of the next peer, e.g. vale0:vm1 (created by
                   the attach) or pp{1 / pp}1 (the two ends of pipe pp)
  --mac MAC        the guest MAC of the next peer (default: derived from PORT)
  --shared         one shared region for all peers; needed for pipe ends and
                   for several peers (trusted guests only: each sees all)
  --rings N        rings per direction of every port (default 1); QEMU needs
                   vectors=1+2N
  --size BYTES     shared memory, a power of two; K, M, G suffixes (default 8M)
  --dir DIR        socket directory (default /run/ptnetmap/ivshmem)
  --group GROUP    group owning the sockets (the group QEMU runs as)
  --device PATH    netmap control device (default /dev/netmap)
  --adopt          serve the existing attachment NAME (PTNETMAP_REQ_PT_FDS)
                   instead of creating one; --port and --size are not used
  --keep           leave the attachment in the kernel on exit
  --print-xml      print each peer's libvirt <shmem> device
  --help

Prints one "peer P PORT SOCKET vectors=V" line per peer and then "ready";
On the way out, one "counters {json}" line per peer (packets, bytes, kicks,
interrupts, worker wake-ups, errors), then "detached NAME" (or "kept NAME").
Exit status 0 after a signal, 1 if the attachment could not be made or
served, 2 on bad usage.
)";

// One JSON line per peer with its counters: what a test or a benchmark
// divides (kicks and interrupts per packet) once traffic is over.
void PrintCounters(int netmap_fd, const std::string& name) {
  absl::StatusOr<AttachmentInfo> totals = Info(netmap_fd, name);
  if (!totals.ok()) return;
  for (uint32_t peer = 1; peer <= totals->num_peers; ++peer) {
    absl::StatusOr<AttachmentInfo> i = Info(netmap_fd, name, peer);
    if (!i.ok()) continue;
    std::printf(
        "counters {\"attachment\": \"%s\", \"peer\": %u, \"port\": \"%s\", "
        "\"tx_packets\": %llu, \"tx_bytes\": %llu, \"rx_packets\": %llu, "
        "\"rx_bytes\": %llu, \"kicks\": %llu, \"interrupts\": %llu, "
        "\"wakeups\": %llu, \"errors\": %llu}\n",
        name.c_str(), peer, i->port.c_str(), static_cast<unsigned long long>(i->tx_packets),
        static_cast<unsigned long long>(i->tx_bytes),
        static_cast<unsigned long long>(i->rx_packets),
        static_cast<unsigned long long>(i->rx_bytes), static_cast<unsigned long long>(i->kicks),
        static_cast<unsigned long long>(i->interrupts),
        static_cast<unsigned long long>(i->wakeups), static_cast<unsigned long long>(i->errors));
  }
}

struct Options {
  std::string name;
  std::vector<AttachmentPeer> peers;
  std::vector<Mac> macs;
  bool shared = false;
  uint32_t rings = 1;
  uint64_t size = uint64_t{8} << 20;
  std::string dir = "/run/ptnetmap/ivshmem";
  std::string group;
  std::string device = "/dev/netmap";
  bool adopt = false;
  bool keep = false;
  bool print_xml = false;
};

// With no error: the help on stdout, status 0. Otherwise the error, 2.
int Usage(const std::string& error) {
  if (error.empty()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::fprintf(stderr, "ptnm-ivshmem-server: %s (see --help)\n", error.c_str());
  return 2;
}

bool ParseSize(std::string text, uint64_t& out) {
  uint64_t shift = 0;
  if (!text.empty()) {
    switch (text.back()) {
      case 'K': case 'k': shift = 10; break;
      case 'M': case 'm': shift = 20; break;
      case 'G': case 'g': shift = 30; break;
    }
    if (shift) text.pop_back();
  }
  uint64_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value == 0 || value > (uint64_t{1} << 40) >> shift) {
    return false;
  }
  out = value << shift;
  return true;
}

// Returns an exit status to leave with, or -1 to go on.
int Parse(int argc, char** argv, Options& o) {
  enum { kName = 256, kPort, kMac, kShared, kRings, kSize, kDir, kGroup, kDevice, kAdopt,
         kKeep, kXml, kHelp };
  static const option longopts[] = {
      {"name", required_argument, nullptr, kName},   {"port", required_argument, nullptr, kPort},
      {"mac", required_argument, nullptr, kMac},     {"shared", no_argument, nullptr, kShared},
      {"rings", required_argument, nullptr, kRings}, {"size", required_argument, nullptr, kSize},
      {"dir", required_argument, nullptr, kDir},     {"group", required_argument, nullptr, kGroup},
      {"device", required_argument, nullptr, kDevice},
      {"adopt", no_argument, nullptr, kAdopt},       {"keep", no_argument, nullptr, kKeep},
      {"print-xml", no_argument, nullptr, kXml},     {"help", no_argument, nullptr, kHelp},
      {nullptr, 0, nullptr, 0}};
  int opt;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "", longopts, nullptr)) != -1) {
    const std::string arg = optarg ? optarg : "";
    switch (opt) {
      case kName: o.name = arg; break;
      case kPort: o.peers.push_back({.port = arg}); break;
      case kMac: {
        absl::StatusOr<Mac> mac = ParseMac(arg);
        if (!mac.ok()) return Usage(std::string(mac.status().message()));
        o.macs.push_back(*mac);
        break;
      }
      case kShared: o.shared = true; break;
      case kRings:
        if (!absl::SimpleAtoi(arg, &o.rings) || o.rings == 0 || o.rings > 16) {
          return Usage("--rings takes 1 to 16");
        }
        break;
      case kSize:
        if (!ParseSize(arg, o.size)) return Usage("--size takes a number of bytes, e.g. 8M");
        break;
      case kDir: o.dir = arg; break;
      case kGroup: o.group = arg; break;
      case kDevice: o.device = arg; break;
      case kAdopt: o.adopt = true; break;
      case kKeep: o.keep = true; break;
      case kXml: o.print_xml = true; break;
      case kHelp: return Usage("");
      default:
        return Usage(absl::StrCat("unknown or incomplete option ", argv[optind - 1]));
    }
  }
  if (optind < argc) return Usage(absl::StrCat("unexpected argument ", argv[optind]));
  if (o.name.empty()) return Usage("--name is required");
  if (!o.adopt && o.peers.empty()) return Usage("give at least one --port");
  if (o.macs.size() > o.peers.size()) return Usage("more --mac than --port");
  if (o.peers.size() > 1 && !o.shared) {
    return Usage("several peers share one region: add --shared (trusted guests only)");
  }
  if (o.size & (o.size - 1)) return Usage("--size must be a power of two (QEMU needs it)");
  for (size_t i = 0; i < o.peers.size(); ++i) {
    o.peers[i].mac = i < o.macs.size() ? o.macs[i] : MacFor(o.peers[i].port);
  }
  return -1;
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "ptnm-ivshmem-server: %s\n", std::string(status.message()).c_str());
  return 1;
}

int Run(const Options& o) {
  // Block the stop signals in every thread; main waits for them below.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  std::optional<gid_t> gid;
  if (!o.group.empty()) {
    const group* entry = ::getgrnam(o.group.c_str());
    if (entry == nullptr) return Usage(absl::StrCat("--group: no group named '", o.group, "'"));
    gid = entry->gr_gid;
  }
  UniqueFd netmap(::open(o.device.c_str(), O_RDWR | O_CLOEXEC));
  if (!netmap.valid()) {
    return Fail(absl::UnavailableError(absl::StrCat(
        "cannot open ", o.device, ": ", std::strerror(errno),
        errno == ENOENT ? " (module not loaded: modprobe ptnetmap)" : "")));
  }

  std::vector<PeerFds> peers;
  std::vector<std::string> ports;
  if (o.adopt) {
    absl::StatusOr<AttachmentInfo> info = Info(netmap.get(), o.name);
    if (!info.ok()) return Fail(info.status());
    for (uint32_t p = 1; p <= info->num_peers; ++p) {
      absl::StatusOr<AttachmentInfo> peer_info = Info(netmap.get(), o.name, p);
      absl::StatusOr<PeerFds> fds = FdsOf(netmap.get(), o.name, static_cast<uint16_t>(p));
      if (!peer_info.ok()) return Fail(peer_info.status());
      if (!fds.ok()) return Fail(fds.status());
      ports.push_back(peer_info->port);
      peers.push_back(*std::move(fds));
    }
    std::printf("adopted %s: %u peer(s), %llu bytes\n", o.name.c_str(), info->num_peers,
                static_cast<unsigned long long>(info->shm_size));
  } else {
    absl::StatusOr<std::vector<PeerFds>> made =
        Attach(netmap.get(), {.name = o.name, .peers = o.peers, .shared = o.shared,
                              .rings = o.rings, .region_bytes = o.size});
    if (!made.ok()) return Fail(made.status());
    peers = *std::move(made);
    for (const AttachmentPeer& p : o.peers) ports.push_back(p.port);
    absl::StatusOr<AttachmentInfo> info = Info(netmap.get(), o.name);
    std::printf("attached %s: %zu peer(s), %llu bytes, region at %llu (%llu bytes)\n",
                o.name.c_str(), peers.size(), static_cast<unsigned long long>(o.size),
                static_cast<unsigned long long>(info.ok() ? info->region_offset : 0),
                static_cast<unsigned long long>(info.ok() ? info->region_size : 0));
  }

  // Whatever goes wrong from here, the attachment does not outlive us
  // unless asked to.
  auto finish = [&](int status) {
    PrintCounters(netmap.get(), o.name);
    if (o.keep) {
      std::printf("kept %s\n", o.name.c_str());
    } else if (absl::Status s = Detach(netmap.get(), o.name); s.ok()) {
      std::printf("detached %s\n", o.name.c_str());
    } else {
      std::fprintf(stderr, "ptnm-ivshmem-server: %s\n", std::string(s.message()).c_str());
      status = 1;
    }
    std::fflush(stdout);
    return status;
  };

  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Create({.dir = o.dir, .group = gid, .log = LogToStderr});
  if (!server.ok()) return finish(Fail(server.status()));
  for (size_t i = 0; i < peers.size(); ++i) {
    const std::string socket_name =
        peers.size() == 1 ? o.name : absl::StrCat(o.name, "-", peers[i].peer_id);
    const uint32_t vectors = static_cast<uint32_t>(peers[i].kick_fds.size());
    const uint16_t peer_id = peers[i].peer_id;
    if (absl::Status s = (*server)->Serve(socket_name, std::move(peers[i])); !s.ok()) {
      return finish(Fail(s));
    }
    const std::string path = (*server)->SocketPath(socket_name);
    std::printf("peer %u %s %s vectors=%u\n", peer_id, ports[i].c_str(), path.c_str(), vectors);
    if (o.print_xml) std::printf("%s\n", LibvirtShmemXml(socket_name, path, vectors).c_str());
  }
  std::printf("ready\n");
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop, &signal_number);
  server->reset();  // sockets removed; connected VMs keep their descriptors
  return finish(0);
}

}  // namespace
}  // namespace ptnetmap::ivshmem

int main(int argc, char** argv) {
  ptnetmap::ivshmem::Options options;
  if (int status = ptnetmap::ivshmem::Parse(argc, argv, options); status >= 0) return status;
  return ptnetmap::ivshmem::Run(options);
}
