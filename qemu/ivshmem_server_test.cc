#include "qemu/ivshmem_server.h"

#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>
#include <filesystem>

#include "gtest/gtest.h"

namespace ptnetmap::ivshmem {
namespace {

namespace fs = std::filesystem;

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

// What the kernel side would hand out: a memfd and 3 vectors of eventfds.
PeerFds MakePeer(uint16_t peer_id) {
  PeerFds peer;
  peer.peer_id = peer_id;
  peer.region_bytes = 1 << 20;
  peer.region.reset(::memfd_create("test", MFD_CLOEXEC));
  EXPECT_EQ(::ftruncate(peer.region.get(), peer.region_bytes), 0);
  for (int v = 0; v < 3; ++v) {
    peer.kick_fds.emplace_back(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    peer.irq_fds.emplace_back(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  }
  return peer;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ptnm_ivshmem_XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    auto server = Server::Create({.dir = dir_ + "/ivshmem", .group = std::nullopt});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }

  std::string dir_;
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, QemuGetsRegionThenHostKicksThenOwnInterrupts) {
  PeerFds host = MakePeer(2);
  auto copy = DupPeerFds(host);
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(copy->peer_id, 2);
  ASSERT_TRUE(server_->Serve("vm1", *std::move(copy)).ok());
  const std::string path = server_->SocketPath("vm1");
  EXPECT_EQ(path, dir_ + "/ivshmem/vm1.sock");
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                fs::perms::group_write);
  UniqueFd sock = Connect(path);

  EXPECT_EQ(Receive(sock.get()).value, 0);  // protocol version
  EXPECT_EQ(Receive(sock.get()).value, 2);  // its peer id: its port page
  Message shm = Receive(sock.get());
  EXPECT_EQ(shm.value, -1);
  ASSERT_TRUE(shm.fd.valid());
  // The region QEMU maps is the host's: what the host writes, the guest sees.
  auto* h = static_cast<char*>(
      ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, host.region.get(), 0));
  auto* g = static_cast<char*>(
      ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, shm.fd.get(), 0));
  std::strcpy(h, "ptnetmap");
  EXPECT_STREQ(g, "ptnetmap");
  ::munmap(h, 4096);
  ::munmap(g, 4096);

  for (int vector = 0; vector < 3; ++vector) {
    Message kick = Receive(sock.get());
    EXPECT_EQ(kick.value, kHostPeerId);
    ASSERT_TRUE(kick.fd.valid());
    // A guest doorbell write signals the eventfd the host worker sleeps on.
    uint64_t one = 1, got = 0;
    ASSERT_EQ(::write(kick.fd.get(), &one, sizeof(one)), 8);
    EXPECT_EQ(::read(host.kick_fds[vector].get(), &got, sizeof(got)), 8);
  }
  for (int vector = 0; vector < 3; ++vector) {
    Message irq = Receive(sock.get());
    EXPECT_EQ(irq.value, 2);
    ASSERT_TRUE(irq.fd.valid());
    uint64_t one = 1, got = 0;
    ASSERT_EQ(::write(host.irq_fds[vector].get(), &one, sizeof(one)), 8);
    EXPECT_EQ(::read(irq.fd.get(), &got, sizeof(got)), 8);
  }
}

TEST_F(ServerTest, SecondConcurrentClientIsRefusedAndStopRemovesSocket) {
  ASSERT_TRUE(server_->Serve("vm1", MakePeer(1)).ok());
  UniqueFd first = Connect(server_->SocketPath("vm1"));
  EXPECT_EQ(Receive(first.get()).value, 0);
  UniqueFd second = Connect(server_->SocketPath("vm1"));
  char byte;
  EXPECT_EQ(::recv(second.get(), &byte, 1, 0), 0) << "expected the server to hang up";

  server_->Stop("vm1");
  EXPECT_FALSE(fs::exists(server_->SocketPath("vm1")));
}

TEST_F(ServerTest, AReconnectAfterTheFirstClientLeftIsServedAgain) {
  ASSERT_TRUE(server_->Serve("vm1", MakePeer(1)).ok());
  { UniqueFd first = Connect(server_->SocketPath("vm1")); EXPECT_EQ(Receive(first.get()).value, 0); }
  // The VM restarted: the server saw the hang-up and greets the new client.
  for (int attempt = 0; attempt < 50; ++attempt) {
    UniqueFd again = Connect(server_->SocketPath("vm1"));
    Message version = Receive(again.get());
    if (version.value == 0) {
      EXPECT_EQ(Receive(again.get()).value, 1);
      return;
    }
    ::usleep(20000);  // the hang-up had not been seen yet
  }
  ADD_FAILURE() << "the second client was never served";
}

TEST_F(ServerTest, TooLongPathIsAnInvalidArgument) {
  absl::Status s = server_->Serve(std::string(120, 'v'), MakePeer(1));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ServerTest, ANewDirectoryIsReachableByTheGroupOnly) {
  EXPECT_EQ(fs::status(dir_ + "/ivshmem").permissions() & fs::perms::all,
            fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
  // An existing directory is the deployment's: its mode stays.
  ::chmod(dir_.c_str(), 0711);
  auto other = Server::Create({.dir = dir_, .group = std::nullopt});
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(fs::status(dir_).permissions() & fs::perms::all,
            fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
}

TEST_F(ServerTest, SocketsGetTheGivenGroup) {
  // The process's own group is one we may always chown to.
  auto server = Server::Create({.dir = dir_ + "/grp", .group = ::getegid()});
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->Serve("vm1", MakePeer(1)).ok());
  struct stat st {};
  ASSERT_EQ(::stat((*server)->SocketPath("vm1").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, ::getegid());
}

TEST(LibvirtTest, ShmemDeviceNamesTheSocketAndVectors) {
  EXPECT_EQ(LibvirtShmemXml("vm1", "/run/x'y/vm1.sock", 3),
            "<shmem name='vm1'><model type='ivshmem-doorbell'/><server "
            "path='/run/x&apos;y/vm1.sock'/><msi vectors='3' ioeventfd='on'/></shmem>");
}

}  // namespace
}  // namespace ptnetmap::ivshmem
