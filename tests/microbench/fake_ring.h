// SPDX-License-Identifier: GPL-2.0
// A netmap ring with its buffers in ordinary memory, laid out as the kernel
// lays out a port's ring (slots, then buf_ofs to the buffers), for the
// microbenchmarks that run the real ring code without a kernel.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <net/netmap.h>

namespace microbench {

class FakeRing {
 public:
  FakeRing(uint32_t num_slots, uint32_t buf_size = 2048)
      : ring_bytes_(Round(sizeof(netmap_ring) + num_slots * sizeof(netmap_slot))),
        size_(ring_bytes_ + size_t(num_slots) * buf_size),
        mem_(static_cast<char *>(std::aligned_alloc(4096, Round(size_)))) {
    memset(mem_.get(), 0, size_);
    netmap_ring *r = ring();
    r->buf_ofs = int64_t(ring_bytes_);
    r->num_slots = num_slots;
    r->nr_buf_size = buf_size;
    for (uint32_t i = 0; i < num_slots; i++) r->slot[i].buf_idx = i;
    r->tail = num_slots - 1;  // an empty TX ring: everything but one slot free
  }
  netmap_ring *ring() { return reinterpret_cast<netmap_ring *>(mem_.get()); }
  char *mem() { return mem_.get(); }
  size_t size() const { return size_; }
  char *buf(uint32_t idx) {
    return mem_.get() + ring_bytes_ + size_t(idx) * ring()->nr_buf_size;
  }

 private:
  static size_t Round(size_t n) { return (n + 4095) & ~size_t(4095); }
  struct Free {
    void operator()(char *p) const { std::free(p); }
  };
  size_t ring_bytes_, size_;
  std::unique_ptr<char, Free> mem_;
};

}  // namespace microbench
