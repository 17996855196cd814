// SPDX-License-Identifier: BSD-2-Clause
// Command-line values shared by the tools: counts with k/M/G suffixes,
// durations, and length ranges. Each returns nullopt for anything malformed.
#ifndef PTNETMAP_TOOLS_COMMON_ARGS_H_
#define PTNETMAP_TOOLS_COMMON_ARGS_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

namespace ptools {

// "2000000", "2M", "1.5k", "10G" (decimal multipliers).
std::optional<uint64_t> ParseCount(std::string_view text);
// Seconds: "10", "2.5", "2.5s", "500ms", "2m".
std::optional<double> ParseSeconds(std::string_view text);
// "60" or "60-1514": an inclusive range, min <= max.
std::optional<std::pair<uint64_t, uint64_t>> ParseRange(std::string_view text);

}  // namespace ptools

#endif  // PTNETMAP_TOOLS_COMMON_ARGS_H_
