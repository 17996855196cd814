// SPDX-License-Identifier: BSD-2-Clause
#include "common/args.h"

#include <gtest/gtest.h>

namespace ptools {
namespace {

TEST(ArgsTest, Counts) {
  EXPECT_EQ(ParseCount("2000000"), 2000000u);
  EXPECT_EQ(ParseCount("2M"), 2000000u);
  EXPECT_EQ(ParseCount("1.5k"), 1500u);
  EXPECT_EQ(ParseCount("10G"), 10000000000u);
  EXPECT_EQ(ParseCount("0"), 0u);
  for (const char* bad : {"", "M", "-1", "1.5", "2x", "1e3", " 1", "0.0001k"}) {
    EXPECT_FALSE(ParseCount(bad).has_value()) << bad;
  }
}

TEST(ArgsTest, Seconds) {
  EXPECT_DOUBLE_EQ(*ParseSeconds("10"), 10);
  EXPECT_DOUBLE_EQ(*ParseSeconds("2.5s"), 2.5);
  EXPECT_DOUBLE_EQ(*ParseSeconds("500ms"), 0.5);
  EXPECT_DOUBLE_EQ(*ParseSeconds("2m"), 120);
  for (const char* bad : {"", "s", "-1", "1h", "ms"}) {
    EXPECT_FALSE(ParseSeconds(bad).has_value()) << bad;
  }
}

TEST(ArgsTest, Ranges) {
  EXPECT_EQ(ParseRange("60"), std::make_pair(uint64_t{60}, uint64_t{60}));
  EXPECT_EQ(ParseRange("60-1514"), std::make_pair(uint64_t{60}, uint64_t{1514}));
  for (const char* bad : {"", "-", "60-", "-60", "100-60", "a-b"}) {
    EXPECT_FALSE(ParseRange(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace ptools
