// SPDX-License-Identifier: BSD-2-Clause
#include "args.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string>

namespace ptools {
namespace {

// Parses a non-negative decimal number ("12", "1.5", ".5") that is all of `text`.
std::optional<double> ParseDecimal(std::string_view text) {
  bool digits = false, dot = false;
  for (char c : text) {
    if (std::isdigit(static_cast<unsigned char>(c))) {
      digits = true;
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      return std::nullopt;
    }
  }
  if (!digits) return std::nullopt;
  return std::strtod(std::string(text).c_str(), nullptr);
}

}  // namespace

std::optional<uint64_t> ParseCount(std::string_view text) {
  double scale = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 'k':
      case 'K':
        scale = 1e3;
        break;
      case 'M':
        scale = 1e6;
        break;
      case 'G':
        scale = 1e9;
        break;
      default:
        break;
    }
    if (scale != 1) text.remove_suffix(1);
  }
  auto v = ParseDecimal(text);
  if (!v) return std::nullopt;
  double n = *v * scale;
  if (n != std::floor(n) || n > 1.8e19) return std::nullopt;
  return static_cast<uint64_t>(n);
}

std::optional<double> ParseSeconds(std::string_view text) {
  double scale = 1;
  if (text.ends_with("ms")) {
    scale = 1e-3;
    text.remove_suffix(2);
  } else if (text.ends_with("s")) {
    text.remove_suffix(1);
  } else if (text.ends_with("m")) {
    scale = 60;
    text.remove_suffix(1);
  }
  auto v = ParseDecimal(text);
  if (!v) return std::nullopt;
  return *v * scale;
}

std::optional<std::pair<uint64_t, uint64_t>> ParseRange(std::string_view text) {
  size_t dash = text.find('-');
  auto lo = ParseCount(text.substr(0, dash));
  if (!lo) return std::nullopt;
  if (dash == std::string_view::npos) return std::make_pair(*lo, *lo);
  auto hi = ParseCount(text.substr(dash + 1));
  if (!hi || *hi < *lo) return std::nullopt;
  return std::make_pair(*lo, *hi);
}

}  // namespace ptools
