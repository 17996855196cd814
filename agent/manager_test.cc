#include "agent/manager.h"

#include <sys/mman.h>

#include <cstring>
#include <filesystem>

#include "agent/fake_datapath.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ptnetmap::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Op = FakeDatapath::Op;

VmAttachmentRequest Untrusted(std::string name, std::string sw = "vale0") {
  return {.name = std::move(name), .trust = Trust::kUntrusted, .switch_name = std::move(sw)};
}

VmAttachmentRequest Trusted(std::string name, std::string pipe,
                            std::vector<std::string> peers) {
  return {.name = std::move(name), .trust = Trust::kTrusted, .pipe_name = std::move(pipe),
          .peers = std::move(peers)};
}

class ManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ptnetd_manager_XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    datapath_ = std::make_unique<FakeDatapath>();
    ASSERT_TRUE(Restart().ok());
  }
  void TearDown() override {
    manager_.reset();
    ivshmem_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // A new agent process on the same database and the same "kernel".
  absl::StatusOr<ReconcileReport> Restart(ManagerLimits limits = {}) {
    manager_.reset();
    ivshmem_.reset();
    store_.reset();
    auto store = StateStore::Open(dir_ + "/ptnetd.db");
    EXPECT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    auto sockets = ivshmem::Server::Create({.dir = dir_ + "/ivshmem"});
    EXPECT_TRUE(sockets.ok()) << sockets.status();
    ivshmem_ = *std::move(sockets);
    manager_ = std::make_unique<Manager>(*datapath_, *store_, *ivshmem_, limits);
    return manager_->Start();
  }

  DesiredState Stored() {
    absl::StatusOr<DesiredState> state = store_->Load();
    EXPECT_TRUE(state.ok()) << state.status();
    return state.ok() ? *state : DesiredState{};
  }

  std::string dir_;
  std::unique_ptr<FakeDatapath> datapath_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<ivshmem::Server> ivshmem_;
  std::unique_ptr<Manager> manager_;
};

TEST_F(ManagerTest, InvalidNamesAreRejectedBeforeTouchingTheKernel) {
  for (const char* bad : {"", "vale", "switch0", "vale-0", "vale0:x", "vale0123456789012"}) {
    absl::StatusOr<SwitchView> sw = manager_->CreateSwitch(bad);
    EXPECT_EQ(sw.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_THAT(manager_->CreateSwitch("sw0").status().message(), HasSubstr("e.g. vale0"));
  EXPECT_EQ(datapath_->CallCount(Op::kCreateSwitch), 0);

  ASSERT_TRUE(manager_->CreateSwitch("vale0").ok());
  const std::string too_long(16, 'p');
  for (const std::string& bad : {std::string(), std::string("-p"), std::string("p{1"),
                                 std::string("p:1"), std::string("p 1"), too_long}) {
    EXPECT_EQ(manager_->CreatePort("vale0", bad).status().code(),
              absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(manager_->CreatePipe("vale1").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(manager_->AttachNic("vale0", "eth0/1").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(manager_->CreateVmAttachment(Untrusted("vm/1")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ManagerTest, CreatingATakenNameIsAlreadyExistsAndChangesNothing) {
  ASSERT_TRUE(manager_->CreateSwitch("vale0").ok());
  EXPECT_EQ(manager_->CreateSwitch("vale0").status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(datapath_->CallCount(Op::kCreateSwitch), 1);

  ASSERT_TRUE(manager_->CreatePort("vale0", "p1").ok());
  EXPECT_EQ(manager_->CreatePort("vale0", "p1").status().code(),
            absl::StatusCode::kAlreadyExists);
  // Persistent ports and pipes are host-wide interfaces: one namespace.
  ASSERT_TRUE(manager_->CreateSwitch("vale9").ok());
  EXPECT_EQ(manager_->CreatePort("vale9", "p1").status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(manager_->CreatePipe("p1").status().code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(manager_->DeleteSwitch("vale9").ok());
  // Ports, NICs and VM ports share one namespace per switch.
  ASSERT_TRUE(manager_->AttachNic("vale0", "eth0").ok());
  EXPECT_EQ(manager_->CreatePort("vale0", "eth0").status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(manager_->CreateVmAttachment(Untrusted("p1")).status().code(),
            absl::StatusCode::kAlreadyExists);
  // A NIC belongs to one switch at a time.
  ASSERT_TRUE(manager_->CreateSwitch("vale1").ok());
  absl::StatusOr<NicRecord> moved = manager_->AttachNic("vale1", "eth0");
  EXPECT_EQ(moved.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(moved.status().message(), HasSubstr("detach it first"));

  DesiredState stored = Stored();
  EXPECT_EQ(stored.switches.size(), 2u);
  EXPECT_THAT(stored.ports, ElementsAre(PortRecord{"vale0", "p1"}));
  EXPECT_THAT(stored.nics, ElementsAre(NicRecord{"vale0", "eth0"}));
}

TEST_F(ManagerTest, UnknownObjectsAreNotFound) {
  EXPECT_EQ(manager_->DeleteSwitch("vale0").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_->GetSwitch("vale0").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_->CreatePort("vale0", "p1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_->ListPorts("vale0").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_->DetachNic("eth0").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_->DeletePipe("pp1").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_->GetVmAttachment("vm1").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(manager_->CreateSwitch("vale0").ok());
  // The host has no such interface: the datapath's NOT_FOUND comes through.
  EXPECT_EQ(manager_->AttachNic("vale0", "eth9").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Stored().nics.empty());
}

TEST_F(ManagerTest, SwitchInUseCannotBeDeleted) {
  ASSERT_TRUE(manager_->CreateSwitch("vale0").ok());
  ASSERT_TRUE(manager_->CreatePort("vale0", "p1").ok());
  absl::Status s = manager_->DeleteSwitch("vale0");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("1 port(s)"));
  ASSERT_TRUE(manager_->DeletePort("vale0", "p1").ok());
  EXPECT_TRUE(manager_->DeleteSwitch("vale0").ok());
  EXPECT_TRUE(Stored().switches.empty());
}

TEST_F(ManagerTest, SwitchHoldsAtMost254Ports) {
  ASSERT_TRUE(manager_->CreateSwitch("vale0").ok());
  ASSERT_TRUE(manager_->AttachNic("vale0", "eth0").ok());
  ASSERT_TRUE(manager_->CreateVmAttachment(Untrusted("vm1")).ok());
  for (int i = 0; i < 252; ++i) {
    ASSERT_TRUE(manager_->CreatePort("vale0", "p" + std::to_string(i)).ok()) << i;
  }
  absl::StatusOr<PortRecord> full = manager_->CreatePort("vale0", "one_more");
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(full.status().message(), HasSubstr("use another switch"));
  EXPECT_EQ(manager_->AttachNic("vale0", "eth1").status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(ManagerTest, SwitchCountIsLimited) {
  ASSERT_TRUE(Restart(ManagerLimits{.max_switches = 2}).ok());
  ASSERT_TRUE(manager_->CreateSwitch("vale0").ok());
  ASSERT_TRUE(manager_->CreateSwitch("vale1").ok());
  EXPECT_EQ(manager_->CreateSwitch("vale2").status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(ManagerTest, UntrustedAttachmentGetsPrivatePortSocketAndXml) {
  ASSERT_TRUE(manager_->CreateSwitch("vale0").ok());
  absl::StatusOr<VmAttachmentView> vm = manager_->CreateVmAttachment(Untrusted("vm1"));
  ASSERT_TRUE(vm.ok()) << vm.status();
  EXPECT_EQ(vm->netmap_name, "vale0:vm1");
  EXPECT_EQ(vm->socket_path, dir_ + "/ivshmem/vm1.sock");
  EXPECT_TRUE(std::filesystem::exists(vm->socket_path));
  EXPECT_EQ(vm->record.rings, 1u);
  EXPECT_EQ(vm->record.region_bytes, 4u << 20);
  EXPECT_EQ(vm->libvirt_xml,
            "<shmem name='vm1'><model type='ivshmem-doorbell'/><server path='" + dir_ +
                "/ivshmem/vm1.sock'/><msi vectors='3' ioeventfd='on'/></shmem>");
  EXPECT_THAT(manager_->GetSwitch("vale0")->vm_attachments, ElementsAre("vm1"));

  ASSERT_TRUE(manager_->DeleteVmAttachment("vm1").ok());
  EXPECT_FALSE(std::filesystem::exists(vm->socket_path));
  EXPECT_TRUE(Stored().vm_attachments.empty());
}

TEST_F(ManagerTest, TrustPolicyRules) {
  ASSERT_TRUE(manager_->CreateSwitch("vale0").ok());
  ASSERT_TRUE(manager_->CreatePipe("pp1").ok());
  VmAttachmentRequest no_policy = Untrusted("vm1");
  no_policy.trust.reset();
  EXPECT_EQ(manager_->CreateVmAttachment(no_policy).status().code(),
            absl::StatusCode::kInvalidArgument);
  VmAttachmentRequest sharing = Untrusted("vm1");
  sharing.peers = {"vm2"};
  absl::Status s = manager_->CreateVmAttachment(sharing).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("never share memory"));
  VmAttachmentRequest on_switch = Trusted("vm1", "pp1", {"vm2"});
  on_switch.switch_name = "vale0";
  EXPECT_EQ(manager_->CreateVmAttachment(on_switch).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(manager_->CreateVmAttachment(Trusted("vm1", "nopipe", {})).status().code(),
            absl::StatusCode::kNotFound);

  // The first trusted VM takes the master end; a second one must be a mutual peer.
  ASSERT_TRUE(manager_->CreateVmAttachment(Trusted("vm1", "pp1", {"vm2"})).ok());
  s = manager_->CreateVmAttachment(Trusted("vm3", "pp1", {"vm1"})).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("trust conflict"));
  EXPECT_THAT(s.message(), HasSubstr("does not list vm3"));
  s = manager_->CreateVmAttachment(Trusted("vm2", "pp1", {})).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  VmAttachmentRequest other_size = Trusted("vm2", "pp1", {"vm1"});
  other_size.region_bytes = 8 << 20;
  EXPECT_EQ(manager_->CreateVmAttachment(other_size).status().code(),
            absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<VmAttachmentView> vm2 =
      manager_->CreateVmAttachment(Trusted("vm2", "pp1", {"vm1"}));
  ASSERT_TRUE(vm2.ok()) << vm2.status();
  EXPECT_EQ(vm2->netmap_name, "pp1}0");
  EXPECT_EQ(PeerIdOf(vm2->record), 2);  // its own port page in the shared memory
  EXPECT_EQ(manager_->GetVmAttachment("vm1")->netmap_name, "pp1{0");
  EXPECT_EQ(manager_->CreateVmAttachment(Trusted("vm4", "pp1", {"vm1"})).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(manager_->DeletePipe("pp1").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(manager_->ListPipes()[0].vm_attachments, ElementsAre("vm1", "vm2"));
  EXPECT_EQ(Stored().vm_attachments.size(), 2u);
}

TEST_F(ManagerTest, TrustedPeersShareOneRegionUntrustedDoNot) {
  ASSERT_TRUE(manager_->CreateSwitch("vale0").ok());
  ASSERT_TRUE(manager_->CreatePipe("pp1").ok());
  ASSERT_TRUE(manager_->CreateVmAttachment(Trusted("a", "pp1", {"b"})).ok());
  ASSERT_TRUE(manager_->CreateVmAttachment(Trusted("b", "pp1", {"a"})).ok());
  ASSERT_TRUE(manager_->CreateVmAttachment(Untrusted("c")).ok());
  auto map = [&](absl::string_view name) {
    absl::StatusOr<VmAttachmentHandles> h =
        datapath_->AdoptVmAttachment(SpecOf(manager_->GetVmAttachment(name)->record));
    EXPECT_TRUE(h.ok());
    return static_cast<char*>(
        ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, h->region.get(), 0));
  };
  char* a = map("a");
  char* b = map("b");
  char* c = map("c");
  std::strcpy(a, "shared");
  EXPECT_STREQ(b, "shared");
  EXPECT_STRNE(c, "shared");
  for (char* p : {a, b, c}) ::munmap(p, 4096);
}

TEST_F(ManagerTest, BadVectorsAndRegionSizes) {
  ASSERT_TRUE(manager_->CreateSwitch("vale0").ok());
  VmAttachmentRequest too_many = Untrusted("vm1");
  too_many.rings = 17;
  EXPECT_EQ(manager_->CreateVmAttachment(too_many).status().code(),
            absl::StatusCode::kInvalidArgument);
  VmAttachmentRequest odd = Untrusted("vm1");
  odd.region_bytes = 3 << 20;
  absl::Status s = manager_->CreateVmAttachment(odd).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("power of two"));
  // The region must hold every ring's buffers (256 slots of 2 KiB each).
  VmAttachmentRequest tiny = Untrusted("vm1");
  tiny.region_bytes = 1 << 20;
  s = manager_->CreateVmAttachment(tiny).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("at least 2097152 bytes"));
  ASSERT_TRUE(manager_->CreatePipe("pp1").ok());
  VmAttachmentRequest wide = Trusted("vm2", "pp1", {});
  wide.rings = 4;  // both ends: 4096 buffers, 8 MiB, so the default grows
  absl::StatusOr<VmAttachmentView> vm = manager_->CreateVmAttachment(wide);
  ASSERT_TRUE(vm.ok()) << vm.status();
  EXPECT_EQ(vm->record.region_bytes, 16u << 20);
}

TEST_F(ManagerTest, DatapathFailureStoresNothing) {
  ASSERT_TRUE(manager_->CreateSwitch("vale0").ok());
  datapath_->InjectFailure(Op::kCreatePort, absl::ResourceExhaustedError("kernel: ENOMEM"));
  EXPECT_EQ(manager_->CreatePort("vale0", "p1").status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Stored().ports.empty());
  EXPECT_TRUE(manager_->ListPorts("")->empty());
}

TEST_F(ManagerTest, StoreFailureUndoesTheKernelStep) {
  ASSERT_TRUE(manager_->CreateSwitch("vale0").ok());
  store_->SetBeforeCommitHookForTest([] { return absl::InternalError("disk is full"); });
  EXPECT_EQ(manager_->CreatePort("vale0", "p1").status().code(), absl::StatusCode::kInternal);
  absl::Status vm = manager_->CreateVmAttachment(Untrusted("vm1")).status();
  EXPECT_EQ(vm.code(), absl::StatusCode::kInternal);
  store_->SetBeforeCommitHookForTest(nullptr);
  absl::StatusOr<DatapathInventory> kernel = datapath_->List();
  ASSERT_TRUE(kernel.ok());
  EXPECT_TRUE(kernel->switch_ports.empty());
  EXPECT_TRUE(kernel->vm_attachments.empty());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/ivshmem/vm1.sock"));
  // And the name is free again.
  EXPECT_TRUE(manager_->CreatePort("vale0", "p1").ok());
}

TEST_F(ManagerTest, FailedKernelDeleteKeepsTheObject) {
  ASSERT_TRUE(manager_->CreateSwitch("vale0").ok());
  ASSERT_TRUE(manager_->CreatePort("vale0", "p1").ok());
  datapath_->InjectFailure(Op::kDeletePort, absl::InternalError("kernel: EBUSY"));
  EXPECT_EQ(manager_->DeletePort("vale0", "p1").code(), absl::StatusCode::kInternal);
  EXPECT_THAT(Stored().ports, ElementsAre(PortRecord{"vale0", "p1"}));
  EXPECT_EQ(manager_->ListPorts("vale0")->size(), 1u);
}

TEST_F(ManagerTest, RestartAdoptsWhatTheKernelKept) {
  ASSERT_TRUE(manager_->CreateSwitch("vale0").ok());
  ASSERT_TRUE(manager_->CreatePort("vale0", "p1").ok());
  ASSERT_TRUE(manager_->AttachNic("vale0", "eth0").ok());
  ASSERT_TRUE(manager_->CreatePipe("pp1").ok());
  ASSERT_TRUE(manager_->CreateVmAttachment(Untrusted("vm1")).ok());
  ASSERT_TRUE(manager_->CreateVmAttachment(Trusted("vm2", "pp1", {})).ok());

  absl::StatusOr<ReconcileReport> report = Restart();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->adopted, 5);  // pipe, port, NIC, two VMs
  EXPECT_EQ(report->recreated, 0);
  EXPECT_TRUE(report->drift.empty());
  // The kernel objects were not recreated and the VM socket is served again.
  EXPECT_EQ(datapath_->CallCount(Op::kCreatePort), 1);
  EXPECT_EQ(datapath_->CallCount(Op::kCreateVmAttachment), 2);
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/ivshmem/vm1.sock"));
  EXPECT_EQ(manager_->ListVmAttachments().size(), 2u);
  EXPECT_EQ(manager_->GetSwitch("vale0")->ports, std::vector<std::string>{"p1"});
}

TEST_F(ManagerTest, RestartRecreatesWhatTheKernelLost) {
  ASSERT_TRUE(manager_->CreateSwitch("vale0").ok());
  ASSERT_TRUE(manager_->CreatePort("vale0", "p1").ok());
  ASSERT_TRUE(manager_->CreatePipe("pp1").ok());
  ASSERT_TRUE(manager_->CreateVmAttachment(Untrusted("vm1")).ok());
  datapath_ = std::make_unique<FakeDatapath>();  // module reloaded: empty kernel

  absl::StatusOr<ReconcileReport> report = Restart();
  ASSERT_TRUE(report.ok()) << report.status();
  // The port and the VM; a pipe, like a switch, exists in netmap only while
  // used, so making it again is no drift.
  EXPECT_EQ(report->recreated, 2);
  EXPECT_EQ(report->failed, 0);
  EXPECT_THAT(report->drift, ::testing::Contains(HasSubstr("port vale0:p1 was missing")));
  EXPECT_THAT(report->drift, ::testing::Not(::testing::Contains(HasSubstr("pipe"))));
  absl::StatusOr<DatapathInventory> kernel = datapath_->List();
  EXPECT_THAT(kernel->switch_ports, ::testing::UnorderedElementsAre(
                                        std::pair<std::string, std::string>{"vale0", "p1"},
                                        std::pair<std::string, std::string>{"vale0", "vm1"}));
  EXPECT_THAT(kernel->pipes, ElementsAre("pp1"));
}

TEST_F(ManagerTest, TrustedPairSharesOneRegionAcrossARestartAndAModuleReload) {
  ASSERT_TRUE(manager_->CreatePipe("pp1").ok());
  ASSERT_TRUE(manager_->CreateVmAttachment(Trusted("a", "pp1", {"b"})).ok());
  ASSERT_TRUE(manager_->CreateVmAttachment(Trusted("b", "pp1", {"a"})).ok());
  auto first_page = [&](absl::string_view name) {
    absl::StatusOr<VmAttachmentHandles> h =
        datapath_->AdoptVmAttachment(SpecOf(manager_->GetVmAttachment(name)->record));
    EXPECT_TRUE(h.ok()) << h.status();
    EXPECT_EQ(h->peer_id, name == "a" ? 1 : 2);
    return static_cast<char*>(
        ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, h->region.get(), 0));
  };
  for (int round = 0; round < 2; ++round) {
    absl::StatusOr<ReconcileReport> report = Restart();
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->failed, 0) << round;
    EXPECT_EQ(report->unmanaged, 0) << round;
    // Round 0: adopted; round 1 (after a reload): both ends rebuilt together.
    EXPECT_EQ(report->recreated, round == 0 ? 0 : 2);
    char* a = first_page("a");
    char* b = first_page("b");
    std::strcpy(a, round == 0 ? "kept" : "rebuilt");
    EXPECT_STREQ(b, round == 0 ? "kept" : "rebuilt");
    ::munmap(a, 4096);
    ::munmap(b, 4096);
    EXPECT_TRUE(std::filesystem::exists(dir_ + "/ivshmem/b.sock"));
    datapath_ = std::make_unique<FakeDatapath>();  // module reloaded: empty kernel
    ASSERT_TRUE(datapath_->CreatePipe("pp1").ok());
  }
}

TEST_F(ManagerTest, PipeEndsMustAgreeOnRingsAndTheRegionGoesWithTheLastEnd) {
  ASSERT_TRUE(manager_->CreatePipe("pp1").ok());
  VmAttachmentRequest a = Trusted("a", "pp1", {"b"});
  a.rings = 2;
  ASSERT_TRUE(manager_->CreateVmAttachment(a).ok());
  VmAttachmentRequest b = Trusted("b", "pp1", {"a"});
  b.rings = 1;
  absl::Status s = manager_->CreateVmAttachment(b).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("same rings"));
  b.rings = 0;  // unset: the pipe's
  absl::StatusOr<VmAttachmentView> vb = manager_->CreateVmAttachment(b);
  ASSERT_TRUE(vb.ok()) << vb.status();
  EXPECT_EQ(vb->record.rings, 2u);
  EXPECT_THAT(vb->libvirt_xml, HasSubstr("vectors='5'"));

  ASSERT_TRUE(manager_->DeleteVmAttachment("a").ok());
  EXPECT_THAT(datapath_->List()->vm_pipes, ElementsAre("pp1")) << "b still uses it";
  ASSERT_TRUE(manager_->DeleteVmAttachment("b").ok());
  EXPECT_TRUE(datapath_->List()->vm_pipes.empty());
}

TEST_F(ManagerTest, AttachmentsTheStoreDoesNotKnowAreDriftAndLeftAlone) {
  ASSERT_TRUE(datapath_->CreateSwitch("vale0").ok());
  ASSERT_TRUE(datapath_->CreatePipe("pp9").ok());
  VmAttachmentSpec spec{.name = "x", .trust = Trust::kTrusted, .pipe_name = "pp9",
                        .pipe_end = PipeEnd::kMaster, .rings = 1, .peer_id = 1,
                        .region_bytes = 1 << 20};
  ASSERT_TRUE(datapath_->CreateVmAttachment(spec).ok());
  ASSERT_TRUE(datapath_->CreateVmAttachment({.name = "stray", .trust = Trust::kUntrusted,
                                             .switch_name = "vale0", .rings = 1,
                                             .region_bytes = 1 << 20})
                  .ok());
  absl::StatusOr<ReconcileReport> report = Restart();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(report->drift, ::testing::Contains(HasSubstr("both ends of pipe pp9")));
  EXPECT_THAT(report->drift, ::testing::Contains(HasSubstr("VM attachment stray")));
  absl::StatusOr<DatapathInventory> kernel = datapath_->List();
  EXPECT_THAT(kernel->vm_pipes, ElementsAre("pp9"));
  EXPECT_THAT(kernel->vm_attachments, ElementsAre("stray"));
  EXPECT_EQ(datapath_->CallCount(Op::kDestroyVmAttachment), 0);
}

TEST_F(ManagerTest, RestartReportsDriftAndKeepsFailedObjectsConfigured) {
  ASSERT_TRUE(manager_->CreateSwitch("vale0").ok());
  ASSERT_TRUE(manager_->CreatePort("vale0", "p1").ok());
  ASSERT_TRUE(manager_->CreatePort("vale0", "p2").ok());
  // Behind the agent's back: p1 vanished, someone added "stray".
  ASSERT_TRUE(datapath_->DeletePort("vale0", "p1").ok());
  ASSERT_TRUE(datapath_->CreatePort("vale0", "stray").ok());
  datapath_->InjectFailure(Op::kCreatePort, absl::InternalError("kernel: ENOMEM"));

  absl::StatusOr<ReconcileReport> report = Restart();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->adopted, 1);
  EXPECT_EQ(report->failed, 1);
  EXPECT_EQ(report->unmanaged, 1);
  EXPECT_THAT(report->drift, ::testing::Contains(HasSubstr("vale0:stray exists in the kernel")));
  EXPECT_THAT(report->drift, ::testing::Contains(HasSubstr("could not be recreated: kernel")));
  EXPECT_EQ(manager_->ListPorts("vale0")->size(), 2u);  // p1 still configured
  EXPECT_EQ(manager_->LastReconcile().unmanaged, 1);
  // The stray port is left alone.
  EXPECT_EQ(datapath_->List()->switch_ports.size(), 2u);
}

TEST_F(ManagerTest, MissingModuleStopsStartWithInstructions) {
  datapath_->SetModuleLoaded(false);
  absl::StatusOr<ReconcileReport> report = Restart();
  EXPECT_EQ(report.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(report.status().message(), HasSubstr("modprobe ptnetmap"));
}

TEST_F(ManagerTest, StatsAndCounts) {
  ASSERT_TRUE(manager_->CreateSwitch("vale0").ok());
  ASSERT_TRUE(manager_->CreatePort("vale0", "p1").ok());
  ASSERT_TRUE(manager_->AttachNic("vale0", "eth0").ok());
  ASSERT_TRUE(manager_->CreateVmAttachment(Untrusted("vm1")).ok());
  datapath_->AddTraffic("vale0:p1", {.rx_packets = 10, .rx_bytes = 600});
  datapath_->AddTraffic("vale0:vm1", {.tx_packets = 7, .drops = {.ring_full = 3}, .kicks = 5});
  absl::StatusOr<Stats> stats = manager_->GetStats();
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(stats->ports.size(), 2u);
  EXPECT_EQ(stats->ports[1].name, "p1");
  EXPECT_EQ(stats->ports[1].counters.rx_packets, 10u);
  EXPECT_EQ(stats->ports[0].kind, "nic");
  ASSERT_EQ(stats->vm_attachments.size(), 1u);
  EXPECT_EQ(stats->vm_attachments[0].counters.drops.ring_full, 3u);
  EXPECT_EQ(stats->vm_attachments[0].counters.kicks, 5u);
  ObjectCounts counts = manager_->Counts();
  EXPECT_EQ(counts.switches, 1);
  EXPECT_EQ(counts.ports, 1);
  EXPECT_EQ(counts.nics, 1);
  EXPECT_EQ(counts.vm_untrusted, 1);
  datapath_->SetModuleLoaded(false);
  EXPECT_EQ(manager_->GetStats().status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace ptnetmap::agent
