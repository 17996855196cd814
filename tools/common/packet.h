// SPDX-License-Identifier: BSD-2-Clause
// The test packets of the tools: Ethernet + IPv4 + UDP frames whose payload
// carries a sequence number and a send timestamp, protected by real IPv4 and
// UDP checksums, so a receiver can tell lost, reordered and corrupted
// packets apart (and a packet capture shows ordinary UDP).
//
//   0  Ethernet  02:00:00:00:00:02 <- 02:00:00:00:00:01, type IPv4
//  14  IPv4      10.0.0.1 -> 10.0.0.2, UDP, DF
//  34  UDP       1234 -> 4321
//  42  payload   magic "PT" (2), sequence (8, big endian), timestamp ns (8, big endian)
//  60  filler    byte i of the frame is (i * 7 + 1) & 0xff
//
// The smallest frame is therefore 60 bytes, the usual netmap minimum.
#ifndef PTNETMAP_TOOLS_COMMON_PACKET_H_
#define PTNETMAP_TOOLS_COMMON_PACKET_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ptools {

inline constexpr size_t kMinFrameLen = 60;
inline constexpr size_t kMaxFrameLen = 9018;  // jumbo frames, if the buffers hold them

// What a receiver learns from a test packet.
struct PacketInfo {
  uint64_t seq = 0;
  uint64_t stamp_ns = 0;
};

enum class PacketError {
  kNone,
  kTooShort,   // shorter than the headers
  kNotOurs,    // other addresses, not IPv4/UDP, or no magic
  kBadLength,  // frame length disagrees with the IP/UDP lengths
  kBadIpChecksum,
  kBadUdpChecksum,  // the payload was altered
};

std::string_view PacketErrorName(PacketError e);

// The frame length of packet `seq`: fixed, or spread over [min, max] by a
// hash of the sequence number (deterministic, so runs repeat exactly).
class LengthSchedule {
 public:
  LengthSchedule(uint32_t min_len, uint32_t max_len)
      : min_(min_len), span_(max_len - min_len + 1) {}
  uint32_t For(uint64_t seq) const {
    if (span_ == 1) return min_;
    return min_ + static_cast<uint32_t>(((seq * 0x9E3779B97F4A7C15ull) >> 32) % span_);
  }
  uint32_t min() const { return min_; }
  uint32_t max() const { return min_ + span_ - 1; }

 private:
  uint32_t min_;
  uint32_t span_;
};

// Writes a complete frame of `len` bytes (kMinFrameLen..kMaxFrameLen) at dst.
void BuildPacket(uint8_t* dst, size_t len, uint64_t seq, uint64_t stamp_ns);

// Reads seq and timestamp after checking what is cheap to check (Ethernet
// header, IP/UDP lengths, magic). With verify_checksums, also the IPv4 and
// UDP checksums, which cover every other byte of the frame.
PacketError ParsePacket(const uint8_t* frame, size_t len, bool verify_checksums, PacketInfo* info);

}  // namespace ptools

#endif  // PTNETMAP_TOOLS_COMMON_PACKET_H_
