// FakeNetmap: NIOCCTRL requests without the module, for unit tests.
//
// Linking fake_netmap.cc into a test binary replaces ioctl(2) for the whole
// binary: while a FakeNetmap object lives, NIOCCTRL ioctls (from the code
// under test, linked into the same binary) go to its handler instead of the
// kernel, which returns 0 or an errno; every other ioctl goes through.
#ifndef PTNETMAP_QEMU_FAKE_NETMAP_H_
#define PTNETMAP_QEMU_FAKE_NETMAP_H_

// <net/netmap.h> wants these first, as every netmap application does.
#include <stdint.h>
#include <net/if.h>
#include <net/netmap.h>

#include <functional>
#include <string>

namespace ptnetmap::test_support {

class FakeNetmap {
 public:
  explicit FakeNetmap(std::function<int(nmreq_header&)> handler);
  ~FakeNetmap();
  FakeNetmap(const FakeNetmap&) = delete;
  FakeNetmap& operator=(const FakeNetmap&) = delete;
};

// The request's nr_name as a string.
std::string NameOf(const nmreq_header& h);

}  // namespace ptnetmap::test_support

#endif  // PTNETMAP_QEMU_FAKE_NETMAP_H_
