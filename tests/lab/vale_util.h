// SPDX-License-Identifier: GPL-2.0
// Helpers of the VALE and NIC lab suites: Ethernet frames in and out of
// rings, the VALE control requests and the port counters, all as raw
// NIOCCTRL requests built with <net/netmap.h> and <net/ptnetmap_ctl.h>.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <net/ptnetmap_ctl.h>

#include "nm_test.h"

namespace valetest {

using Mac = std::array<uint8_t, 6>;

inline Mac MacOf(uint8_t last) { return {0x02, 0, 0, 0, 0, last}; }
inline const Mac kBroadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

// An experimental EtherType: nothing in the kernel will react to it.
constexpr uint16_t kTestEtherType = 0x88b5;

// A frame dst, src, type, then `tag` (4 bytes) and padding up to `len`.
inline std::vector<uint8_t> Frame(const Mac &dst, const Mac &src,
                                  uint32_t tag, size_t len = 60) {
  std::vector<uint8_t> f(len, 0);
  memcpy(&f[0], dst.data(), 6);
  memcpy(&f[6], src.data(), 6);
  f[12] = kTestEtherType >> 8;
  f[13] = kTestEtherType & 0xff;
  memcpy(&f[14], &tag, sizeof(tag));
  return f;
}

inline uint32_t TagOf(const std::vector<uint8_t> &f, size_t hdr_len = 0) {
  uint32_t tag = 0;
  if (f.size() >= hdr_len + 18) memcpy(&tag, &f[hdr_len + 14], sizeof(tag));
  return tag;
}

// Puts frames into TX ring `r` (as many as fit) and syncs; returns how many.
inline size_t Send(nmtest::Port &p, const std::vector<std::vector<uint8_t>> &frames,
                   unsigned r = 0) {
  netmap_ring *ring = p.tx(r);
  size_t n = 0;
  for (const auto &f : frames) {
    if (nm_ring_space(ring) == 0) break;
    netmap_slot *slot = &ring->slot[ring->cur];
    memcpy(NETMAP_BUF(ring, slot->buf_idx), f.data(), f.size());
    slot->len = f.size();
    slot->flags = 0;
    ring->head = ring->cur = nm_ring_next(ring, ring->cur);
    n++;
  }
  p.TxSync();
  return n;
}

// Syncs RX ring `r` and takes everything in it.
inline std::vector<std::vector<uint8_t>> Receive(nmtest::Port &p, unsigned r = 0) {
  std::vector<std::vector<uint8_t>> out;
  p.RxSync();
  netmap_ring *ring = p.rx(r);
  while (!nm_ring_empty(ring)) {
    netmap_slot *slot = &ring->slot[ring->cur];
    const uint8_t *buf =
        reinterpret_cast<const uint8_t *>(NETMAP_BUF(ring, slot->buf_idx));
    out.emplace_back(buf, buf + slot->len);
    ring->head = ring->cur = nm_ring_next(ring, ring->cur);
  }
  p.RxSync();
  return out;
}

// A control request on a fresh /dev/netmap descriptor; 0 or the errno.
template <typename Body>
int Ctrl(uint16_t type, std::string_view name, Body *body) {
  int fd = nmtest::OpenNetmap();
  if (fd < 0) return errno;
  nmtest::Request<Body> req(type, name);
  if (body) req.body = *body;
  int err = req.Send(fd);
  if (body) *body = req.body;
  close(fd);
  return err;
}

inline int CtrlNoBody(uint16_t type, std::string_view name) {
  int fd = nmtest::OpenNetmap();
  if (fd < 0) return errno;
  nmtest::Request<uint64_t> req(type, name);
  req.hdr.nr_body = 0;
  int err = req.Send(fd);
  close(fd);
  return err;
}

inline int NewIf(std::string_view name, uint32_t slots = 0, uint16_t rings = 0) {
  nmreq_vale_newif b{};
  b.nr_tx_slots = b.nr_rx_slots = slots;
  b.nr_tx_rings = b.nr_rx_rings = rings;
  return Ctrl(NETMAP_REQ_VALE_NEWIF, name, &b);
}

inline int DelIf(std::string_view name) {
  return CtrlNoBody(NETMAP_REQ_VALE_DELIF, name);
}

inline int Attach(std::string_view name, uint32_t mode = NR_REG_ALL_NIC,
                  uint32_t *index = nullptr) {
  nmreq_vale_attach b{};
  b.reg.nr_mode = mode;
  int err = Ctrl(NETMAP_REQ_VALE_ATTACH, name, &b);
  if (index) *index = b.port_index;
  return err;
}

inline int Detach(std::string_view name) {
  nmreq_vale_detach b{};
  return Ctrl(NETMAP_REQ_VALE_DETACH, name, &b);
}

inline int Stats(std::string_view name, ptnetmap_port_stats *st) {
  *st = {};
  return Ctrl(PTNETMAP_REQ_PORT_STATS_GET, name, st);
}

// Every port of every switch, as VALE_LIST enumerates them.
inline std::vector<std::string> ListAll() {
  std::vector<std::string> names;
  int fd = nmtest::OpenNetmap();
  nmreq_vale_list cursor{};
  for (;;) {
    nmtest::Request<nmreq_vale_list> req(NETMAP_REQ_VALE_LIST, "");
    req.body = cursor;
    if (req.Send(fd)) break;
    names.emplace_back(req.hdr.nr_name);
    cursor = req.body;
    cursor.nr_port_idx++;
  }
  close(fd);
  return names;
}

inline bool Listed(std::string_view name) {
  for (const auto &n : ListAll())
    if (n == name) return true;
  return false;
}

}  // namespace valetest
