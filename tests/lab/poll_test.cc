// SPDX-License-Identifier: GPL-2.0
// poll, select and epoll on /dev/netmap in the lab VM: readiness as the
// ring indexes say, sleepers woken by the peer's sync (and only then).
#include <sys/epoll.h>
#include <sys/select.h>

#include <chrono>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "nm_test.h"

namespace {

using nmtest::Port;
using nmtest::RegisterRequest;
using nmtest::UniqueName;
using Clock = std::chrono::steady_clock;

// Long enough for a sleeper to really be asleep, even under emulation.
constexpr auto kDelay = std::chrono::milliseconds(300);

void Send(Port &p, uint32_t n) {
  netmap_ring *tx = p.tx();
  uint32_t i = tx->head;
  for (uint32_t k = 0; k < n; k++) {
    tx->slot[i].len = 60;
    i = nm_ring_next(tx, i);
  }
  tx->head = tx->cur = i;
  ASSERT_EQ(p.TxSync(), 0);
}

class PollTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string name = UniqueName("poll");
    ASSERT_EQ(master_.Open(name + "{p",
                           [](RegisterRequest &r) {
                             r.body.nr_tx_slots = 32;
                             r.body.nr_rx_slots = 32;
                           }),
              0);
    ASSERT_EQ(slave_.Open(name + "}p"), 0);
  }
  Port master_, slave_;
};

TEST(PollBasics, UnregisteredFileIsAnError) {
  int fd = nmtest::OpenNetmap();
  pollfd p{fd, POLLIN | POLLOUT, 0};
  EXPECT_EQ(poll(&p, 1, 0), 1);
  EXPECT_TRUE(p.revents & POLLERR);
  close(fd);
}

TEST_F(PollTest, FreshPortIsWritableNotReadable) {
  EXPECT_EQ(master_.Poll(POLLOUT, 0), POLLOUT);
  EXPECT_EQ(slave_.Poll(POLLIN, 0), 0);
  EXPECT_EQ(slave_.Poll(POLLIN | POLLOUT, 0), POLLOUT);
}

TEST_F(PollTest, PollSyncsAndReportsArrivals) {
  Send(master_, 3);
  netmap_ring *rx = slave_.rx();
  EXPECT_EQ(rx->tail, 0u);
  EXPECT_EQ(slave_.Poll(POLLIN, 0), POLLIN);
  EXPECT_EQ(rx->tail, 3u);  // poll did the rxsync
}

TEST_F(PollTest, SleeperWakesWhenThePeerSends) {
  auto start = Clock::now();
  auto waiter = std::async(std::launch::async, [&] { return slave_.Poll(POLLIN, 10000); });
  std::this_thread::sleep_for(kDelay);
  Send(master_, 1);
  EXPECT_EQ(waiter.get(), POLLIN);
  EXPECT_GE(Clock::now() - start, kDelay);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

// cur asks for a wake-up only when tail passes it.
TEST_F(PollTest, CurAtTailWaitsForMore) {
  Send(master_, 2);
  ASSERT_EQ(slave_.RxSync(), 0);
  netmap_ring *rx = slave_.rx();
  ASSERT_EQ(rx->tail, 2u);
  rx->cur = rx->tail;  // seen them all, keep head where it is
  EXPECT_EQ(slave_.Poll(POLLIN, 0), 0);
  auto waiter = std::async(std::launch::async, [&] { return slave_.Poll(POLLIN, 10000); });
  std::this_thread::sleep_for(kDelay);
  Send(master_, 1);
  EXPECT_EQ(waiter.get(), POLLIN);
  EXPECT_EQ(rx->tail, 3u);
  EXPECT_EQ(rx->head, 0u);
}

// A sender with a ring full of pending packets sleeps until the receiver
// releases slots.
TEST_F(PollTest, SenderWakesWhenTheReceiverReleases) {
  netmap_ring *tx = master_.tx();
  Send(master_, tx->num_slots - 1);  // fills the receiver
  Send(master_, tx->num_slots - 1);  // all pending now
  ASSERT_EQ(nm_ring_space(tx), 0u);
  EXPECT_EQ(master_.Poll(POLLOUT, 0), 0);
  auto waiter = std::async(std::launch::async, [&] { return master_.Poll(POLLOUT, 10000); });
  std::this_thread::sleep_for(kDelay);
  ASSERT_EQ(slave_.RxSync(), 0);
  netmap_ring *rx = slave_.rx();
  rx->head = rx->cur = rx->tail;  // consume everything
  ASSERT_EQ(slave_.RxSync(), 0);
  EXPECT_EQ(waiter.get(), POLLOUT);
  EXPECT_GT(nm_ring_space(tx), 0u);
}

TEST_F(PollTest, SelectSeesTheSameReadiness) {
  fd_set rd, wr;
  FD_ZERO(&rd);
  FD_ZERO(&wr);
  FD_SET(slave_.fd(), &rd);
  timeval tv{0, 0};
  EXPECT_EQ(select(slave_.fd() + 1, &rd, nullptr, nullptr, &tv), 0);
  auto waiter = std::async(std::launch::async, [&] {
    fd_set r;
    FD_ZERO(&r);
    FD_SET(slave_.fd(), &r);
    timeval t{10, 0};
    return select(slave_.fd() + 1, &r, nullptr, nullptr, &t);
  });
  std::this_thread::sleep_for(kDelay);
  Send(master_, 1);
  EXPECT_EQ(waiter.get(), 1);
  FD_SET(master_.fd(), &wr);
  tv = {0, 0};
  EXPECT_EQ(select(master_.fd() + 1, nullptr, &wr, nullptr, &tv), 1);
}

TEST_F(PollTest, EpollWakesAndStaysLevelTriggered) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = slave_.fd();
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, slave_.fd(), &ev), 0);
  epoll_event out{};
  EXPECT_EQ(epoll_wait(ep, &out, 1, 0), 0);

  auto waiter = std::async(std::launch::async, [&] {
    epoll_event o{};
    return epoll_wait(ep, &o, 1, 10000) == 1 && (o.events & EPOLLIN);
  });
  std::this_thread::sleep_for(kDelay);
  Send(master_, 1);
  EXPECT_TRUE(waiter.get());
  // Not consumed: still ready.
  EXPECT_EQ(epoll_wait(ep, &out, 1, 0), 1);
  // Consumed and released: no longer ready.
  netmap_ring *rx = slave_.rx();
  rx->head = rx->cur = rx->tail;
  ASSERT_EQ(slave_.RxSync(), 0);
  EXPECT_EQ(epoll_wait(ep, &out, 1, 0), 0);
  close(ep);
}

// Closing a file that sits in an epoll set is clean (the module unloads).
TEST_F(PollTest, EpollOfAClosedPortIsClean) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, slave_.fd(), &ev), 0);
  slave_.Close();
  epoll_event out{};
  EXPECT_EQ(epoll_wait(ep, &out, 1, 0), 0);
  close(ep);
}

// Many wake-ups in a row: a ping-pong over the pipe, both sides sleeping.
TEST_F(PollTest, PingPongWakesEveryTime) {
  constexpr int kRounds = 300;
  std::thread echo([&] {
    for (int k = 0; k < kRounds; k++) {
      if (slave_.Poll(POLLIN, 10000) != POLLIN) return;
      netmap_ring *rx = slave_.rx();
      rx->head = rx->cur = nm_ring_next(rx, rx->head);
      netmap_ring *tx = slave_.tx();
      tx->slot[tx->head].len = 60;
      tx->head = tx->cur = nm_ring_next(tx, tx->head);
      slave_.TxSync();
    }
  });
  int done = 0;
  for (; done < kRounds; done++) {
    Send(master_, 1);
    if (master_.Poll(POLLIN, 10000) != POLLIN) break;
    netmap_ring *rx = master_.rx();
    rx->head = rx->cur = nm_ring_next(rx, rx->head);
  }
  echo.join();
  EXPECT_EQ(done, kRounds);
}

}  // namespace
