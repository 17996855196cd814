// SPDX-License-Identifier: BSD-2-Clause
// The portspec grammar: every rule and the errors for what breaks it.
#include "port_spec.h"

#include <gtest/gtest.h>
#include <net/if.h>
#include <net/netmap.h>

#include <string>

namespace netmap {
namespace {

PortSpec MustParse(const std::string& text) {
  std::string error;
  auto spec = ParsePortSpec(text, &error);
  EXPECT_TRUE(spec.has_value()) << text << ": " << error;
  return spec.value_or(PortSpec{});
}

// The error message for a portspec that must be refused.
std::string MustFail(const std::string& text) {
  std::string error;
  auto spec = ParsePortSpec(text, &error);
  EXPECT_FALSE(spec.has_value()) << text << " was accepted as " << (spec ? spec->name : "");
  EXPECT_NE(error.find(text), std::string::npos) << "the message should quote the portspec";
  return error;
}

TEST(PortSpecTest, NicWithAndWithoutPrefix) {
  for (const char* text : {"netmap:eth0", "eth0"}) {
    PortSpec s = MustParse(text);
    EXPECT_EQ(s.name, "eth0");
    EXPECT_EQ(s.kind, PortKind::kNic);
    EXPECT_EQ(s.pipe, PipeEnd::kNone);
    EXPECT_EQ(s.mode, static_cast<uint32_t>(NR_REG_ALL_NIC));
    EXPECT_EQ(s.flags, 0u);
    EXPECT_FALSE(s.mem_id.has_value());
  }
}

TEST(PortSpecTest, NicNamesMayHaveDotsAndUnderscores) {
  EXPECT_EQ(MustParse("netmap:eth0.100").name, "eth0.100");
  EXPECT_EQ(MustParse("netmap:my_nic").name, "my_nic");
}

TEST(PortSpecTest, ValePorts) {
  PortSpec s = MustParse("vale0:p1");
  EXPECT_EQ(s.kind, PortKind::kVale);
  EXPECT_EQ(s.name, "vale0:p1");
  EXPECT_EQ(s.parent, "vale0:p1");
  // An empty switch id names the default switch.
  EXPECT_EQ(MustParse("vale:x").name, "vale:x");
  EXPECT_EQ(MustParse("netmap:valeA_b:port_2").name, "valeA_b:port_2");
}

TEST(PortSpecTest, PipeEnds) {
  PortSpec master = MustParse("netmap:pp{1");
  EXPECT_EQ(master.name, "pp{1");
  EXPECT_EQ(master.parent, "pp");
  EXPECT_EQ(master.pipe, PipeEnd::kMaster);
  EXPECT_EQ(master.pipe_id, "1");

  PortSpec slave = MustParse("pp}abc");
  EXPECT_EQ(slave.name, "pp}abc");
  EXPECT_EQ(slave.pipe, PipeEnd::kSlave);
  EXPECT_EQ(slave.pipe_id, "abc");

  PortSpec vale_pipe = MustParse("vale0:v{3");
  EXPECT_EQ(vale_pipe.kind, PortKind::kVale);
  EXPECT_EQ(vale_pipe.parent, "vale0:v");
  EXPECT_EQ(vale_pipe.name, "vale0:v{3");
}

TEST(PortSpecTest, RingSelection) {
  PortSpec one = MustParse("eth0-3");
  EXPECT_EQ(one.mode, static_cast<uint32_t>(NR_REG_ONE_NIC));
  EXPECT_EQ(one.ringid, 3);
  EXPECT_EQ(one.name, "eth0");

  EXPECT_EQ(MustParse("eth0^").mode, static_cast<uint32_t>(NR_REG_SW));

  PortSpec host = MustParse("eth0^2");
  EXPECT_EQ(host.mode, static_cast<uint32_t>(NR_REG_ONE_SW));
  EXPECT_EQ(host.ringid, 2);

  EXPECT_EQ(MustParse("netmap:eth0*").mode, static_cast<uint32_t>(NR_REG_NIC_SW));
  EXPECT_EQ(MustParse("pp{1-0").mode, static_cast<uint32_t>(NR_REG_ONE_NIC));
  EXPECT_EQ(MustParse("eth0-65535").ringid, 65535);
}

TEST(PortSpecTest, Flags) {
  EXPECT_EQ(MustParse("eth0/x").flags, static_cast<uint64_t>(NR_EXCLUSIVE));
  EXPECT_EQ(MustParse("eth0/z").flags, static_cast<uint64_t>(NR_ZCOPY_MON));
  EXPECT_EQ(MustParse("eth0/t").flags, static_cast<uint64_t>(NR_MONITOR_TX));
  EXPECT_EQ(MustParse("eth0/r").flags, static_cast<uint64_t>(NR_MONITOR_RX));
  EXPECT_EQ(MustParse("eth0/R").flags, static_cast<uint64_t>(NR_RX_RINGS_ONLY));
  EXPECT_EQ(MustParse("eth0/T").flags, static_cast<uint64_t>(NR_TX_RINGS_ONLY));
  EXPECT_EQ(MustParse("eth0-1/xrt").flags,
            static_cast<uint64_t>(NR_EXCLUSIVE | NR_MONITOR_RX | NR_MONITOR_TX));
  EXPECT_EQ(MustParse("pp}1*/x").mode, static_cast<uint32_t>(NR_REG_NIC_SW));
}

TEST(PortSpecTest, MemoryRegionId) {
  PortSpec s = MustParse("pp{1@2");
  ASSERT_TRUE(s.mem_id.has_value());
  EXPECT_EQ(*s.mem_id, 2);
  EXPECT_EQ(s.name, "pp{1");
  EXPECT_EQ(*MustParse("eth0-1/x@7").mem_id, 7);
}

TEST(PortSpecTest, ConfOption) {
  PortSpec s = MustParse("vale0:a@conf:rings=4,slots=512");
  EXPECT_EQ(s.conf.tx_rings, 4);
  EXPECT_EQ(s.conf.rx_rings, 4);
  EXPECT_EQ(s.conf.tx_slots, 512u);
  EXPECT_EQ(s.conf.rx_slots, 512u);
  EXPECT_EQ(s.conf.host_tx_rings, 0);

  // Specific keys override general ones, in whatever order they come.
  PortSpec o = MustParse("vale0:a@conf:tx-rings=2,rings=4,host-rings=1,rx-slots=128,slots=256");
  EXPECT_EQ(o.conf.tx_rings, 2);
  EXPECT_EQ(o.conf.rx_rings, 4);
  EXPECT_EQ(o.conf.host_tx_rings, 1);
  EXPECT_EQ(o.conf.host_rx_rings, 1);
  EXPECT_EQ(o.conf.tx_slots, 256u);
  EXPECT_EQ(o.conf.rx_slots, 128u);

  // The default key: @conf=N sets rings.
  EXPECT_EQ(MustParse("vale0:a@conf=3").conf.rx_rings, 3);
  EXPECT_EQ(MustParse("vale0:a@conf:slots=0x400").conf.tx_slots, 1024u);
}

TEST(PortSpecTest, ExtmemOption) {
  PortSpec s = MustParse("vale0:a@extmem:file=/tmp/mem.bin,buf-num=1000,buf-size=2048");
  ASSERT_TRUE(s.extmem.has_value());
  EXPECT_EQ(s.extmem->file, "/tmp/mem.bin");
  EXPECT_EQ(s.extmem->buf_num, 1000u);
  EXPECT_EQ(s.extmem->buf_size, 2048u);
  EXPECT_EQ(s.extmem->if_num, 0u);
  EXPECT_EQ(MustParse("pp{1@extmem=/dev/shm/x").extmem->file, "/dev/shm/x");
}

TEST(PortSpecTest, OffsetOption) {
  PortSpec s = MustParse("eth0@offset:initial=64,bits=12");
  ASSERT_TRUE(s.offsets.has_value());
  EXPECT_EQ(s.offsets->initial, 64u);
  EXPECT_EQ(s.offsets->max, 64u);  // max defaults to initial
  EXPECT_EQ(s.offsets->bits, 12u);
  EXPECT_EQ(MustParse("eth0@offset=128").offsets->initial, 128u);
  EXPECT_EQ(MustParse("eth0@offset:initial=8,max=256,min-gap=4").offsets->max, 256u);
}

TEST(PortSpecTest, ShareOption) {
  PortSpec s = MustParse("pp{1@share=netmap:eth0");
  ASSERT_TRUE(s.share.has_value());
  EXPECT_EQ(*s.share, "netmap:eth0");
  EXPECT_EQ(*MustParse("x@share:port=vale0:a").share, "vale0:a");
}

TEST(PortSpecTest, EverythingTogether) {
  PortSpec s = MustParse("netmap:pp}7-0/xT@3@conf:slots=256@offset=32");
  EXPECT_EQ(s.name, "pp}7");
  EXPECT_EQ(s.mode, static_cast<uint32_t>(NR_REG_ONE_NIC));
  EXPECT_EQ(s.flags, static_cast<uint64_t>(NR_EXCLUSIVE | NR_TX_RINGS_ONLY));
  EXPECT_EQ(*s.mem_id, 3);
  EXPECT_EQ(s.conf.rx_slots, 256u);
  EXPECT_EQ(s.offsets->initial, 32u);
}

TEST(PortSpecTest, LongestNames) {
  std::string nic(IFNAMSIZ - 1, 'n');
  EXPECT_EQ(MustParse(nic).name, nic);
  std::string vale = "vale0:" + std::string(NETMAP_REQ_IFNAMSIZ - 1 - 6, 'p');
  EXPECT_EQ(MustParse(vale).name, vale);
}

// --- errors ---

TEST(PortSpecErrorTest, EmptyNames) {
  EXPECT_NE(MustFail("").find("empty"), std::string::npos);
  EXPECT_NE(MustFail("netmap:").find("empty"), std::string::npos);
  EXPECT_NE(MustFail("netmap:-1").find("interface name"), std::string::npos);
}

TEST(PortSpecErrorTest, ValeNames) {
  EXPECT_NE(MustFail("vale0").find("valeX:port"), std::string::npos);
  EXPECT_NE(MustFail("vale0:").find("empty"), std::string::npos);
  EXPECT_NE(MustFail("vale0:a:b").find("unexpected ':'"), std::string::npos);
}

TEST(PortSpecErrorTest, ColonOutsideVale) {
  EXPECT_NE(MustFail("netmap:eth0:1").find("VALE"), std::string::npos);
  EXPECT_NE(MustFail("foo:bar").find("offset 3"), std::string::npos);
}

TEST(PortSpecErrorTest, TooLong) {
  EXPECT_NE(MustFail(std::string(IFNAMSIZ, 'n')).find("longer than"), std::string::npos);
  std::string vale = "vale0:" + std::string(NETMAP_REQ_IFNAMSIZ - 6, 'p');
  EXPECT_NE(MustFail(vale).find("longer than"), std::string::npos);
}

TEST(PortSpecErrorTest, Pipes) {
  EXPECT_NE(MustFail("pp{").find("pipe id"), std::string::npos);
  EXPECT_NE(MustFail("pp}-1").find("pipe id"), std::string::npos);
  EXPECT_NE(MustFail("pp{1}2").find("at most one pipe"), std::string::npos);
  EXPECT_NE(MustFail("pp{1{2").find("at most one pipe"), std::string::npos);
  EXPECT_NE(MustFail("{1").find("interface name"), std::string::npos);
}

TEST(PortSpecErrorTest, RingSuffixes) {
  EXPECT_NE(MustFail("eth0-").find("ring number"), std::string::npos);
  EXPECT_NE(MustFail("eth0-x").find("ring number"), std::string::npos);
  EXPECT_NE(MustFail("eth0-65536").find("out of range"), std::string::npos);
  EXPECT_NE(MustFail("eth0^99999").find("out of range"), std::string::npos);
  EXPECT_NE(MustFail("eth0-1*").find("choose one"), std::string::npos);
  EXPECT_NE(MustFail("eth0*^").find("choose one"), std::string::npos);
  EXPECT_NE(MustFail("eth0^-1").find("choose one"), std::string::npos);
}

TEST(PortSpecErrorTest, Flags) {
  EXPECT_NE(MustFail("eth0/").find("no flags"), std::string::npos);
  EXPECT_NE(MustFail("eth0/@2").find("no flags"), std::string::npos);
  EXPECT_NE(MustFail("eth0/q").find("known flags"), std::string::npos);
  EXPECT_NE(MustFail("eth0/x-1").find("unexpected '-'"), std::string::npos);
  EXPECT_NE(MustFail("eth0/RT").find("exclude"), std::string::npos);
}

TEST(PortSpecErrorTest, MemoryRegionId) {
  EXPECT_NE(MustFail("eth0@70000").find("out of range"), std::string::npos);
  EXPECT_NE(MustFail("eth0@1x").find("unexpected 'x'"), std::string::npos);
  EXPECT_NE(MustFail("eth0@").find("option name"), std::string::npos);
  // A memory id after the options is not a memory id.
  EXPECT_NE(MustFail("eth0@conf=1@2").find("unknown option @2"), std::string::npos);
  EXPECT_NE(MustFail("eth0@2@share=eth1").find("exclude"), std::string::npos);
}

TEST(PortSpecErrorTest, Options) {
  EXPECT_NE(MustFail("eth0@bogus=1").find("unknown option @bogus"), std::string::npos);
  EXPECT_NE(MustFail("eth0@conf").find("needs a value"), std::string::npos);
  EXPECT_NE(MustFail("eth0@conf:").find("key=value"), std::string::npos);
  EXPECT_NE(MustFail("eth0@conf:rings").find("has no value"), std::string::npos);
  EXPECT_NE(MustFail("eth0@conf:rings=2,").find("key=value"), std::string::npos);
  EXPECT_NE(MustFail("eth0@conf:rings=two").find("not a number"), std::string::npos);
  EXPECT_NE(MustFail("eth0@conf:rings=").find("not a number"), std::string::npos);
  EXPECT_NE(MustFail("eth0@conf:rings=70000").find("out of range"), std::string::npos);
  EXPECT_NE(MustFail("eth0@conf:queues=2").find("unknown key \"queues\""), std::string::npos);
  EXPECT_NE(MustFail("eth0@conf:rings=1,rings=2").find("twice"), std::string::npos);
  EXPECT_NE(MustFail("eth0@conf=1@conf=2").find("twice"), std::string::npos);
  EXPECT_NE(MustFail("eth0@conf;rings=1").find("'=' or ':'"), std::string::npos);
  EXPECT_NE(MustFail("eth0@extmem:buf-num=10").find("file= is required"), std::string::npos);
  EXPECT_NE(MustFail("eth0@extmem:file=/x,size=1").find("unknown key"), std::string::npos);
  EXPECT_NE(MustFail("eth0@offset:bits=3").find("initial= is required"), std::string::npos);
  EXPECT_NE(MustFail("eth0@offset:initial=1,bits=65").find("out of range"), std::string::npos);
  EXPECT_NE(MustFail("eth0@offset:initial=9,max=8").find("smaller"), std::string::npos);
  EXPECT_NE(MustFail("eth0@share=").find("empty"), std::string::npos);
}

TEST(PortSpecErrorTest, TrailingJunk) {
  EXPECT_NE(MustFail("eth0 ").find("unexpected ' ' at offset 4"), std::string::npos);
  EXPECT_NE(MustFail("eth0#").find("offset 4"), std::string::npos);
}

}  // namespace
}  // namespace netmap
