// SPDX-License-Identifier: BSD-2-Clause
// Moving packets in and out of one netmap ring, following the ring contract:
// the application owns [head, tail); it advances head (and cur with it) past
// the slots it filled (TX) or consumed (RX). Syncing is the caller's job.
// Nothing here calls the kernel, so it is tested on rings built in memory.
#ifndef PTNETMAP_TOOLS_COMMON_RING_IO_H_
#define PTNETMAP_TOOLS_COMMON_RING_IO_H_

#include <net/if.h>
#include <net/netmap_user.h>
#include <stdint.h>

#include <algorithm>
#include <cstdint>

namespace ptools {

// Fills up to `max` free slots; write(uint8_t* buf) returns the packet length.
template <typename WriteFn>
uint32_t FillTxRing(netmap_ring* ring, uint32_t max, WriteFn&& write) {
  uint32_t n = std::min(nm_ring_space(ring), max);
  uint32_t i = ring->cur;
  for (uint32_t k = 0; k < n; ++k) {
    netmap_slot* slot = &ring->slot[i];
    slot->len =
        static_cast<uint16_t>(write(reinterpret_cast<uint8_t*>(NETMAP_BUF(ring, slot->buf_idx))));
    slot->flags = 0;
    i = nm_ring_next(ring, i);
  }
  ring->head = ring->cur = i;
  return n;
}

// Consumes up to `max` received slots; read(const uint8_t* frame, size_t len).
template <typename ReadFn>
uint32_t DrainRxRing(netmap_ring* ring, uint32_t max, ReadFn&& read) {
  uint32_t n = std::min(nm_ring_space(ring), max);
  uint32_t i = ring->cur;
  for (uint32_t k = 0; k < n; ++k) {
    const netmap_slot* slot = &ring->slot[i];
    read(reinterpret_cast<const uint8_t*>(NETMAP_BUF(ring, slot->buf_idx)), slot->len);
    i = nm_ring_next(ring, i);
  }
  ring->head = ring->cur = i;
  return n;
}

struct ForwardCounts {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t dropped = 0;  // longer than a destination buffer (copy mode only)
};

// Moves up to `max` packets from an RX ring to a TX ring. Zero-copy swaps the
// buffers (both rings must be in one memory region) and marks both slots
// NS_BUF_CHANGED; otherwise the bytes are copied. Returns the slots consumed
// from rx.
uint32_t ForwardRing(netmap_ring* rx, netmap_ring* tx, uint32_t max, bool zerocopy,
                     ForwardCounts* counts);

}  // namespace ptools

#endif  // PTNETMAP_TOOLS_COMMON_RING_IO_H_
