// SPDX-License-Identifier: GPL-2.0
// NIOCCTRL handshake on /dev/netmap, run inside the lab VM with ptnetmap.ko
// loaded: the checks every netmap application meets first.
#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
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

TEST_F(CtrlTest, UnknownIoctlIsNotATty) {
  EXPECT_EQ(ioctl(fd_, _IO('i', 200)), -1);
  EXPECT_EQ(errno, ENOTTY);
}

}  // namespace
