// SPDX-License-Identifier: BSD-2-Clause
// ptpkt: the kernel's own packet path as a baseline for the benchmarks.
// Sends, receives, pings and pongs raw Ethernet frames on an interface
// through AF_PACKET sockets (sendmmsg/recvmmsg, `batch` frames per system
// call), with the same summary fields as ptgen's --json, so that
// scripts/bench.sh can put a veth pair next to netmap pipes and VALE.
//
//   ptpkt tx   -i IFACE [-b BATCH] [-d SECONDS] [-n COUNT] [-l LEN]
//   ptpkt rx   -i IFACE [-b BATCH] [-d SECONDS] [--idle SECONDS]
//   ptpkt ping -i IFACE [-n COUNT] [--busy]
//   ptpkt pong -i IFACE [--idle SECONDS] [--busy]   (idle: after the first ping)
//
// Frames: broadcast destination, ethertype 0x88b5 (local experimental) for
// data and pings, 0x88b6 for echoes, a 64-bit sequence number after the
// header. Prints one JSON line on stdout; "ready" on stderr once the socket
// is bound. Exit status: 0, 1 nothing moved / lost echoes, 2 usage, 3 socket.
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/clock.h"

namespace {

constexpr uint16_t kTypeData = 0x88b5;
constexpr uint16_t kTypeEcho = 0x88b6;
constexpr size_t kMaxLen = 1514;

struct Options {
  std::string mode, iface;
  unsigned batch = 64;
  double duration = 0, idle = 2;
  uint64_t count = 0;
  unsigned len = 60;
  bool busy = false;
};

int Usage() {
  fprintf(stderr,
          "usage: ptpkt tx|rx|ping|pong -i IFACE [-b BATCH] [-d SECONDS] "
          "[-n COUNT] [-l LEN] [--idle SECONDS] [--busy]\n");
  return 2;
}

// A packet socket bound to `iface` for frames of ethertype `type`.
int OpenSocket(const std::string &iface, uint16_t type, int *ifindex) {
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(type));
  if (fd < 0) return perror("socket(AF_PACKET)"), -1;
  *ifindex = if_nametoindex(iface.c_str());
  if (!*ifindex) {
    fprintf(stderr, "ptpkt: no interface %s\n", iface.c_str());
    close(fd);
    return -1;
  }
  sockaddr_ll sa{};
  sa.sll_family = AF_PACKET;
  sa.sll_protocol = htons(type);
  sa.sll_ifindex = *ifindex;
  if (bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof(sa)) < 0) {
    perror("bind");
    close(fd);
    return -1;
  }
  return fd;
}

void Frame(char *b, uint16_t type, uint64_t seq) {
  memset(b, 0xff, 6);
  const uint8_t src[6] = {0x02, 0x70, 0x74, 0x70, 0x6b, 0x74};
  memcpy(b + 6, src, 6);
  uint16_t t = htons(type);
  memcpy(b + 12, &t, 2);
  memcpy(b + 14, &seq, 8);
}

uint64_t Seq(const char *b) {
  uint64_t s;
  memcpy(&s, b + 14, 8);
  return s;
}

void SetTimeout(int fd, double seconds) {
  timeval tv{static_cast<time_t>(seconds), static_cast<suseconds_t>((seconds - int64_t(seconds)) * 1e6)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

struct Batch {
  std::vector<std::vector<char>> bufs;
  std::vector<iovec> iov;
  std::vector<mmsghdr> msgs;
  explicit Batch(unsigned n) : bufs(n, std::vector<char>(kMaxLen)), iov(n), msgs(n) {
    for (unsigned i = 0; i < n; i++) {
      iov[i] = {bufs[i].data(), kMaxLen};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
  }
};

void Summary(const Options &o, uint64_t packets, double secs, uint64_t calls,
             const std::string &extra = "") {
  printf("{\"tool\":\"ptpkt\",\"mode\":\"%s\",\"port\":\"%s\",\"packets\":%llu,"
         "\"seconds\":%.6f,\"mpps\":%.6f,\"batch\":%u,\"busy\":%s,"
         "\"packets_per_syscall\":%.3f%s}\n",
         o.mode.c_str(), o.iface.c_str(), static_cast<unsigned long long>(packets), secs,
         secs > 0 ? packets / secs / 1e6 : 0.0, o.batch, o.busy ? "true" : "false",
         calls ? double(packets) / calls : 0.0, extra.c_str());
}

int Tx(const Options &o, int fd) {
  Batch b(o.batch);
  uint64_t seq = 0, calls = 0, t0 = ptools::NowNs();
  uint64_t end = o.duration > 0 ? t0 + uint64_t(o.duration * 1e9) : UINT64_MAX;
  uint64_t limit = o.count ? o.count : UINT64_MAX;
  while (seq < limit && ptools::NowNs() < end) {
    unsigned n = unsigned(std::min<uint64_t>(o.batch, limit - seq));
    for (unsigned i = 0; i < n; i++) {
      Frame(b.bufs[i].data(), kTypeData, seq + i);
      b.iov[i].iov_len = o.len;
    }
    int sent = sendmmsg(fd, b.msgs.data(), n, 0);
    calls++;
    if (sent < 0) {
      if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) continue;
      return perror("sendmmsg"), 1;
    }
    seq += sent;
  }
  Summary(o, seq, (ptools::NowNs() - t0) / 1e9, calls);
  return seq ? 0 : 1;
}

int Rx(const Options &o, int fd) {
  Batch b(o.batch);
  SetTimeout(fd, o.idle);
  int rcvbuf = 8 << 20;  // room for bursts: drops here would be ours, not the path's
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
  fprintf(stderr, "ptpkt rx %s: ready\n", o.iface.c_str());
  uint64_t packets = 0, calls = 0, first = 0, last = 0;
  uint64_t end = UINT64_MAX;
  for (;;) {
    if (ptools::NowNs() >= end) break;
    int got = recvmmsg(fd, b.msgs.data(), o.batch, 0, nullptr);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN && packets) break;  // idle after traffic: done
      if (errno == EAGAIN) continue;
      return perror("recvmmsg"), 1;
    }
    last = ptools::NowNs();
    if (!packets) {
      first = last;
      if (o.duration > 0) end = first + uint64_t(o.duration * 1e9);
    }
    packets += got;
    calls++;
    if (o.count && packets >= o.count) break;
  }
  Summary(o, packets, (last - first) / 1e9, calls);
  return packets ? 0 : 1;
}

int Ping(const Options &o, int fd, int echo_fd) {
  char buf[kMaxLen];
  std::vector<double> rtt;
  uint64_t count = o.count ? o.count : 1000, lost = 0;
  SetTimeout(echo_fd, 1.0);
  for (uint64_t seq = 0; seq < count; seq++) {
    if (rtt.empty() && lost >= 5) break;  // nobody answers
    Frame(buf, kTypeData, seq);
    uint64_t t0 = ptools::NowNs();
    if (send(fd, buf, o.len, 0) < 0) return perror("send"), 1;
    for (;;) {
      ssize_t n = recv(echo_fd, buf, sizeof(buf), o.busy ? MSG_DONTWAIT : 0);
      if (n < 0 && o.busy && errno == EAGAIN && ptools::NowNs() - t0 < 1'000'000'000) continue;
      if (n < 0) {
        lost++;
        break;
      }
      if (n >= 22 && Seq(buf) == seq) {
        rtt.push_back((ptools::NowNs() - t0) / 1e3);
        break;
      }
    }
  }
  std::sort(rtt.begin(), rtt.end());
  double avg = 0;
  for (double r : rtt) avg += r;
  avg = rtt.empty() ? 0 : avg / rtt.size();
  auto pct = [&](double p) { return rtt.empty() ? 0.0 : rtt[size_t(p * (rtt.size() - 1))]; };
  char extra[256];
  snprintf(extra, sizeof(extra),
           ",\"replies\":%zu,\"lost\":%llu,\"rtt_avg_us\":%.2f,\"rtt_p50_us\":%.2f,"
           "\"rtt_p99_us\":%.2f",
           rtt.size(), static_cast<unsigned long long>(lost), avg, pct(0.5), pct(0.99));
  Summary(o, rtt.size(), 0, rtt.size(), extra);
  return lost ? 1 : 0;
}

int Pong(const Options &o, int fd, int echo_fd) {
  char buf[kMaxLen];
  SetTimeout(fd, o.idle);
  fprintf(stderr, "ptpkt pong %s: ready\n", o.iface.c_str());
  // Like ptgen: the idle time counts from the first ping on.
  uint64_t echoed = 0, idle_since = ptools::NowNs();
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), o.busy ? MSG_DONTWAIT : 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // Nothing yet: wait for the first ping, at most 30 s.
      if (errno == EAGAIN && !echoed && ptools::NowNs() - idle_since < 30'000'000'000ull) continue;
      if (errno == EAGAIN && o.busy && ptools::NowNs() - idle_since < o.idle * 1e9) continue;
      break;  // idle
    }
    uint16_t t = htons(kTypeEcho);
    memcpy(buf + 12, &t, 2);
    if (send(echo_fd, buf, n, 0) < 0) return perror("send"), 1;
    echoed++;
    idle_since = ptools::NowNs();
  }
  Summary(o, echoed, 0, echoed);
  return echoed ? 0 : 1;
}

double Seconds(const char *s) {
  std::string v = s;
  if (v.ends_with("ms")) return std::atof(v.c_str()) / 1e3;
  return std::atof(v.c_str());
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2) return Usage();
  Options o;
  o.mode = argv[1];
  for (int i = 2; i < argc; i++) {
    std::string a = argv[i];
    bool has = i + 1 < argc;
    if ((a == "-i" || a == "--port") && has) o.iface = argv[++i];
    else if ((a == "-b" || a == "--batch") && has) o.batch = std::max(1, std::atoi(argv[++i]));
    else if ((a == "-d" || a == "--duration") && has) o.duration = Seconds(argv[++i]);
    else if ((a == "-n" || a == "--count") && has) o.count = std::strtoull(argv[++i], nullptr, 10);
    else if ((a == "-l" || a == "--len") && has) o.len = std::clamp(std::atoi(argv[++i]), 60, int(kMaxLen));
    else if (a == "--idle" && has) o.idle = Seconds(argv[++i]);
    else if (a == "--busy") o.busy = true;
    else if (a == "--json" || a == "-q") continue;  // always JSON, always quiet
    else return Usage();
  }
  if (o.iface.empty()) return Usage();
  if (o.mode != "tx" && o.mode != "rx" && o.mode != "ping" && o.mode != "pong") return Usage();
  int ifindex = 0;
  int fd = OpenSocket(o.iface, kTypeData, &ifindex);
  if (fd < 0) return 3;
  if (o.mode == "tx") return Tx(o, fd);
  if (o.mode == "rx") return Rx(o, fd);
  int echo_fd = OpenSocket(o.iface, kTypeEcho, &ifindex);
  if (echo_fd < 0) return 3;
  return o.mode == "ping" ? Ping(o, fd, echo_fd) : Pong(o, fd, echo_fd);
}
