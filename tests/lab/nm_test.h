// SPDX-License-Identifier: GPL-2.0
// Raw /dev/netmap access for the lab suites: requests built by hand with
// <net/netmap.h>, so the tests check the kernel ABI and nothing else.
#pragma once

#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <net/netmap.h>
#include <net/netmap_user.h>

namespace nmtest {

// A NIOCCTRL request: header plus body, options chained by the caller.
template <typename Body>
struct Request {
  nmreq_header hdr{};
  Body body{};

  Request(uint16_t type, std::string_view name) {
    hdr.nr_version = NETMAP_API;
    hdr.nr_reqtype = type;
    name.copy(hdr.nr_name, sizeof(hdr.nr_name) - 1);
    hdr.nr_body = reinterpret_cast<uintptr_t>(&body);
  }
  void AddOption(nmreq_option *opt) {
    opt->nro_next = hdr.nr_options;
    hdr.nr_options = reinterpret_cast<uintptr_t>(opt);
  }
  // 0 or the errno of the ioctl.
  int Send(int fd) { return ioctl(fd, NIOCCTRL, &hdr) == 0 ? 0 : errno; }
};

using RegisterRequest = Request<nmreq_register>;

inline int OpenNetmap() { return open("/dev/netmap", O_RDWR | O_CLOEXEC); }

// One registered file descriptor with its mapping.
class Port {
 public:
  Port() = default;
  Port(const Port &) = delete;
  Port &operator=(const Port &) = delete;
  ~Port() { Close(); }

  // Registers `name`; returns 0 or the errno. `req` may be adjusted first
  // through the callback.
  template <typename Adjust>
  int Open(std::string_view name, Adjust adjust) {
    Close();
    fd_ = OpenNetmap();
    if (fd_ < 0) return errno;
    RegisterRequest req(NETMAP_REQ_REGISTER, name);
    req.body.nr_mode = NR_REG_ALL_NIC;
    adjust(req);
    int err = req.Send(fd_);
    if (err) return err;
    reg_ = req.body;
    mem_ = mmap(nullptr, reg_.nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED,
                fd_, 0);
    if (mem_ == MAP_FAILED) {
      mem_ = nullptr;
      return errno;
    }
    nifp_ = NETMAP_IF(mem_, reg_.nr_offset);
    return 0;
  }
  int Open(std::string_view name) {
    return Open(name, [](RegisterRequest &) {});
  }
  void Close() {
    if (mem_) munmap(mem_, reg_.nr_memsize);
    mem_ = nullptr;
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  int fd() const { return fd_; }
  const nmreq_register &reg() const { return reg_; }
  netmap_if *nifp() const { return nifp_; }
  void *mem() const { return mem_; }
  netmap_ring *tx(unsigned i = 0) const { return NETMAP_TXRING(nifp_, i); }
  netmap_ring *rx(unsigned i = 0) const { return NETMAP_RXRING(nifp_, i); }
  int TxSync() { return ioctl(fd_, NIOCTXSYNC) == 0 ? 0 : errno; }
  int RxSync() { return ioctl(fd_, NIOCRXSYNC) == 0 ? 0 : errno; }
  // poll() for `events`; returns revents (0 on timeout, -1 on error).
  int Poll(short events, int timeout_ms) {
    pollfd p{fd_, events, 0};
    int n = poll(&p, 1, timeout_ms);
    return n < 0 ? -1 : (n == 0 ? 0 : p.revents);
  }

 private:
  int fd_ = -1;
  void *mem_ = nullptr;
  netmap_if *nifp_ = nullptr;
  nmreq_register reg_{};
};

// A pipe name unique within one test process.
inline std::string UniqueName(std::string_view prefix) {
  static int counter;
  return std::string(prefix) + std::to_string(getpid()) + "_" +
         std::to_string(counter++);
}

}  // namespace nmtest
