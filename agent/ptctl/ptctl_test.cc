// ptctl end to end against an in-process agent on a UNIX socket: what a
// script sees (exit codes, JSON) and what a person sees (tables, errors).
#include "agent/ptctl/ptctl.h"

#include <google/protobuf/util/json_util.h>
#include <libvirt/libvirt.h>

#include <sstream>

#include "agent/ptctl/libvirt_domain.h"
#include "agent/test_agent.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ptnetmap::ptctl {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

struct Result {
  int code;
  std::string out;
  std::string err;
};

class PtctlTest : public ::testing::Test {
 protected:
  Result Run(std::vector<std::string> args) {
    args.insert(args.begin(), "--socket=" + agent_.socket());
    std::ostringstream out, err;
    const int code = Main(args, out, err);
    return {code, out.str(), err.str()};
  }

  agent::TestAgent agent_;
};

TEST_F(PtctlTest, ExitCodesScriptsRelyOn) {
  EXPECT_EQ(Run({"switch", "create", "vale0"}).code, kExitOk);
  Result dup = Run({"switch", "create", "vale0"});
  EXPECT_EQ(dup.code, kExitAlreadyExists);
  EXPECT_THAT(dup.err, HasSubstr("vale0 already exists"));
  EXPECT_EQ(Run({"switch", "get", "vale9"}).code, kExitNotFound);
  EXPECT_EQ(Run({"switch", "create", "br0"}).code, kExitRejected);
  EXPECT_EQ(Run({"port", "create", "vale0", "p1"}).code, kExitOk);
  EXPECT_EQ(Run({"switch", "delete", "vale0"}).code, kExitRejected);
  EXPECT_EQ(Run({"pipe", "create", "pp1"}).code, kExitOk);
  EXPECT_EQ(Run({"vm", "attach", "pp1", "a", "--trust", "trusted", "--peer", "b"}).code, kExitOk);
  EXPECT_EQ(Run({"vm", "attach", "pp1", "b", "--trust=trusted", "--peer=a"}).code, kExitOk);
  Result full = Run({"vm", "attach", "pp1", "c", "--trust", "trusted", "--peer", "a"});
  EXPECT_EQ(full.code, kExitLimit);
  EXPECT_THAT(full.err, HasSubstr("use another pipe"));
  EXPECT_EQ(Run({"nic", "attach", "vale0", "eth7"}).code, kExitNotFound);
}

TEST_F(PtctlTest, UsageErrorsExitOneWithoutCallingTheAgent) {
  EXPECT_EQ(Run({}).code, kExitUsage);
  EXPECT_EQ(Run({"switch"}).code, kExitUsage);
  EXPECT_EQ(Run({"switch", "explode", "vale0"}).code, kExitUsage);
  EXPECT_EQ(Run({"switch", "create"}).code, kExitUsage);
  EXPECT_EQ(Run({"switch", "create", "vale0", "extra"}).code, kExitUsage);
  EXPECT_EQ(Run({"switch", "list", "--trust", "trusted"}).code, kExitUsage);
  EXPECT_EQ(Run({"--bogus", "switch", "list"}).code, kExitUsage);
  EXPECT_EQ(Run({"--output", "yaml", "switch", "list"}).code, kExitUsage);
  Result no_trust = Run({"vm", "attach", "vale0", "vm1"});
  EXPECT_EQ(no_trust.code, kExitUsage);
  EXPECT_THAT(no_trust.err, HasSubstr("--trust untrusted"));
  EXPECT_EQ(Run({"vm", "attach", "vale0", "vm1", "--trust", "untrusted", "--rings", "x"}).code,
            kExitUsage);
  // Nothing reached the agent.
  EXPECT_THAT(agent_.metrics().Render(), ::testing::Not(HasSubstr("method=\"CreateVmAttachment\"")));
  Result help = Run({"--help"});
  EXPECT_EQ(help.code, kExitOk);
  EXPECT_THAT(help.out, HasSubstr("Exit codes:"));
}

TEST_F(PtctlTest, AgentDownIsExitFiveWithAHint) {
  std::ostringstream out, err;
  const int code =
      Main({"--socket=" + agent_.dir() + "/nobody.sock", "switch", "list"}, out, err);
  EXPECT_EQ(code, kExitUnavailable);
  EXPECT_THAT(err.str(), HasSubstr("is ptnetd running"));
}

TEST_F(PtctlTest, JsonOutputIsTheApiMessage) {
  ASSERT_EQ(Run({"switch", "create", "vale0"}).code, kExitOk);
  ASSERT_EQ(Run({"nic", "attach", "vale0", "eth0"}).code, kExitOk);
  Result list = Run({"--output", "json", "switch", "list"});
  ASSERT_EQ(list.code, kExitOk);
  v1::ListSwitchesResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(list.out, &parsed).ok()) << list.out;
  ASSERT_EQ(parsed.switches_size(), 1);
  EXPECT_EQ(parsed.switches(0).nics(0), "eth0");
  // Every field is present, even empty ones, so scripts need no defaults.
  EXPECT_THAT(list.out, HasSubstr("\"ports\": []"));

  Result stats = Run({"stats", "--output=json"});
  ASSERT_EQ(stats.code, kExitOk);
  EXPECT_THAT(stats.out, HasSubstr("\"rx_packets\": \"0\""));

  Result deleted = Run({"--output", "json", "nic", "detach", "eth0"});
  EXPECT_EQ(deleted.code, kExitOk);
  EXPECT_EQ(deleted.out, "{}\n");
}

TEST_F(PtctlTest, TablesAndXmlForPeople) {
  ASSERT_EQ(Run({"switch", "create", "vale0"}).code, kExitOk);
  ASSERT_EQ(Run({"port", "create", "vale0", "p1"}).code, kExitOk);
  Result ports = Run({"port", "list"});
  EXPECT_EQ(ports.out,
            "SWITCH  NAME  NETMAP_NAME\n"
            "vale0   p1    vale0:p1\n");
  ASSERT_EQ(Run({"vm", "attach", "vale0", "vm1", "--trust", "untrusted"}).code, kExitOk);
  Result xml = Run({"vm", "xml", "vm1"});
  EXPECT_EQ(xml.code, kExitOk);
  EXPECT_THAT(xml.out, StartsWith("<shmem name='vm1'><model type='ivshmem-doorbell'/>"));
  EXPECT_THAT(Run({"vm", "list"}).out, HasSubstr("vm1   untrusted  switch vale0"));
  agent_.datapath().AddTraffic("vale0:p1", {.rx_packets = 12345});
  EXPECT_THAT(Run({"stats"}).out, HasSubstr("12345"));
  EXPECT_EQ(Run({"vm", "delete", "vm1"}).code, kExitOk);
  EXPECT_EQ(Run({"vm", "get", "vm1"}).code, kExitNotFound);
  EXPECT_EQ(Run({"health"}).out, "SERVING\n");
}

// `ptctl domain attach|detach` against libvirt's test driver, which needs no
// daemon. Every connection to test:///default in a process shares one state
// while any is open, so the domain defined here is what ptctl sees. That
// driver cannot hot-plug: the attach and detach themselves are tested in the
// lab against a real libvirtd (tests/libvirt/virsh_shmem_test.py).
class PtctlDomainTest : public PtctlTest {
 protected:
  void SetUp() override {
    conn_ = virConnectOpen("test:///default");
    ASSERT_NE(conn_, nullptr);
    // A stopped, persistent domain that already has shmem device "vm1".
    virDomainPtr d = virDomainDefineXML(conn_,
        "<domain type='test'><name>web1</name><memory>65536</memory>"
        "<os><type>hvm</type></os><devices>"
        "<shmem name='vm1'><model type='ivshmem-doorbell'/><server path='/run/x/vm1.sock'/>"
        "<msi vectors='3' ioeventfd='on'/></shmem></devices></domain>");
    ASSERT_NE(d, nullptr);
    virDomainFree(d);
    ASSERT_EQ(Run({"switch", "create", "vale0"}).code, kExitOk);
    ASSERT_EQ(Run({"vm", "attach", "vale0", "vm1", "--trust", "untrusted"}).code, kExitOk);
    ASSERT_EQ(Run({"vm", "attach", "vale0", "vm2", "--trust", "untrusted"}).code, kExitOk);
  }
  void TearDown() override {
    if (virDomainPtr d = virDomainLookupByName(conn_, "web1")) {
      virDomainUndefine(d);
      virDomainFree(d);
    }
    virConnectClose(conn_);
  }
  Result Domain(std::vector<std::string> args) {
    args.insert(args.begin(), "domain");
    args.push_back("--connect=test:///default");
    return Run(args);
  }

  virConnectPtr conn_ = nullptr;
};

TEST_F(PtctlDomainTest, MissingDomainIsNotFound) {
  Result r = Domain({"attach", "nosuch", "vm1"});
  EXPECT_EQ(r.code, kExitNotFound);
  EXPECT_THAT(r.err, HasSubstr("no libvirt domain 'nosuch' at 'test:///default'"));
  EXPECT_EQ(Domain({"detach", "nosuch", "vm1"}).code, kExitNotFound);
}

TEST_F(PtctlDomainTest, MissingAttachmentIsTheAgentsNotFound) {
  Result r = Domain({"attach", "web1", "vm9"});
  EXPECT_EQ(r.code, kExitNotFound);
  EXPECT_THAT(r.err, HasSubstr("vm9"));
}

TEST_F(PtctlDomainTest, DevicePresentOrAbsent) {
  // Stopped domain: the default scope is its config, which has vm1.
  Result dup = Domain({"attach", "web1", "vm1"});
  EXPECT_EQ(dup.code, kExitAlreadyExists);
  EXPECT_THAT(dup.err, HasSubstr("persistent config of domain 'web1' already has shmem "
                                 "device vm1"));
  Result absent = Domain({"detach", "web1", "vm2", "--config"});
  EXPECT_EQ(absent.code, kExitNotFound);
  EXPECT_THAT(absent.err, HasSubstr("has no shmem device vm2"));
}

TEST_F(PtctlDomainTest, ScopeMustMatchTheDomainsState) {
  Result live = Domain({"attach", "web1", "vm2", "--live"});
  EXPECT_EQ(live.code, kExitRejected);
  EXPECT_THAT(live.err, HasSubstr("'web1' is not running"));
  EXPECT_EQ(Domain({"attach", "web1", "vm2", "--live", "--config"}).code, kExitUsage);
}

TEST_F(PtctlDomainTest, TheAgentsXmlReachesLibvirt) {
  // The test driver parses nothing here: it refuses every hot-plug call,
  // which shows the call was made, after the checks above passed.
  Result r = Domain({"attach", "web1", "vm2", "--config"});
  EXPECT_EQ(r.code, kExitUnimplemented);
  EXPECT_THAT(r.err, HasSubstr("libvirt did not attach shmem device vm2 to domain 'web1'"));
  Result d = Domain({"detach", "web1", "vm1", "--persistent"});
  EXPECT_EQ(d.code, kExitUnimplemented);
  EXPECT_THAT(d.err, HasSubstr("from the config of domain 'web1'"));
}

TEST_F(PtctlDomainTest, LibvirtUnreachableIsExitFiveWithALibvirtHint) {
  Result r = Run({"domain", "attach", "web1", "vm1", "--connect",
                  "qemu+unix:///system?socket=" + agent_.dir() + "/no-libvirt.sock"});
  EXPECT_EQ(r.code, kExitUnavailable);
  EXPECT_THAT(r.err, HasSubstr("cannot connect to libvirt"));
  EXPECT_THAT(r.err, HasSubstr("is libvirtd running"));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("is ptnetd running")));
}

TEST(LibvirtDomainTest, FindsTheShmemElementByExactName) {
  const std::string xml =
      "<domain><devices><shmem name='vm10'>\n  <model type='ivshmem-doorbell'/>\n</shmem>"
      "<shmem name='vm1'>\n  <model type='ivshmem-doorbell'/>\n  <alias name='shmem1'/>\n"
      "</shmem><shmem name=\"a&amp;b\"/></devices></domain>";
  EXPECT_EQ(FindShmemElement(xml, "vm1"),
            "<shmem name='vm1'>\n  <model type='ivshmem-doorbell'/>\n  <alias name='shmem1'/>\n"
            "</shmem>");
  EXPECT_EQ(FindShmemElement(xml, "a&b"), "<shmem name=\"a&amp;b\"/>");
  EXPECT_EQ(FindShmemElement(xml, "vm"), std::nullopt);
  EXPECT_EQ(FindShmemElement(xml, "shmem1"), std::nullopt);
}

TEST(PtctlArgsTest, FlagsAnywhereAndRepeatablePeers) {
  absl::StatusOr<Command> c = ParseArgs(
      {"vm", "--output=json", "attach", "pp1", "vm1", "--peer", "a", "--trust", "trusted",
       "--peer=b", "--socket", "/x.sock"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->words, (std::vector<std::string>{"vm", "attach", "pp1", "vm1"}));
  EXPECT_EQ(c->options["peer"], (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c->global.output, "json");
  EXPECT_EQ(c->global.socket, "/x.sock");
  EXPECT_FALSE(ParseArgs({"switch", "list", "--socket"}).ok());
  // libvirt's scope flags take no value.
  absl::StatusOr<Command> d = ParseArgs({"domain", "attach", "--live", "web1", "vm1"});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->words, (std::vector<std::string>{"domain", "attach", "web1", "vm1"}));
  EXPECT_TRUE(d->options.contains("live"));
}

TEST(PtctlArgsTest, TcpNeedsClientCertificates) {
  GlobalOptions options;
  options.address = "agent.example:7443";
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(options);
  ASSERT_FALSE(channel.ok());
  EXPECT_THAT(channel.status().message(), HasSubstr("--tls_cert"));
}

}  // namespace
}  // namespace ptnetmap::ptctl
