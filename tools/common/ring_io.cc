// SPDX-License-Identifier: BSD-2-Clause
#include "ring_io.h"

#include <cstring>

namespace ptools {

uint32_t ForwardRing(netmap_ring* rx, netmap_ring* tx, uint32_t max, bool zerocopy,
                     ForwardCounts* counts) {
  uint32_t n = std::min({nm_ring_space(rx), nm_ring_space(tx), max});
  uint32_t ri = rx->cur;
  uint32_t ti = tx->cur;
  for (uint32_t k = 0; k < n; ++k) {
    netmap_slot* rs = &rx->slot[ri];
    netmap_slot* ts = &tx->slot[ti];
    ri = nm_ring_next(rx, ri);
    if (zerocopy) {
      std::swap(rs->buf_idx, ts->buf_idx);
      rs->flags |= NS_BUF_CHANGED;
      ts->flags = NS_BUF_CHANGED | (rs->flags & NS_MOREFRAG);
    } else if (rs->len <= tx->nr_buf_size) {
      std::memcpy(NETMAP_BUF(tx, ts->buf_idx), NETMAP_BUF(rx, rs->buf_idx), rs->len);
      ts->flags = rs->flags & NS_MOREFRAG;
    } else {
      ++counts->dropped;
      continue;  // the TX slot stays free for the next packet
    }
    ts->len = rs->len;
    counts->packets++;
    counts->bytes += rs->len;
    ti = nm_ring_next(tx, ti);
  }
  rx->head = rx->cur = ri;
  tx->head = tx->cur = ti;
  return n;
}

}  // namespace ptools
