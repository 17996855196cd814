// SPDX-License-Identifier: BSD-2-Clause
#include "common/packet.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <vector>

#include "common/traffic.h"

namespace ptools {
namespace {

TEST(PacketTest, RoundTripAtEveryLength) {
  std::vector<uint8_t> buf(kMaxFrameLen);
  for (size_t len = kMinFrameLen; len <= 1514; ++len) {
    BuildPacket(buf.data(), len, len * 1000 + 7, 0x1122334455667788ull);
    PacketInfo info;
    ASSERT_EQ(ParsePacket(buf.data(), len, true, &info), PacketError::kNone) << len;
    EXPECT_EQ(info.seq, len * 1000 + 7);
    EXPECT_EQ(info.stamp_ns, 0x1122334455667788ull);
  }
}

TEST(PacketTest, IsOrdinaryUdp) {
  uint8_t f[60];
  BuildPacket(f, sizeof(f), 1, 2);
  EXPECT_EQ(f[12], 0x08);  // IPv4
  EXPECT_EQ(f[13], 0x00);
  EXPECT_EQ(f[14], 0x45);
  EXPECT_EQ(f[23], 17);               // UDP
  EXPECT_EQ(f[16] << 8 | f[17], 46);  // IP total length
  EXPECT_EQ(f[38] << 8 | f[39], 26);  // UDP length
  EXPECT_NE(f[40] << 8 | f[41], 0);   // UDP checksum present
}

// Every single-bit error anywhere in the frame is caught.
TEST(PacketTest, EveryFlippedBitIsDetected) {
  for (size_t len : {size_t{60}, size_t{61}, size_t{200}}) {
    std::vector<uint8_t> good(len);
    BuildPacket(good.data(), len, 42, 4242);
    for (size_t byte = 0; byte < len; ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        std::vector<uint8_t> bad = good;
        bad[byte] ^= static_cast<uint8_t>(1 << bit);
        PacketInfo info;
        EXPECT_NE(ParsePacket(bad.data(), len, true, &info), PacketError::kNone)
            << "len " << len << " byte " << byte << " bit " << bit;
      }
    }
  }
}

TEST(PacketTest, Errors) {
  uint8_t f[100];
  PacketInfo info;
  BuildPacket(f, sizeof(f), 1, 2);
  EXPECT_EQ(ParsePacket(f, 59, true, &info), PacketError::kTooShort);
  EXPECT_EQ(ParsePacket(f, 99, true, &info), PacketError::kBadLength);  // truncated
  f[80] ^= 0xff;
  EXPECT_EQ(ParsePacket(f, sizeof(f), true, &info), PacketError::kBadUdpChecksum);
  EXPECT_EQ(ParsePacket(f, sizeof(f), false, &info), PacketError::kNone);  // cheap mode
  BuildPacket(f, sizeof(f), 1, 2);
  f[22] ^= 1;  // ttl
  EXPECT_EQ(ParsePacket(f, sizeof(f), true, &info), PacketError::kBadIpChecksum);
  BuildPacket(f, sizeof(f), 1, 2);
  f[42] = 'X';
  EXPECT_EQ(ParsePacket(f, sizeof(f), true, &info), PacketError::kNotOurs);
}

TEST(LengthScheduleTest, FixedAndSpread) {
  LengthSchedule fixed(60, 60);
  EXPECT_EQ(fixed.For(0), 60u);
  EXPECT_EQ(fixed.For(12345), 60u);

  LengthSchedule spread(60, 1514);
  std::set<uint32_t> seen;
  for (uint64_t seq = 0; seq < 100000; ++seq) {
    uint32_t len = spread.For(seq);
    ASSERT_GE(len, 60u);
    ASSERT_LE(len, 1514u);
    seen.insert(len);
  }
  EXPECT_GT(seen.size(), 1400u);                                  // nearly every length shows up
  EXPECT_EQ(spread.For(777), LengthSchedule(60, 1514).For(777));  // deterministic
}

TEST(SequenceCheckerTest, CountsLossAndReordering) {
  SequenceChecker s;
  for (uint64_t seq : {0, 1, 2, 3}) s.Observe(seq);
  EXPECT_EQ(s.lost(), 0u);
  EXPECT_EQ(s.out_of_order(), 0u);

  s.Observe(6);  // 4 and 5 missing
  EXPECT_EQ(s.lost(), 2u);
  s.Observe(4);  // late: no longer lost, but out of order
  EXPECT_EQ(s.lost(), 1u);
  EXPECT_EQ(s.out_of_order(), 1u);
  s.Observe(7);
  EXPECT_EQ(s.lost(10), 1u + 2u);  // 5, and 8..9 that never came
  s.Observe(7);                    // duplicate
  EXPECT_EQ(s.out_of_order(), 2u);
}

TEST(ReceiverTest, VerifiesAStream) {
  Generator gen(LengthSchedule(60, 300));
  Receiver rx(/*verify=*/true);
  std::vector<uint8_t> buf(300);
  for (int i = 0; i < 1000; ++i) {
    uint32_t len = gen.Next(buf.data(), 5);
    if (i == 500) continue;              // lost
    if (i == 700) buf[len - 1] ^= 0x10;  // corrupted
    rx.Receive(buf.data(), len);
  }
  EXPECT_EQ(rx.packets(), 999u);
  EXPECT_EQ(rx.sequence().lost(1000), 2u);  // 500, and 700 which was dropped as corrupt
  EXPECT_EQ(rx.sequence().out_of_order(), 0u);
  EXPECT_EQ(rx.corrupted(), 1u);
  EXPECT_NE(rx.first_error().find("UDP checksum"), std::string::npos) << rx.first_error();
  EXPECT_EQ(gen.packets(), 1000u);
}

TEST(ReceiverTest, IgnoresForeignFramesWhenVerifying) {
  Generator gen(LengthSchedule(60, 60));
  Receiver rx(/*verify=*/true);
  std::vector<uint8_t> buf(60), arp(60, 0);
  arp[12] = 0x08;  // EtherType ARP: somebody else's traffic
  arp[13] = 0x06;
  EXPECT_FALSE(rx.Receive(arp.data(), arp.size()));
  for (int i = 0; i < 3; ++i) {
    uint32_t len = gen.Next(buf.data(), 5);
    EXPECT_TRUE(rx.Receive(buf.data(), len));
  }
  EXPECT_EQ(rx.packets(), 3u);
  EXPECT_EQ(rx.foreign(), 1u);
  EXPECT_EQ(rx.corrupted(), 0u);
  EXPECT_EQ(rx.sequence().lost(3), 0u);

  Receiver plain(/*verify=*/false);  // without verification every frame counts
  EXPECT_TRUE(plain.Receive(arp.data(), arp.size()));
  EXPECT_EQ(plain.packets(), 1u);
  EXPECT_EQ(plain.foreign(), 0u);
}

}  // namespace
}  // namespace ptools
