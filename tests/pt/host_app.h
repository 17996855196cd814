// SPDX-License-Identifier: GPL-2.0
// The other side of a passthrough port in the tests: a plain netmap
// application on the host (/dev/netmap, NIOC*SYNC and poll), sending and
// receiving the same numbered frames as ptemu::Guest.
#pragma once

#include <algorithm>
#include <string>

#include "../lab/nm_test.h"
#include "guest_emu.h"

namespace ptemu {

// Sends frames (flow, first + k) on TX ring 0 of `p`, `batch` per sync.
inline std::string HostSend(nmtest::Port &p, uint64_t first, uint64_t count,
                            unsigned batch, uint32_t len, uint32_t flow,
                            int timeout_ms = 5000) {
  netmap_ring *r = p.tx();
  uint64_t seq = first, end = first + count;
  while (seq < end) {
    uint32_t space = nm_ring_space(r);
    if (!space) {
      if (p.Poll(POLLOUT, timeout_ms) <= 0)
        return "host send: stall at " + std::to_string(seq);
      continue;
    }
    uint64_t n = std::min<uint64_t>({space, batch, end - seq});
    uint32_t h = r->head;
    for (uint64_t i = 0; i < n; i++) {
      netmap_slot *s = &r->slot[h];
      char *b = NETMAP_BUF(r, s->buf_idx);
      WriteFrame(b, flow, seq);
      s->len = len;
      seq++;
      h = nm_ring_next(r, h);
    }
    r->head = r->cur = h;
    if (p.TxSync()) return "host send: txsync failed";
  }
  // Push the last batch out: a sync sends what the receiver has room for.
  for (int waited_us = 0; nm_tx_pending(r); waited_us += 100) {
    if (waited_us > timeout_ms * 1000) return "host send: last batch stuck";
    if (p.TxSync()) return "host send: txsync failed";
    if (nm_tx_pending(r)) usleep(100);
  }
  return "";
}

// Receives `count` frames of `flow` in order on RX ring 0 of `p`.
inline std::string HostReceive(nmtest::Port &p, uint64_t *expect,
                               uint64_t count, unsigned batch, uint32_t flow,
                               int timeout_ms = 5000) {
  netmap_ring *r = p.rx();
  uint64_t end = *expect + count;
  while (*expect < end) {
    uint32_t avail = nm_ring_space(r);
    if (!avail) {
      if (p.Poll(POLLIN, timeout_ms) <= 0)
        return "host receive: stall at " + std::to_string(*expect);
      continue;
    }
    uint32_t n = std::min(avail, batch), h = r->head;
    for (uint32_t i = 0; i < n; i++) {
      netmap_slot *s = &r->slot[h];
      const char *b = NETMAP_BUF(r, s->buf_idx);
      uint32_t f;
      uint64_t q;
      memcpy(&f, b + 14, 4);
      memcpy(&q, b + 18, 8);
      if (f != flow || q != *expect)
        return "host receive: flow " + std::to_string(f) + " seq " +
               std::to_string(q) + ", expected " + std::to_string(*expect);
      (*expect)++;
      h = nm_ring_next(r, h);
    }
    r->head = r->cur = h;
    if (p.RxSync()) return "host receive: rxsync failed";
  }
  return "";
}

}  // namespace ptemu
