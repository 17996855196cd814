// TestAgent: a complete in-process ptnetd (fake datapath, real store,
// ivshmem server, manager, service, metrics and gRPC server on a UNIX socket
// in a temporary directory) for tests that go through the real stubs.
#ifndef PTNETMAP_AGENT_TEST_AGENT_H_
#define PTNETMAP_AGENT_TEST_AGENT_H_

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "agent/fake_datapath.h"
#include "agent/grpc_server.h"
#include "qemu/ivshmem_server.h"
#include "agent/manager.h"
#include "agent/metrics.h"
#include "agent/service.h"
#include "agent/state_store.h"
#include "gtest/gtest.h"
#include "ptnetmap/v1/ptnetmap.grpc.pb.h"

namespace ptnetmap::agent {

class TestAgent {
 public:
  TestAgent() {
    char tmpl[] = "/tmp/ptnetd_test_XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    socket_ = dir_ + "/ptnetd.sock";
    auto store = StateStore::Open(dir_ + "/ptnetd.db");
    EXPECT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    auto sockets = ivshmem::Server::Create({.dir = dir_ + "/ivshmem"});
    EXPECT_TRUE(sockets.ok()) << sockets.status();
    ivshmem_ = *std::move(sockets);
    manager_ = std::make_unique<Manager>(datapath_, *store_, *ivshmem_);
    EXPECT_TRUE(manager_->Start().ok());
    metrics_ = std::make_unique<AgentMetrics>(*manager_, "test", datapath_.Name());
    service_ = std::make_unique<PtnetmapService>(*manager_, metrics_.get());
    auto server = StartGrpcServer(*service_, {.unix_socket = socket_});
    EXPECT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  ~TestAgent() {
    server_->Shutdown();
    server_.reset();
    service_.reset();
    metrics_.reset();
    manager_.reset();
    ivshmem_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<v1::Ptnetmap::Stub> NewStub() const {
    return v1::Ptnetmap::NewStub(
        grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials()));
  }

  const std::string& dir() const { return dir_; }
  const std::string& socket() const { return socket_; }
  FakeDatapath& datapath() { return datapath_; }
  StateStore& store() { return *store_; }
  AgentMetrics& metrics() { return *metrics_; }

 private:
  std::string dir_;
  std::string socket_;
  FakeDatapath datapath_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<ivshmem::Server> ivshmem_;
  std::unique_ptr<Manager> manager_;
  std::unique_ptr<AgentMetrics> metrics_;
  std::unique_ptr<PtnetmapService> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace ptnetmap::agent

#endif  // PTNETMAP_AGENT_TEST_AGENT_H_
