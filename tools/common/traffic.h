// SPDX-License-Identifier: BSD-2-Clause
// The two ends of a test stream, independent of netmap: a Generator writes
// numbered packets, a Receiver checks what arrives and counts what did not.
#ifndef PTNETMAP_TOOLS_COMMON_TRAFFIC_H_
#define PTNETMAP_TOOLS_COMMON_TRAFFIC_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "packet.h"

namespace ptools {

class Generator {
 public:
  explicit Generator(LengthSchedule lengths) : lengths_(lengths) {}

  // Writes the next packet into buf (which holds at least lengths.max()
  // bytes), stamped with now_ns; returns its length.
  uint32_t Next(uint8_t* buf, uint64_t now_ns) {
    uint32_t len = lengths_.For(seq_);
    BuildPacket(buf, len, seq_++, now_ns);
    bytes_ += len;
    return len;
  }

  uint64_t packets() const { return seq_; }
  uint64_t bytes() const { return bytes_; }

 private:
  LengthSchedule lengths_;
  uint64_t seq_ = 0;
  uint64_t bytes_ = 0;
};

// Follows the sequence numbers of one stream that starts at 0.
//   lost:          numbers skipped so far (minus those that showed up late)
//   out_of_order:  numbers that came after a higher one (late or duplicate)
class SequenceChecker {
 public:
  void Observe(uint64_t seq) {
    if (seq == next_) {
      ++next_;
    } else if (seq > next_) {
      gaps_ += seq - next_;
      next_ = seq + 1;
    } else {
      ++out_of_order_;
      if (gaps_ > 0) --gaps_;
    }
  }

  // `expected_total` (0: unknown) also counts the packets missing at the end.
  uint64_t lost(uint64_t expected_total = 0) const {
    return gaps_ + (expected_total > next_ ? expected_total - next_ : 0);
  }
  uint64_t out_of_order() const { return out_of_order_; }
  uint64_t next_expected() const { return next_; }

 private:
  uint64_t next_ = 0;
  uint64_t gaps_ = 0;
  uint64_t out_of_order_ = 0;
};

class Receiver {
 public:
  explicit Receiver(bool verify) : verify_(verify) {}

  // Accounts one received frame; with verification, checks it fully.
  // Returns false for a frame that is not a test packet at all (another
  // sender's traffic on a shared switch, say): with verification it is
  // counted as foreign only, neither received nor corrupted.
  bool Receive(const uint8_t* frame, size_t len) {
    PacketInfo info;
    PacketError err = PacketError::kNone;
    if (verify_) {
      err = ParsePacket(frame, len, /*verify_checksums=*/true, &info);
      if (err == PacketError::kNotOurs) {
        ++foreign_;
        return false;
      }
    }
    ++packets_;
    bytes_ += len;
    if (!verify_) return true;
    if (err != PacketError::kNone) {
      if (corrupted_++ == 0) {
        first_error_ = "packet " + std::to_string(packets_ - 1) + " (" + std::to_string(len) +
                       " bytes): " + std::string(PacketErrorName(err));
      }
      return true;
    }
    sequence_.Observe(info.seq);
    return true;
  }

  bool verify() const { return verify_; }
  uint64_t packets() const { return packets_; }
  uint64_t bytes() const { return bytes_; }
  uint64_t corrupted() const { return corrupted_; }
  uint64_t foreign() const { return foreign_; }
  const SequenceChecker& sequence() const { return sequence_; }
  // Describes the first corrupted packet, for the report.
  const std::string& first_error() const { return first_error_; }

 private:
  bool verify_;
  uint64_t packets_ = 0;
  uint64_t bytes_ = 0;
  uint64_t corrupted_ = 0;
  uint64_t foreign_ = 0;
  SequenceChecker sequence_;
  std::string first_error_;
};

}  // namespace ptools

#endif  // PTNETMAP_TOOLS_COMMON_TRAFFIC_H_
