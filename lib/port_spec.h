// SPDX-License-Identifier: BSD-2-Clause
// The portspec grammar of <libnetmap.h>, as a pure function: text in, a
// description of the REGISTER request out. No kernel, no files, no side
// effects, so every rule and every error is unit-testable.
#ifndef PTNETMAP_LIB_PORT_SPEC_H_
#define PTNETMAP_LIB_PORT_SPEC_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace netmap {

enum class PortKind { kNic, kVale };
enum class PipeEnd { kNone, kMaster, kSlave };  // '{' and '}'

// Ring geometry asked with @conf; 0 leaves the choice to the kernel.
struct RingConf {
  uint16_t tx_rings = 0;
  uint16_t rx_rings = 0;
  uint16_t host_tx_rings = 0;
  uint16_t host_rx_rings = 0;
  uint32_t tx_slots = 0;
  uint32_t rx_slots = 0;
};

// @extmem: the file to map and the pool layout wanted (0: kernel default).
struct ExtmemSpec {
  std::string file;
  uint32_t if_num = 0;
  uint32_t if_size = 0;
  uint32_t ring_num = 0;
  uint32_t ring_size = 0;
  uint32_t buf_num = 0;
  uint32_t buf_size = 0;
};

// @offset: buffer offsets carried in slot->ptr.
struct OffsetSpec {
  uint64_t initial = 0;
  uint64_t max = 0;   // defaults to `initial`
  uint64_t bits = 0;  // 0: the whole ptr field
  uint64_t min_gap = 0;
};

struct PortSpec {
  std::string name;  // what the kernel gets in nr_name: "eth0", "vale0:p", "pp{1"
  PortKind kind = PortKind::kNic;
  std::string parent;  // the name without the pipe part: "eth0", "vale0:p", "pp"
  PipeEnd pipe = PipeEnd::kNone;
  std::string pipe_id;  // "1" in "pp{1"

  uint32_t mode = 1;    // NR_REG_ALL_NIC
  uint16_t ringid = 0;  // for NR_REG_ONE_NIC / NR_REG_ONE_SW
  uint64_t flags = 0;   // NR_EXCLUSIVE, NR_MONITOR_*, NR_*_RINGS_ONLY
  std::optional<uint16_t> mem_id;

  RingConf conf;
  std::optional<ExtmemSpec> extmem;
  std::optional<OffsetSpec> offsets;
  std::optional<std::string> share;  // @share: the port whose region to use
};

// Parses a portspec. On error returns nullopt and sets *error to a message
// naming the portspec and what is wrong with it.
std::optional<PortSpec> ParsePortSpec(std::string_view text, std::string* error);

}  // namespace netmap

#endif  // PTNETMAP_LIB_PORT_SPEC_H_
