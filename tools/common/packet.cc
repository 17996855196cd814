// SPDX-License-Identifier: BSD-2-Clause
#include "packet.h"

#include <endian.h>

#include <cstring>

namespace ptools {
namespace {

constexpr size_t kEthLen = 14;
constexpr size_t kIpOff = kEthLen;
constexpr size_t kIpLen = 20;
constexpr size_t kUdpOff = kIpOff + kIpLen;
constexpr size_t kUdpLen = 8;
constexpr size_t kPayloadOff = kUdpOff + kUdpLen;  // 42
constexpr size_t kSeqOff = kPayloadOff + 2;
constexpr size_t kStampOff = kSeqOff + 8;
constexpr size_t kFillerOff = kStampOff + 8;  // 60
static_assert(kFillerOff == kMinFrameLen);

constexpr uint8_t kMagic[2] = {'P', 'T'};
constexpr uint8_t kSrcIp[4] = {10, 0, 0, 1};
constexpr uint8_t kDstIp[4] = {10, 0, 0, 2};
constexpr uint16_t kSrcPort = 1234;
constexpr uint16_t kDstPort = 4321;
constexpr uint8_t kProtoUdp = 17;

// The frame every packet starts from: headers with zero lengths and
// checksums, then the filler. Built once.
struct Template {
  uint8_t bytes[kMaxFrameLen];
  Template() {
    for (size_t i = 0; i < sizeof(bytes); ++i) bytes[i] = static_cast<uint8_t>(i * 7 + 1);
    const uint8_t eth[kEthLen] = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00};
    std::memcpy(bytes, eth, sizeof(eth));
    uint8_t* ip = bytes + kIpOff;
    std::memset(ip, 0, kIpLen + kUdpLen);
    ip[0] = 0x45;  // IPv4, 20-byte header
    ip[6] = 0x40;  // don't fragment
    ip[8] = 64;    // ttl
    ip[9] = kProtoUdp;
    std::memcpy(ip + 12, kSrcIp, 4);
    std::memcpy(ip + 16, kDstIp, 4);
    uint8_t* udp = bytes + kUdpOff;
    udp[0] = kSrcPort >> 8;
    udp[1] = kSrcPort & 0xff;
    udp[2] = kDstPort >> 8;
    udp[3] = kDstPort & 0xff;
    std::memcpy(bytes + kPayloadOff, kMagic, sizeof(kMagic));
  }
};

const Template& FrameTemplate() {
  static const Template t;
  return t;
}

void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
void Put64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
uint64_t Get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}

// One's complement sum of big-endian 16-bit words (RFC 1071), unfolded. Adds
// 32-bit words while it can: 2^16 = 1 modulo 0xffff, so folding gives the
// same result with half the additions.
uint64_t Sum16(const uint8_t* p, size_t len, uint64_t sum = 0) {
  for (; len >= 4; p += 4, len -= 4) {
    uint32_t word;
    std::memcpy(&word, p, sizeof(word));
    sum += be32toh(word);
  }
  for (; len >= 2; p += 2, len -= 2) sum += static_cast<uint64_t>(p[0]) << 8 | p[1];
  if (len) sum += static_cast<uint64_t>(p[0]) << 8;
  return sum;
}

uint16_t Fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// The UDP checksum field's value for the segment at udp (checksum field zero).
uint16_t UdpChecksum(const uint8_t* ip, const uint8_t* udp, size_t udp_len) {
  uint64_t sum = Sum16(ip + 12, 8);  // pseudo header: addresses
  sum += kProtoUdp + udp_len;        // protocol and length
  uint16_t c = static_cast<uint16_t>(~Fold(Sum16(udp, udp_len, sum)));
  return c == 0 ? 0xffff : c;  // 0 would mean "no checksum"
}

}  // namespace

std::string_view PacketErrorName(PacketError e) {
  switch (e) {
    case PacketError::kNone:
      return "ok";
    case PacketError::kTooShort:
      return "too short";
    case PacketError::kNotOurs:
      return "not a ptgen packet";
    case PacketError::kBadLength:
      return "length mismatch";
    case PacketError::kBadIpChecksum:
      return "bad IPv4 checksum";
    case PacketError::kBadUdpChecksum:
      return "bad UDP checksum (payload altered)";
  }
  return "?";
}

void BuildPacket(uint8_t* dst, size_t len, uint64_t seq, uint64_t stamp_ns) {
  std::memcpy(dst, FrameTemplate().bytes, len);
  uint8_t* ip = dst + kIpOff;
  uint8_t* udp = dst + kUdpOff;
  size_t ip_len = len - kEthLen;
  Put16(ip + 2, static_cast<uint16_t>(ip_len));
  Put16(ip + 10, static_cast<uint16_t>(~Fold(Sum16(ip, kIpLen))));
  Put16(udp + 4, static_cast<uint16_t>(ip_len - kIpLen));
  Put64(dst + kSeqOff, seq);
  Put64(dst + kStampOff, stamp_ns);
  Put16(udp + 6, UdpChecksum(ip, udp, ip_len - kIpLen));
}

PacketError ParsePacket(const uint8_t* frame, size_t len, bool verify_checksums, PacketInfo* info) {
  if (len < kMinFrameLen) return PacketError::kTooShort;
  const uint8_t* ip = frame + kIpOff;
  const uint8_t* udp = frame + kUdpOff;
  // The checksums do not cover the Ethernet header: compare it whole.
  if (std::memcmp(frame, FrameTemplate().bytes, kEthLen) != 0 || ip[0] != 0x45 ||
      ip[9] != kProtoUdp || std::memcmp(frame + kPayloadOff, kMagic, sizeof(kMagic)) != 0) {
    return PacketError::kNotOurs;
  }
  size_t ip_len = Get16(ip + 2);
  if (ip_len + kEthLen != len || Get16(udp + 4) + kIpLen != ip_len) {
    return PacketError::kBadLength;
  }
  if (verify_checksums) {
    if (Fold(Sum16(ip, kIpLen)) != 0xffff) return PacketError::kBadIpChecksum;
    uint64_t sum = Sum16(ip + 12, 8) + kProtoUdp + (ip_len - kIpLen);
    if (Fold(Sum16(udp, ip_len - kIpLen, sum)) != 0xffff) return PacketError::kBadUdpChecksum;
  }
  info->seq = Get64(frame + kSeqOff);
  info->stamp_ns = Get64(frame + kStampOff);
  return PacketError::kNone;
}

}  // namespace ptools
