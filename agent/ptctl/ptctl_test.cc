// ptctl end to end against an in-process agent on a UNIX socket: what a
// script sees (exit codes, JSON) and what a person sees (tables, errors).
#include "agent/ptctl/ptctl.h"

#include <google/protobuf/util/json_util.h>

#include <sstream>

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
