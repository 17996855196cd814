#include "qemu/fake_netmap.h"

#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <utility>

namespace {
std::function<int(nmreq_header&)> fake_netmap;
}  // namespace

extern "C" int ioctl(int fd, unsigned long request, ...) __THROW {
  va_list args;
  va_start(args, request);
  void* arg = va_arg(args, void*);
  va_end(args);
  if (fake_netmap && request == NIOCCTRL) {
    const int err = fake_netmap(*static_cast<nmreq_header*>(arg));
    if (err == 0) return 0;
    errno = err;
    return -1;
  }
  return static_cast<int>(::syscall(SYS_ioctl, fd, request, arg));
}

namespace ptnetmap::test_support {

FakeNetmap::FakeNetmap(std::function<int(nmreq_header&)> handler) {
  fake_netmap = std::move(handler);
}

FakeNetmap::~FakeNetmap() { fake_netmap = nullptr; }

std::string NameOf(const nmreq_header& h) {
  return std::string(h.nr_name, strnlen(h.nr_name, sizeof(h.nr_name)));
}

}  // namespace ptnetmap::test_support
