// The gRPC API end to end in one process: real server on a UNIX socket,
// real generated stubs, fake datapath.
#include "agent/service.h"

#include <sys/stat.h>

#include <fstream>

#include "agent/test_agent.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"

namespace ptnetmap::agent {
namespace {

using ::testing::HasSubstr;
namespace pb = ::ptnetmap::v1;

grpc::Status CreateSwitch(pb::Ptnetmap::Stub& stub, const std::string& name, pb::Switch* out) {
  grpc::ClientContext context;
  pb::CreateSwitchRequest req;
  req.set_name(name);
  return stub.CreateSwitch(&context, req, out);
}

TEST(ServiceTest, SocketIsGroupOnly) {
  TestAgent agent;
  struct stat st {};
  ASSERT_EQ(::stat(agent.socket().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

TEST(ServiceTest, CreateGetListDeleteSwitchWithStatusCodes) {
  TestAgent agent;
  auto stub = agent.NewStub();
  pb::Switch sw;
  ASSERT_TRUE(CreateSwitch(*stub, "vale0", &sw).ok());
  EXPECT_EQ(sw.name(), "vale0");

  grpc::Status again = CreateSwitch(*stub, "vale0", &sw);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(again.error_message(), HasSubstr("vale0 already exists"));
  grpc::Status bad = CreateSwitch(*stub, "br0", &sw);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad.error_message(), HasSubstr("e.g. vale0"));

  {
    grpc::ClientContext context;
    pb::CreatePortRequest req;
    req.set_switch_name("vale0");
    req.set_name("p1");
    pb::Port port;
    ASSERT_TRUE(stub->CreatePort(&context, req, &port).ok());
    EXPECT_EQ(port.netmap_name(), "vale0:p1");
  }
  {
    grpc::ClientContext context;
    pb::GetSwitchRequest req;
    req.set_name("vale0");
    pb::Switch got;
    ASSERT_TRUE(stub->GetSwitch(&context, req, &got).ok());
    ASSERT_EQ(got.ports_size(), 1);
    EXPECT_EQ(got.ports(0), "p1");
  }
  {
    grpc::ClientContext context;
    pb::DeleteSwitchRequest req;
    req.set_name("vale0");
    pb::DeleteSwitchResponse resp;
    EXPECT_EQ(stub->DeleteSwitch(&context, req, &resp).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
  }
  {
    grpc::ClientContext context;
    pb::GetSwitchRequest req;
    req.set_name("vale7");
    pb::Switch got;
    EXPECT_EQ(stub->GetSwitch(&context, req, &got).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext context;
    pb::ListSwitchesResponse list;
    ASSERT_TRUE(stub->ListSwitches(&context, {}, &list).ok());
    EXPECT_EQ(list.switches_size(), 1);
  }
}

TEST(ServiceTest, VmAttachmentReturnsSocketVectorsAndXml) {
  TestAgent agent;
  auto stub = agent.NewStub();
  pb::Switch sw;
  ASSERT_TRUE(CreateSwitch(*stub, "vale0", &sw).ok());
  grpc::ClientContext context;
  pb::CreateVmAttachmentRequest req;
  req.set_name("vm1");
  req.set_trust(pb::TRUST_POLICY_UNTRUSTED);
  req.set_switch_name("vale0");
  req.set_rings(2);
  pb::VmAttachment vm;
  grpc::Status s = stub->CreateVmAttachment(&context, req, &vm);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(vm.vectors(), 5u);  // control + 2 TX + 2 RX
  EXPECT_EQ(vm.peer_id(), 1u);
  EXPECT_EQ(vm.socket_path(), agent.dir() + "/ivshmem/vm1.sock");
  EXPECT_EQ(vm.libvirt_xml(), "<shmem name='vm1'><model type='ivshmem-doorbell'/><server path='" +
                                  vm.socket_path() +
                                  "'/><msi vectors='5' ioeventfd='on'/></shmem>");

  grpc::ClientContext unspecified_context;
  req.set_name("vm2");
  req.clear_trust();
  EXPECT_EQ(stub->CreateVmAttachment(&unspecified_context, req, &vm).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(ServiceTest, StatsComeFromTheDatapath) {
  TestAgent agent;
  auto stub = agent.NewStub();
  pb::Switch sw;
  ASSERT_TRUE(CreateSwitch(*stub, "vale0", &sw).ok());
  {
    grpc::ClientContext context;
    pb::AttachNicRequest req;
    req.set_switch_name("vale0");
    req.set_nic("eth1");
    pb::NicAttachment nic;
    ASSERT_TRUE(stub->AttachNic(&context, req, &nic).ok());
  }
  agent.datapath().AddTraffic("vale0:eth1", {.rx_packets = 3, .tx_bytes = 180,
                                             .drops = {.oversize = 2}});
  grpc::ClientContext context;
  pb::GetStatsResponse stats;
  ASSERT_TRUE(stub->GetStats(&context, {}, &stats).ok());
  ASSERT_EQ(stats.ports_size(), 1);
  EXPECT_EQ(stats.ports(0).kind(), "nic");
  EXPECT_EQ(stats.ports(0).counters().rx_packets(), 3u);
  EXPECT_EQ(stats.ports(0).counters().tx_bytes(), 180u);
  EXPECT_EQ(stats.ports(0).counters().drops().oversize(), 2u);

  agent.datapath().SetModuleLoaded(false);
  grpc::ClientContext down;
  grpc::Status s = stub->GetStats(&down, {}, &stats);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("modprobe ptnetmap"));
}

TEST(ServiceTest, HealthServiceReportsServing) {
  TestAgent agent;
  auto health = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel("unix:" + agent.socket(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckResponse resp;
  ASSERT_TRUE(health->Check(&context, {}, &resp).ok());
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST(ServiceTest, SecondAgentOnTheSameSocketIsRefused) {
  TestAgent agent;
  class Empty : public grpc::Service {} empty;
  auto second = StartGrpcServer(empty, {.unix_socket = agent.socket()});
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("a second ptnetd"));
}

TEST(ServiceTest, TcpWithoutClientCertificatesIsRefused) {
  class Empty : public grpc::Service {} empty;
  auto server = StartGrpcServer(empty, {.tcp_address = "127.0.0.1:0"});
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(server.status().message(), HasSubstr("--tls_client_ca"));

  auto missing_files = StartGrpcServer(
      empty, {.tcp_address = "127.0.0.1:0", .tls_cert = "/nonexistent/cert.pem",
              .tls_key = "/nonexistent/key.pem", .tls_client_ca = "/nonexistent/ca.pem"});
  ASSERT_FALSE(missing_files.ok());
  EXPECT_THAT(missing_files.status().message(), HasSubstr("cannot read --tls_cert"));
}

}  // namespace
}  // namespace ptnetmap::agent
