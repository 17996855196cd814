// SPDX-License-Identifier: GPL-2.0
//
// map_revoke: does a netmap application lose its mapping of a device that
// goes away? (tests/guest/netmap_mode.sh, step 6.)
//
//   map_revoke PORT READY_FILE
//
// Opens PORT (netmap:ethX of a ptnetmap guest device), reads every page of
// the mapped region (the host port's netmap_if, rings and buffers in BAR2),
// creates READY_FILE, then sleeps in poll() until the port reports an error
// (the device was unbound or removed). Then it reads the same pages again:
// each must fault with SIGBUS, since the driver revoked the mapping; a page
// that still reads means the application could reach guest-physical memory
// that no longer belongs to the device.
//
// Exit status: 0 every page faulted, 1 a page was still mapped (or poll
// ended without an error), 2 usage or setup error.

#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <libnetmap.h>

namespace {

sigjmp_buf fault_jump;

void OnSigbus(int /*sig*/) { siglongjmp(fault_jump, 1); }

// Whether reading the byte at p faults with SIGBUS.
bool ReadFaults(const volatile unsigned char* p, unsigned* sum) {
  if (sigsetjmp(fault_jump, 1) != 0) return true;
  *sum += *p;
  return false;
}

// Pages of [mem, mem + size) that read without a fault.
size_t ReadablePages(const unsigned char* mem, size_t size, unsigned* sum) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t readable = 0;
  for (size_t off = 0; off < size; off += page) {
    if (!ReadFaults(mem + off, sum)) ++readable;
  }
  return readable;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: map_revoke PORT READY_FILE\n");
    return 2;
  }
  struct sigaction sa {};
  sa.sa_handler = OnSigbus;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGBUS, &sa, nullptr) != 0) {
    std::perror("map_revoke: sigaction");
    return 2;
  }
  nmport_d* d = nmport_open(argv[1]);
  if (d == nullptr) {
    std::fprintf(stderr, "map_revoke: cannot open %s\n", argv[1]);
    return 2;
  }
  const auto* mem = static_cast<const unsigned char*>(d->mem->mem);
  const size_t size = d->mem->size;
  const size_t pages = size / static_cast<size_t>(sysconf(_SC_PAGESIZE));
  unsigned sum = 0;
  const size_t before = ReadablePages(mem, size, &sum);
  if (before != pages) {
    std::fprintf(stderr, "map_revoke: only %zu of %zu pages readable while the device is there\n",
                 before, pages);
    return 2;
  }
  std::FILE* ready = std::fopen(argv[2], "w");
  if (ready == nullptr || std::fclose(ready) != 0) {
    std::perror("map_revoke: ready file");
    return 2;
  }

  pollfd pfd{.fd = d->fd, .events = POLLIN, .revents = 0};
  for (;;) {
    const int n = poll(&pfd, 1, -1);
    if (n < 0) {
      std::perror("map_revoke: poll");
      return 1;
    }
    if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) break;
    // Frames that still arrive are not ours to look at: released unread,
    // so that poll sleeps again.
    for (unsigned i = d->first_rx_ring; i <= d->last_rx_ring; ++i) {
      netmap_ring* ring = NETMAP_RXRING(d->nifp, i);
      ring->head = ring->cur = ring->tail;
    }
  }
  const size_t after = ReadablePages(mem, size, &sum);
  std::printf("map_revoke: %zu pages mapped, %zu readable after the device went away\n", pages,
              after);
  nmport_close(d);
  return after == 0 ? 0 : 1;
}
