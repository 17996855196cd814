// SPDX-License-Identifier: BSD-2-Clause
#include "port.h"

#include <poll.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "clock.h"
#include "signals.h"

namespace ptools {

Port OpenPort(const std::string& spec) { return Port(nmport_open(spec.c_str())); }

uint32_t RxReady(const nmport_d* d) {
  uint32_t n = 0;
  ForEachRxRing(d, [&](netmap_ring* r) { n += nm_ring_space(r); });
  return n;
}

uint32_t TxSpace(const nmport_d* d) {
  uint32_t n = 0;
  ForEachTxRing(d, [&](netmap_ring* r) { n += nm_ring_space(r); });
  return n;
}

bool WaitPort(nmport_d* d, Want want, WaitMode mode, int timeout_ms) {
  if (mode == WaitMode::kBusy) {
    if (ioctl(d->fd, want == Want::kRx ? NIOCRXSYNC : NIOCTXSYNC, nullptr) < 0 && errno != EINTR) {
      std::fprintf(stderr, "%s: %s\n", want == Want::kRx ? "NIOCRXSYNC" : "NIOCTXSYNC",
                   std::strerror(errno));
      return false;
    }
    return true;
  }
  pollfd pfd = {d->fd, static_cast<short>(want == Want::kRx ? POLLIN : POLLOUT), 0};
  int rc = poll(&pfd, 1, timeout_ms);
  if (rc < 0 && errno != EINTR) {
    std::fprintf(stderr, "poll: %s\n", std::strerror(errno));
    return false;
  }
  if (rc > 0 && (pfd.revents & (POLLERR | POLLNVAL))) {
    std::fprintf(stderr, "poll: error condition on %s (revents 0x%x)\n", d->hdr.nr_name,
                 pfd.revents);
    return false;
  }
  return true;
}

uint32_t ForwardPort(nmport_d* src, nmport_d* dst, uint32_t max, bool zerocopy,
                     ForwardCounts* counts) {
  uint32_t moved = 0;
  uint32_t ti = dst->first_tx_ring;
  for (uint32_t ri = src->first_rx_ring; ri <= src->last_rx_ring; ++ri) {
    netmap_ring* rx = RxRing(src, ri);
    while (moved < max && !nm_ring_empty(rx) && ti <= dst->last_tx_ring) {
      netmap_ring* tx = TxRing(dst, ti);
      if (nm_ring_empty(tx)) {
        ++ti;  // full: try the next TX ring
        continue;
      }
      moved += ForwardRing(rx, tx, max - moved, zerocopy, counts);
    }
  }
  return moved;
}

void TxSync(nmport_d* d) { ioctl(d->fd, NIOCTXSYNC, nullptr); }

uint32_t DrainTx(nmport_d* d, int timeout_ms) {
  uint64_t deadline = NowNs() + static_cast<uint64_t>(timeout_ms) * 1'000'000;
  for (;;) {
    TxSync(d);
    uint32_t pending = nmport_pending(d);
    if (pending == 0 || NowNs() >= deadline || StopRequested()) return pending;
    SleepNs(200'000);  // the peer is draining; poll() could return at once
  }
}

}  // namespace ptools
