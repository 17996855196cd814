// Metrics as Prometheus sees them: the text exposition after real RPCs and
// traffic in the fake datapath, and over HTTP from the Exposer.
#include "agent/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <prometheus/exposer.h>

#include "agent/test_agent.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ptnetmap::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace pb = ::ptnetmap::v1;

void Populate(TestAgent& agent) {
  auto stub = agent.NewStub();
  pb::Switch sw;
  grpc::ClientContext c1;
  pb::CreateSwitchRequest sreq;
  sreq.set_name("vale0");
  ASSERT_TRUE(stub->CreateSwitch(&c1, sreq, &sw).ok());
  grpc::ClientContext c2;
  ASSERT_EQ(stub->CreateSwitch(&c2, sreq, &sw).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  grpc::ClientContext c3;
  pb::CreatePortRequest preq;
  preq.set_switch_name("vale0");
  preq.set_name("p1");
  pb::Port port;
  ASSERT_TRUE(stub->CreatePort(&c3, preq, &port).ok());
  grpc::ClientContext c4;
  pb::CreateVmAttachmentRequest vreq;
  vreq.set_name("vm1");
  vreq.set_trust(pb::TRUST_POLICY_UNTRUSTED);
  vreq.set_switch_name("vale0");
  pb::VmAttachment vm;
  ASSERT_TRUE(stub->CreateVmAttachment(&c4, vreq, &vm).ok());
  agent.datapath().AddTraffic("vale0:p1", {.rx_packets = 42, .rx_bytes = 2520});
  agent.datapath().AddTraffic("vale0:vm1", {.tx_packets = 9, .drops = {.ring_full = 4},
                                            .kicks = 7, .interrupts = 6, .worker_wakeups = 5});
}

TEST(MetricsTest, ExpositionHasKernelCountersRpcsObjectsAndBuildInfo) {
  TestAgent agent;
  Populate(agent);
  const std::string text = agent.metrics().Render();
  EXPECT_THAT(text, HasSubstr(
      "ptnetmap_port_rx_packets_total{kind=\"port\",port=\"p1\",switch=\"vale0\"} 42"));
  EXPECT_THAT(text, HasSubstr(
      "ptnetmap_port_rx_bytes_total{kind=\"port\",port=\"p1\",switch=\"vale0\"} 2520"));
  EXPECT_THAT(text, HasSubstr(
      "ptnetmap_attachment_drops_total{attachment=\"vm1\",cause=\"ring_full\","
      "trust=\"untrusted\"} 4"));
  EXPECT_THAT(text, HasSubstr(
      "ptnetmap_attachment_kicks_total{attachment=\"vm1\",trust=\"untrusted\"} 7"));
  EXPECT_THAT(text, HasSubstr(
      "ptnetmap_attachment_worker_wakeups_total{attachment=\"vm1\",trust=\"untrusted\"} 5"));
  EXPECT_THAT(text, HasSubstr("# TYPE ptnetmap_port_rx_packets_total counter"));
  EXPECT_THAT(text, HasSubstr(
      "ptnetmap_agent_rpcs_total{code=\"ALREADY_EXISTS\",method=\"CreateSwitch\"} 1"));
  EXPECT_THAT(text, HasSubstr(
      "ptnetmap_agent_rpcs_total{code=\"OK\",method=\"CreateSwitch\"} 1"));
  EXPECT_THAT(text, HasSubstr(
      "ptnetmap_agent_rpc_duration_seconds_count{method=\"CreatePort\"} 1"));
  EXPECT_THAT(text, HasSubstr("ptnetmap_objects{kind=\"switch\"} 1"));
  EXPECT_THAT(text, HasSubstr("ptnetmap_objects{kind=\"vm_attachment\",trust=\"untrusted\"} 1"));
  EXPECT_THAT(text, HasSubstr("ptnetmap_build_info{datapath=\"fake\",version=\"test\"} 1"));
  EXPECT_THAT(text, HasSubstr("ptnetmap_datapath_up 1"));
  EXPECT_THAT(text, HasSubstr("ptnetmap_reconcile_objects{result=\"unmanaged\"} 0"));
}

TEST(MetricsTest, DeletedPortsDisappearAndUnloadedModuleShows) {
  TestAgent agent;
  Populate(agent);
  auto stub = agent.NewStub();
  grpc::ClientContext context;
  pb::DeletePortRequest req;
  req.set_switch_name("vale0");
  req.set_name("p1");
  pb::DeletePortResponse resp;
  ASSERT_TRUE(stub->DeletePort(&context, req, &resp).ok());
  EXPECT_THAT(agent.metrics().Render(), Not(HasSubstr("port=\"p1\"")));

  agent.datapath().SetModuleLoaded(false);
  EXPECT_THAT(agent.metrics().Render(), HasSubstr("ptnetmap_datapath_up 0"));
}

// Reads http://127.0.0.1:port/metrics with a plain socket.
std::string HttpGet(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string request = "GET /metrics HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  EXPECT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  std::string response;
  char buffer[4096];
  ssize_t n;
  while ((n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) response.append(buffer, n);
  ::close(fd);
  return response;
}

TEST(MetricsTest, ExposerServesTheCountersOverHttp) {
  TestAgent agent;
  Populate(agent);
  prometheus::Exposer exposer("127.0.0.1:0");
  for (const auto& collectable : agent.metrics().Collectables()) {
    exposer.RegisterCollectable(collectable);
  }
  ASSERT_FALSE(exposer.GetListeningPorts().empty());
  const std::string response = HttpGet(exposer.GetListeningPorts().front());
  EXPECT_THAT(response, HasSubstr("200 OK"));
  EXPECT_THAT(response, HasSubstr(
      "ptnetmap_port_rx_packets_total{kind=\"port\",port=\"p1\",switch=\"vale0\"} 42"));
}

}  // namespace
}  // namespace ptnetmap::agent
