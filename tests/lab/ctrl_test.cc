// SPDX-License-Identifier: GPL-2.0
// NIOCCTRL handshake on /dev/netmap, run inside the lab VM with ptnetmap.ko
// loaded: the checks every netmap application meets first.
#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>

#include <gtest/gtest.h>
#include <net/netmap.h>

namespace {

class CtrlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fd_ = open("/dev/netmap", O_RDWR);
    ASSERT_GE(fd_, 0) << "/dev/netmap: " << strerror(errno);
  }
  void TearDown() override {
    if (fd_ >= 0) close(fd_);
  }

  // Sends a PORT_INFO_GET for `name` with the given header version and
  // returns 0 or the errno of the ioctl.
  int PortInfo(uint16_t version, std::string_view name, uint32_t reserved = 0) {
    nmreq_header hdr{};
    nmreq_port_info_get body{};
    hdr.nr_version = version;
    hdr.nr_reqtype = NETMAP_REQ_PORT_INFO_GET;
    hdr.nr_reserved = reserved;
    name.copy(hdr.nr_name, sizeof(hdr.nr_name));
    hdr.nr_body = reinterpret_cast<uintptr_t>(&body);
    return ioctl(fd_, NIOCCTRL, &hdr) == 0 ? 0 : errno;
  }

  int fd_ = -1;
};

TEST_F(CtrlTest, SupportedVersionsReachTheRequest) {
  // The request is understood, and fails only because the port is unknown.
  EXPECT_EQ(PortInfo(NETMAP_API, "nosuchport0"), ENXIO);
  EXPECT_EQ(PortInfo(NETMAP_MAX_API, "nosuchport0"), ENXIO);
}

TEST_F(CtrlTest, WrongVersionIsRefused) {
  EXPECT_EQ(PortInfo(NETMAP_MIN_API - 1, "nosuchport0"), EINVAL);
  EXPECT_EQ(PortInfo(NETMAP_MAX_API + 1, "nosuchport0"), EINVAL);
  EXPECT_EQ(PortInfo(0, "nosuchport0"), EINVAL);
}

TEST_F(CtrlTest, ReservedFieldMustBeZero) {
  EXPECT_EQ(PortInfo(NETMAP_API, "nosuchport0", 1), EINVAL);
}

TEST_F(CtrlTest, UnterminatedNameIsRefused) {
  EXPECT_EQ(PortInfo(NETMAP_API, std::string(NETMAP_REQ_IFNAMSIZ, 'x')), EINVAL);
}

TEST_F(CtrlTest, UnknownRequestTypeIsRefused) {
  nmreq_header hdr{};
  hdr.nr_version = NETMAP_API;
  hdr.nr_reqtype = 0;
  EXPECT_EQ(ioctl(fd_, NIOCCTRL, &hdr), -1);
  EXPECT_EQ(errno, EINVAL);
}

TEST_F(CtrlTest, RequestTypesOutOfRangeAreRefused) {
  for (uint16_t type : {uint16_t(16), uint16_t(100), uint16_t(0xffff)}) {
    nmreq_header hdr{};
    uint64_t body[8] = {};
    hdr.nr_version = NETMAP_API;
    hdr.nr_reqtype = type;
    hdr.nr_body = reinterpret_cast<uintptr_t>(body);
    EXPECT_EQ(ioctl(fd_, NIOCCTRL, &hdr), -1);
    EXPECT_EQ(errno, EINVAL) << type;
  }
}

// A body is required exactly when the request type has one.
TEST_F(CtrlTest, BodyPresenceFollowsTheType) {
  uint64_t body[8] = {};
  struct Case {
    uint16_t type;
    bool with_body;
    int err;
  } cases[] = {
      {NETMAP_REQ_REGISTER, false, EINVAL},
      {NETMAP_REQ_PORT_INFO_GET, false, EINVAL},
      {NETMAP_REQ_POOLS_INFO_GET, false, EINVAL},
      {NETMAP_REQ_VALE_LIST, false, EINVAL},
      {NETMAP_REQ_SYNC_KLOOP_START, false, EINVAL},
      {NETMAP_REQ_VALE_DELIF, true, EINVAL},
      {NETMAP_REQ_SYNC_KLOOP_STOP, true, EINVAL},
      {NETMAP_REQ_CSB_ENABLE, true, EINVAL},
  };
  for (const Case &c : cases) {
    nmreq_header hdr{};
    hdr.nr_version = NETMAP_API;
    hdr.nr_reqtype = c.type;
    strcpy(hdr.nr_name, "x");
    hdr.nr_body = c.with_body ? reinterpret_cast<uintptr_t>(body) : 0;
    EXPECT_EQ(ioctl(fd_, NIOCCTRL, &hdr), -1);
    EXPECT_EQ(errno, c.err) << "type " << c.type << " body " << c.with_body;
  }
}

TEST_F(CtrlTest, BadPointersFault) {
  EXPECT_EQ(ioctl(fd_, NIOCCTRL, reinterpret_cast<void *>(16)), -1);
  EXPECT_EQ(errno, EFAULT);
  nmreq_header hdr{};
  hdr.nr_version = NETMAP_API;
  hdr.nr_reqtype = NETMAP_REQ_REGISTER;
  strcpy(hdr.nr_name, "x{1");
  hdr.nr_body = 16;
  EXPECT_EQ(ioctl(fd_, NIOCCTRL, &hdr), -1);
  EXPECT_EQ(errno, EFAULT);
}

TEST_F(CtrlTest, SyncAndPollNeedARegistration) {
  EXPECT_EQ(ioctl(fd_, NIOCTXSYNC), -1);
  EXPECT_EQ(errno, ENXIO);
  EXPECT_EQ(ioctl(fd_, NIOCRXSYNC), -1);
  EXPECT_EQ(errno, ENXIO);
}

// Options: a chain of headers, each with its status written back.
class OptionTest : public CtrlTest {
 protected:
  // A REGISTER of a fresh pipe (or POOLS_INFO_GET of the global region)
  // carrying the chain that starts at `first`; returns 0 or errno.
  int Send(nmreq_option *first, uint16_t type = NETMAP_REQ_REGISTER) {
    nmreq_header hdr{};
    hdr.nr_version = NETMAP_API;
    hdr.nr_reqtype = type;
    if (type == NETMAP_REQ_REGISTER)
      snprintf(hdr.nr_name, sizeof(hdr.nr_name), "opt%d{%d", getpid(), n_++);
    hdr.nr_body = type == NETMAP_REQ_REGISTER ? reinterpret_cast<uintptr_t>(&reg_)
                                              : reinterpret_cast<uintptr_t>(&pools_);
    hdr.nr_options = reinterpret_cast<uintptr_t>(first);
    int fd = open("/dev/netmap", O_RDWR);
    int err = ioctl(fd, NIOCCTRL, &hdr) == 0 ? 0 : errno;
    close(fd);
    return err;
  }
  static nmreq_option Opt(uint32_t type, uint64_t size = sizeof(nmreq_option)) {
    nmreq_option o{};
    o.nro_reqtype = type;
    o.nro_size = size;
    return o;
  }
  nmreq_register reg_{};
  nmreq_pools_info pools_{};
  int n_ = 0;
};

TEST_F(OptionTest, UnknownOptionFailsRegisterOnly) {
  nmreq_option o = Opt(77);
  EXPECT_EQ(Send(&o), EOPNOTSUPP);
  EXPECT_EQ(o.nro_status, static_cast<uint32_t>(EOPNOTSUPP));
  o.nro_status = 0;
  EXPECT_EQ(Send(&o, NETMAP_REQ_POOLS_INFO_GET), 0);
  EXPECT_EQ(o.nro_status, static_cast<uint32_t>(EOPNOTSUPP));
}

TEST_F(OptionTest, OptionsRegisterDoesNotServeAreRefused) {
  nmreq_opt_sync_kloop_mode mode{};
  mode.nro_opt = Opt(NETMAP_REQ_OPT_SYNC_KLOOP_MODE, sizeof(mode));
  EXPECT_EQ(Send(&mode.nro_opt), EOPNOTSUPP);
  EXPECT_EQ(mode.nro_opt.nro_status, static_cast<uint32_t>(EOPNOTSUPP));
  nmreq_opt_offsets off{};
  off.nro_opt = Opt(NETMAP_REQ_OPT_OFFSETS, sizeof(off));
  EXPECT_EQ(Send(&off.nro_opt), EOPNOTSUPP);
  EXPECT_EQ(off.nro_opt.nro_status, static_cast<uint32_t>(EOPNOTSUPP));
}

TEST_F(OptionTest, DuplicatesAreInvalid) {
  nmreq_option a = Opt(77), b = Opt(77);
  a.nro_next = reinterpret_cast<uintptr_t>(&b);
  EXPECT_EQ(Send(&a), EINVAL);
  EXPECT_EQ(b.nro_status, static_cast<uint32_t>(EINVAL));
}

TEST_F(OptionTest, LoopsExceedTheSizeLimit) {
  nmreq_option a = Opt(77);
  a.nro_next = reinterpret_cast<uintptr_t>(&a);
  EXPECT_EQ(Send(&a), EMSGSIZE);
  nmreq_option b = Opt(78), c = Opt(79);
  b.nro_next = reinterpret_cast<uintptr_t>(&c);
  c.nro_next = reinterpret_cast<uintptr_t>(&b);
  EXPECT_EQ(Send(&b), EMSGSIZE);
}

TEST_F(OptionTest, SizesAreChecked) {
  nmreq_option small = Opt(77, 8);
  EXPECT_EQ(Send(&small), EINVAL);
  nmreq_option huge = Opt(77, 1ull << 40);
  EXPECT_EQ(Send(&huge), EMSGSIZE);
  nmreq_option big = Opt(77, NETMAP_REQ_MAXSIZE);  // with the body: too big
  EXPECT_EQ(Send(&big), EMSGSIZE);
  nmreq_opt_csb csb{};
  csb.nro_opt = Opt(NETMAP_REQ_OPT_CSB, sizeof(csb) + 8);
  EXPECT_EQ(Send(&csb.nro_opt), EINVAL);
  EXPECT_EQ(csb.nro_opt.nro_status, static_cast<uint32_t>(EINVAL));
  uint64_t efds[8] = {};
  auto *ev = reinterpret_cast<nmreq_option *>(efds);
  *ev = Opt(NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS, sizeof(nmreq_option) + 4);
  EXPECT_EQ(Send(ev), EINVAL);
}

TEST_F(OptionTest, BadOptionPointersFault) {
  EXPECT_EQ(Send(reinterpret_cast<nmreq_option *>(8)), EFAULT);
  nmreq_option a = Opt(77);
  a.nro_next = 8;
  EXPECT_EQ(Send(&a), EFAULT);
}

TEST_F(CtrlTest, UnknownIoctlIsNotATty) {
  EXPECT_EQ(ioctl(fd_, _IO('i', 200)), -1);
  EXPECT_EQ(errno, ENOTTY);
}

}  // namespace
