#include "agent/ivshmem_server.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <filesystem>

#include "agent/fake_datapath.h"
#include "gtest/gtest.h"

namespace ptnetmap::agent {
namespace {

struct Message {
  int64_t value;
  UniqueFd fd;
};

// Reads one message the way QEMU's ivshmem client does.
Message Receive(int sock) {
  Message m{-999, UniqueFd()};
  iovec iov{.iov_base = &m.value, .iov_len = sizeof(m.value)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  if (::recvmsg(sock, &msg, 0) != sizeof(m.value)) return m;
  if (cmsghdr* c = CMSG_FIRSTHDR(&msg); c && c->cmsg_type == SCM_RIGHTS) {
    int fd;
    std::memcpy(&fd, CMSG_DATA(c), sizeof(fd));
    m.fd.reset(fd);
  }
  return m;
}

UniqueFd Connect(const std::string& path) {
  UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  EXPECT_EQ(::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
      << std::strerror(errno);
  return sock;
}

class IvshmemServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ptnetd_ivshmem_XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    ASSERT_TRUE(datapath_.CreateSwitch("vale0").ok());
    auto handles = datapath_.CreateVmAttachment(VmAttachmentSpec{
        .name = "vm1", .trust = Trust::kUntrusted, .switch_name = "vale0", .pipe_name = "",
        .pipe_end = PipeEnd::kMaster, .rings = 1, .region_bytes = 1 << 20});
    ASSERT_TRUE(handles.ok()) << handles.status();
    handles_ = *std::move(handles);
    auto server = IvshmemServer::Create(dir_ + "/ivshmem", std::nullopt);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string dir_;
  FakeDatapath datapath_;
  VmAttachmentHandles handles_;
  std::unique_ptr<IvshmemServer> server_;
};

TEST_F(IvshmemServerTest, QemuGetsRegionThenHostKicksThenOwnInterrupts) {
  auto copy = DupHandles(handles_);
  ASSERT_TRUE(copy.ok());
  ASSERT_TRUE(server_->Serve("vm1", *std::move(copy)).ok());
  const std::string path = server_->SocketPath("vm1");
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                std::filesystem::perms::group_read | std::filesystem::perms::group_write);
  UniqueFd sock = Connect(path);

  EXPECT_EQ(Receive(sock.get()).value, 0);  // protocol version
  EXPECT_EQ(Receive(sock.get()).value, 1);  // the only guest peer of a private port
  Message shm = Receive(sock.get());
  EXPECT_EQ(shm.value, -1);
  ASSERT_TRUE(shm.fd.valid());
  // The region QEMU maps is the host's: what the host writes, the guest sees.
  auto* host = static_cast<char*>(
      ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, handles_.region.get(), 0));
  auto* guest = static_cast<char*>(
      ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, shm.fd.get(), 0));
  std::strcpy(host, "ptnetmap");
  EXPECT_STREQ(guest, "ptnetmap");
  ::munmap(host, 4096);
  ::munmap(guest, 4096);

  for (int vector = 0; vector < 3; ++vector) {
    Message kick = Receive(sock.get());
    EXPECT_EQ(kick.value, IvshmemServer::kHostPeerId);
    ASSERT_TRUE(kick.fd.valid());
    // A guest doorbell write signals the eventfd the host worker sleeps on.
    uint64_t one = 1, got = 0;
    ASSERT_EQ(::write(kick.fd.get(), &one, sizeof(one)), 8);
    EXPECT_EQ(::read(handles_.kick_fds[vector].get(), &got, sizeof(got)), 8);
  }
  for (int vector = 0; vector < 3; ++vector) {
    Message irq = Receive(sock.get());
    EXPECT_EQ(irq.value, 1);
    ASSERT_TRUE(irq.fd.valid());
    uint64_t one = 1, got = 0;
    ASSERT_EQ(::write(handles_.irq_fds[vector].get(), &one, sizeof(one)), 8);
    EXPECT_EQ(::read(irq.fd.get(), &got, sizeof(got)), 8);
  }
}

TEST_F(IvshmemServerTest, SecondConcurrentClientIsRefusedAndStopRemovesSocket) {
  auto copy = DupHandles(handles_);
  ASSERT_TRUE(copy.ok());
  ASSERT_TRUE(server_->Serve("vm1", *std::move(copy)).ok());
  UniqueFd first = Connect(server_->SocketPath("vm1"));
  EXPECT_EQ(Receive(first.get()).value, 0);
  UniqueFd second = Connect(server_->SocketPath("vm1"));
  char byte;
  EXPECT_EQ(::recv(second.get(), &byte, 1, 0), 0) << "expected the server to hang up";

  server_->Stop("vm1");
  EXPECT_FALSE(std::filesystem::exists(server_->SocketPath("vm1")));
}

TEST_F(IvshmemServerTest, TooLongPathIsAnInvalidArgument) {
  auto copy = DupHandles(handles_);
  ASSERT_TRUE(copy.ok());
  absl::Status s = server_->Serve(std::string(120, 'v'), *std::move(copy));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ptnetmap::agent
