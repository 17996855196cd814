// SPDX-License-Identifier: BSD-2-Clause
// A netmap port for the tools: a libnetmap descriptor that closes itself,
// plus the waiting and syncing the tools' loops need.
#ifndef PTNETMAP_TOOLS_COMMON_PORT_H_
#define PTNETMAP_TOOLS_COMMON_PORT_H_

#include <libnetmap.h>
#include <net/if.h>
#include <stdint.h>

#include <memory>
#include <string>

#include "ring_io.h"

namespace ptools {

struct PortCloser {
  void operator()(nmport_d* d) const { nmport_close(d); }
};
using Port = std::unique_ptr<nmport_d, PortCloser>;

// Opens `spec`; on failure libnetmap has printed why, and the result is null.
Port OpenPort(const std::string& spec);

inline netmap_ring* TxRing(const nmport_d* d, uint32_t i) { return NETMAP_TXRING(d->nifp, i); }
inline netmap_ring* RxRing(const nmport_d* d, uint32_t i) { return NETMAP_RXRING(d->nifp, i); }

// Calls fn(netmap_ring*) for each bound TX (RX) ring.
template <typename Fn>
void ForEachTxRing(const nmport_d* d, Fn&& fn) {
  for (uint32_t i = d->first_tx_ring; i <= d->last_tx_ring; ++i) fn(TxRing(d, i));
}
template <typename Fn>
void ForEachRxRing(const nmport_d* d, Fn&& fn) {
  for (uint32_t i = d->first_rx_ring; i <= d->last_rx_ring; ++i) fn(RxRing(d, i));
}

// Received packets waiting in the bound RX rings (as of the last sync).
uint32_t RxReady(const nmport_d* d);
// Free slots in the bound TX rings (as of the last sync).
uint32_t TxSpace(const nmport_d* d);

// How the tools wait for the kernel: a blocking poll() (the default), or
// NIOCTXSYNC/NIOCRXSYNC in a loop (busy waiting).
enum class WaitMode { kPoll, kBusy };

// Syncs and waits until `d` can receive (Want::kRx) or send (Want::kTx), or
// timeout_ms passes (poll mode; busy mode syncs once and returns). Returns
// false on a poll error other than EINTR (reported on stderr).
enum class Want { kRx, kTx };
bool WaitPort(nmport_d* d, Want want, WaitMode mode, int timeout_ms);

// Hands filled TX slots to the kernel now.
void TxSync(nmport_d* d);

// Moves up to `max` packets from the RX rings of src to the TX rings of dst
// (possibly the same port), swapping buffers when zerocopy is set. Returns the
// RX slots consumed. The caller syncs dst's TX rings.
uint32_t ForwardPort(nmport_d* src, nmport_d* dst, uint32_t max, bool zerocopy,
                     ForwardCounts* counts);

// After the last packet: sync until the kernel consumed every TX slot or
// timeout_ms passes. Returns the slots still pending.
uint32_t DrainTx(nmport_d* d, int timeout_ms);

}  // namespace ptools

#endif  // PTNETMAP_TOOLS_COMMON_PORT_H_
