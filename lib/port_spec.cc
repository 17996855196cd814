// SPDX-License-Identifier: BSD-2-Clause
// The portspec parser: a single left-to-right pass over
//   [netmap:]NAME[{ID|}ID][MODE][/FLAGS][@MEMID][@OPTION...]
// in that order; anything out of place is an error that names the offending
// character and its offset.
#include "port_spec.h"

#include <net/if.h>
#include <net/netmap.h>

#include <cctype>
#include <charconv>
#include <limits>
#include <utility>
#include <vector>

namespace netmap {
namespace {

constexpr std::string_view kNetmapPrefix = "netmap:";
constexpr std::string_view kValePrefix = "vale";

bool IsIdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Interface names may also carry a dot (VLANs: eth0.100); '-' cannot be
// allowed because it introduces a ring number.
bool IsNicChar(char c) { return IsIdentChar(c) || c == '.'; }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Parses all of `text` as a decimal or 0x-prefixed hexadecimal number.
std::optional<uint64_t> ParseNumber(std::string_view text) {
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    text.remove_prefix(2);
    base = 16;
  }
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

struct OptionKey {
  std::string key;
  std::string value;
};

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  std::optional<PortSpec> Parse(std::string* error) {
    bool ok = ParseName() && ParseMode() && ParseFlags() && ParseMemId() && ParseOptions();
    if (ok && pos_ != text_.size()) {
      ok = Unexpected("");
    }
    if (!ok) {
      *error = "bad port name \"" + std::string(text_) + "\": " + error_;
      return std::nullopt;
    }
    return std::move(spec_);
  }

 private:
  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return AtEnd() ? '\0' : text_[pos_]; }

  bool Fail(std::string message) {
    error_ = std::move(message);
    return false;
  }

  bool Unexpected(std::string_view hint) {
    std::string msg =
        "unexpected '" + std::string(1, Peek()) + "' at offset " + std::to_string(pos_);
    if (!hint.empty()) {
      msg += " (" + std::string(hint) + ")";
    }
    return Fail(msg);
  }

  // Consumes the longest run of characters accepted by `pred`.
  template <typename Pred>
  std::string_view Take(Pred pred) {
    size_t start = pos_;
    while (!AtEnd() && pred(text_[pos_])) {
      ++pos_;
    }
    return text_.substr(start, pos_ - start);
  }

  // Consumes digits as a number no larger than `max`; `what` names it in errors.
  bool TakeNumber(std::string_view what, uint64_t max, uint64_t* out) {
    std::string_view digits = Take(IsDigit);
    if (digits.empty()) {
      return Fail("expected " + std::string(what) + " at offset " + std::to_string(pos_));
    }
    auto value = ParseNumber(digits);
    if (!value || *value > max) {
      return Fail(std::string(what) + " " + std::string(digits) + " is out of range (0.." +
                  std::to_string(max) + ")");
    }
    *out = *value;
    return true;
  }

  // NAME[{ID|}ID]
  bool ParseName() {
    if (text_.starts_with(kNetmapPrefix)) {
      pos_ = kNetmapPrefix.size();
    }
    if (AtEnd()) {
      return Fail("the port name is empty");
    }
    size_t start = pos_;
    if (text_.substr(pos_).starts_with(kValePrefix)) {
      spec_.kind = PortKind::kVale;
      pos_ += kValePrefix.size();
      Take(IsIdentChar);  // the switch id, possibly empty
      if (Peek() != ':') {
        return Fail("a VALE port is named valeX:port, ':' is missing at offset " +
                    std::to_string(pos_));
      }
      ++pos_;
      if (Take(IsIdentChar).empty()) {
        return Fail("the VALE port name after ':' is empty");
      }
    } else {
      std::string_view nic = Take(IsNicChar);
      if (nic.empty()) {
        return Unexpected("expected an interface name");
      }
      if (nic.size() >= IFNAMSIZ) {
        return Fail("interface name \"" + std::string(nic) + "\" is longer than " +
                    std::to_string(IFNAMSIZ - 1) + " characters");
      }
    }
    spec_.parent = text_.substr(start, pos_ - start);

    if (Peek() == '{' || Peek() == '}') {
      char end = Peek();
      spec_.pipe = end == '{' ? PipeEnd::kMaster : PipeEnd::kSlave;
      ++pos_;
      std::string_view id = Take(IsIdentChar);
      if (id.empty()) {
        return Fail(std::string("the pipe id after '") + end + "' is empty");
      }
      spec_.pipe_id = id;
    }
    spec_.name = text_.substr(start, pos_ - start);
    if (spec_.name.size() >= NETMAP_REQ_IFNAMSIZ) {
      return Fail("the name is longer than " + std::to_string(NETMAP_REQ_IFNAMSIZ - 1) +
                  " characters");
    }
    if (Peek() == ':') {
      return Unexpected("':' belongs in VALE port names, valeX:port");
    }
    if (Peek() == '{' || Peek() == '}') {
      return Unexpected("a port has at most one pipe suffix");
    }
    return true;
  }

  // -N | * | ^ | ^N
  bool ParseMode() {
    uint64_t ring = 0;
    switch (Peek()) {
      case '-':
        ++pos_;
        if (!TakeNumber("a ring number after '-'", UINT16_MAX, &ring)) {
          return false;
        }
        spec_.mode = NR_REG_ONE_NIC;
        spec_.ringid = static_cast<uint16_t>(ring);
        break;
      case '*':
        ++pos_;
        spec_.mode = NR_REG_NIC_SW;
        break;
      case '^':
        ++pos_;
        if (IsDigit(Peek())) {
          if (!TakeNumber("a host ring number", UINT16_MAX, &ring)) {
            return false;
          }
          spec_.mode = NR_REG_ONE_SW;
          spec_.ringid = static_cast<uint16_t>(ring);
        } else {
          spec_.mode = NR_REG_SW;
        }
        break;
      default:
        return true;
    }
    if (Peek() == '-' || Peek() == '*' || Peek() == '^') {
      return Unexpected("choose one of -N, *, ^, ^N");
    }
    return true;
  }

  // /FLAGS
  bool ParseFlags() {
    if (Peek() != '/') {
      return true;
    }
    ++pos_;
    if (AtEnd() || Peek() == '@') {
      return Fail("no flags after '/' (known: x z t r R T)");
    }
    while (!AtEnd() && Peek() != '@') {
      switch (Peek()) {
        case 'x':
          spec_.flags |= NR_EXCLUSIVE;
          break;
        case 'z':
          spec_.flags |= NR_ZCOPY_MON;
          break;
        case 't':
          spec_.flags |= NR_MONITOR_TX;
          break;
        case 'r':
          spec_.flags |= NR_MONITOR_RX;
          break;
        case 'R':
          spec_.flags |= NR_RX_RINGS_ONLY;
          break;
        case 'T':
          spec_.flags |= NR_TX_RINGS_ONLY;
          break;
        default:
          return Unexpected("known flags: x z t r R T");
      }
      ++pos_;
    }
    if ((spec_.flags & NR_RX_RINGS_ONLY) && (spec_.flags & NR_TX_RINGS_ONLY)) {
      return Fail("flags R (rx rings only) and T (tx rings only) exclude each other");
    }
    return true;
  }

  // @MEMID: an '@' followed by a digit.
  bool ParseMemId() {
    if (Peek() != '@' || pos_ + 1 >= text_.size() || !IsDigit(text_[pos_ + 1])) {
      return true;
    }
    ++pos_;
    uint64_t id = 0;
    if (!TakeNumber("a memory region id", UINT16_MAX, &id)) {
      return false;
    }
    spec_.mem_id = static_cast<uint16_t>(id);
    if (Peek() != '@' && !AtEnd()) {
      return Unexpected("expected an option after the memory region id");
    }
    return true;
  }

  // @name | @name=value | @name:key=value,key=value
  bool ParseOptions() {
    std::vector<std::string> seen;
    while (Peek() == '@') {
      ++pos_;
      std::string name(Take([](char c) { return IsIdentChar(c) || c == '-'; }));
      if (name.empty()) {
        return AtEnd() ? Fail("an option name is missing after the final '@'")
                       : Unexpected("expected an option name after '@'");
      }
      for (const std::string& s : seen) {
        if (s == name) {
          return Fail("option @" + name + " is given twice");
        }
      }
      seen.push_back(name);

      std::vector<OptionKey> keys;
      if (Peek() == '=') {
        ++pos_;
        keys.push_back({"", std::string(TakeValue())});
      } else if (Peek() == ':') {
        ++pos_;
        do {
          if (Peek() == ',') {
            ++pos_;
          }
          std::string key(Take([](char c) { return IsIdentChar(c) || c == '-'; }));
          if (key.empty()) {
            return Fail("option @" + name + ": expected key=value at offset " +
                        std::to_string(pos_));
          }
          if (Peek() != '=') {
            return Fail("option @" + name + ": key \"" + key + "\" has no value");
          }
          ++pos_;
          for (const OptionKey& k : keys) {
            if (k.key == key) {
              return Fail("option @" + name + ": key \"" + key + "\" is given twice");
            }
          }
          keys.push_back({key, std::string(TakeValue())});
        } while (Peek() == ',');
      } else if (!AtEnd() && Peek() != '@') {
        return Unexpected("an option continues with '=' or ':'");
      }
      if (!ApplyOption(name, keys)) {
        return false;
      }
    }
    if (spec_.share && spec_.mem_id) {
      return Fail("@share and a memory region id (@N) exclude each other");
    }
    return true;
  }

  // A value runs up to the next ',' or '@'.
  std::string_view TakeValue() {
    return Take([](char c) { return c != ',' && c != '@'; });
  }

  bool ApplyOption(const std::string& name, std::vector<OptionKey>& keys) {
    if (name == "share") return ApplyShare(keys);
    if (name == "conf") return ApplyConf(keys);
    if (name == "extmem") return ApplyExtmem(keys);
    if (name == "offset") return ApplyOffset(keys);
    return Fail("unknown option @" + name + " (known: share, conf, extmem, offset)");
  }

  // Replaces the key of a single-value option ("@conf=4") by the default key.
  static void UseDefaultKey(std::vector<OptionKey>& keys, const char* key) {
    if (keys.size() == 1 && keys[0].key.empty()) {
      keys[0].key = key;
    }
  }

  bool NeedsValue(const std::string& option, const std::vector<OptionKey>& keys) {
    if (keys.empty()) {
      return Fail("option @" + option + " needs a value");
    }
    return true;
  }

  bool Number(const std::string& option, const OptionKey& k, uint64_t max, uint64_t* out) {
    auto value = ParseNumber(k.value);
    if (!value) {
      return Fail("option @" + option + ": " + k.key + "=\"" + k.value + "\" is not a number");
    }
    if (*value > max) {
      return Fail("option @" + option + ": " + k.key + "=" + k.value + " is out of range (0.." +
                  std::to_string(max) + ")");
    }
    *out = *value;
    return true;
  }

  bool UnknownKey(const std::string& option, const OptionKey& k, const char* known) {
    return Fail("option @" + option + ": unknown key \"" + k.key + "\" (known: " + known + ")");
  }

  bool ApplyShare(std::vector<OptionKey>& keys) {
    UseDefaultKey(keys, "port");
    if (!NeedsValue("share", keys)) return false;
    for (const OptionKey& k : keys) {
      if (k.key != "port") return UnknownKey("share", k, "port");
      if (k.value.empty()) return Fail("option @share: the port name is empty");
      spec_.share = k.value;
    }
    return true;
  }

  bool ApplyConf(std::vector<OptionKey>& keys) {
    UseDefaultKey(keys, "rings");
    if (!NeedsValue("conf", keys)) return false;
    // The general keys first, so that tx-/rx-/host- specific ones override them.
    RingConf& c = spec_.conf;
    for (int pass = 0; pass < 2; ++pass) {
      for (const OptionKey& k : keys) {
        bool general = k.key == "rings" || k.key == "host-rings" || k.key == "slots";
        if (general != (pass == 0)) continue;
        uint64_t v = 0;
        bool slots = k.key.ends_with("slots");
        if (!Number("conf", k, slots ? UINT32_MAX : UINT16_MAX, &v)) return false;
        if (k.key == "rings") {
          c.tx_rings = c.rx_rings = static_cast<uint16_t>(v);
        } else if (k.key == "host-rings") {
          c.host_tx_rings = c.host_rx_rings = static_cast<uint16_t>(v);
        } else if (k.key == "slots") {
          c.tx_slots = c.rx_slots = static_cast<uint32_t>(v);
        } else if (k.key == "tx-rings") {
          c.tx_rings = static_cast<uint16_t>(v);
        } else if (k.key == "rx-rings") {
          c.rx_rings = static_cast<uint16_t>(v);
        } else if (k.key == "host-tx-rings") {
          c.host_tx_rings = static_cast<uint16_t>(v);
        } else if (k.key == "host-rx-rings") {
          c.host_rx_rings = static_cast<uint16_t>(v);
        } else if (k.key == "tx-slots") {
          c.tx_slots = static_cast<uint32_t>(v);
        } else if (k.key == "rx-slots") {
          c.rx_slots = static_cast<uint32_t>(v);
        } else {
          return UnknownKey("conf", k,
                            "rings, tx-rings, rx-rings, host-rings, host-tx-rings, "
                            "host-rx-rings, slots, tx-slots, rx-slots");
        }
      }
    }
    return true;
  }

  bool ApplyExtmem(std::vector<OptionKey>& keys) {
    UseDefaultKey(keys, "file");
    if (!NeedsValue("extmem", keys)) return false;
    ExtmemSpec e;
    const std::pair<const char*, uint32_t ExtmemSpec::*> numeric[] = {
        {"if-num", &ExtmemSpec::if_num},     {"if-size", &ExtmemSpec::if_size},
        {"ring-num", &ExtmemSpec::ring_num}, {"ring-size", &ExtmemSpec::ring_size},
        {"buf-num", &ExtmemSpec::buf_num},   {"buf-size", &ExtmemSpec::buf_size},
    };
    for (const OptionKey& k : keys) {
      if (k.key == "file") {
        e.file = k.value;
        continue;
      }
      bool known = false;
      for (const auto& [key, field] : numeric) {
        if (k.key == key) {
          uint64_t v = 0;
          if (!Number("extmem", k, UINT32_MAX, &v)) return false;
          e.*field = static_cast<uint32_t>(v);
          known = true;
        }
      }
      if (!known) {
        return UnknownKey("extmem", k,
                          "file, if-num, if-size, ring-num, ring-size, buf-num, buf-size");
      }
    }
    if (e.file.empty()) {
      return Fail("option @extmem: file= is required");
    }
    spec_.extmem = std::move(e);
    return true;
  }

  bool ApplyOffset(std::vector<OptionKey>& keys) {
    UseDefaultKey(keys, "initial");
    if (!NeedsValue("offset", keys)) return false;
    OffsetSpec o;
    bool have_initial = false;
    bool have_max = false;
    for (const OptionKey& k : keys) {
      uint64_t limit = k.key == "bits" ? 64 : std::numeric_limits<uint64_t>::max();
      uint64_t v = 0;
      if (k.key != "initial" && k.key != "bits" && k.key != "max" && k.key != "min-gap") {
        return UnknownKey("offset", k, "initial, bits, max, min-gap");
      }
      if (!Number("offset", k, limit, &v)) return false;
      if (k.key == "initial") {
        o.initial = v;
        have_initial = true;
      } else if (k.key == "bits") {
        o.bits = v;
      } else if (k.key == "max") {
        o.max = v;
        have_max = true;
      } else {
        o.min_gap = v;
      }
    }
    if (!have_initial) {
      return Fail("option @offset: initial= is required");
    }
    if (!have_max) {
      o.max = o.initial;
    } else if (o.max < o.initial) {
      return Fail("option @offset: max is smaller than initial");
    }
    spec_.offsets = o;
    return true;
  }

  std::string_view text_;
  size_t pos_ = 0;
  PortSpec spec_;
  std::string error_;
};

}  // namespace

std::optional<PortSpec> ParsePortSpec(std::string_view text, std::string* error) {
  return Parser(text).Parse(error);
}

}  // namespace netmap
