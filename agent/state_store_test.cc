#include "agent/state_store.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ptnetmap::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class StateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ptnetd_store_XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/ptnetd.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<StateStore> OpenOrDie() {
    absl::StatusOr<std::unique_ptr<StateStore>> store = StateStore::Open(path_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  std::string dir_;
  std::string path_;
};

VmAttachmentRecord TrustedVm() {
  return VmAttachmentRecord{.name = "vm1", .trust = Trust::kTrusted, .switch_name = "",
                            .pipe_name = "pp1", .pipe_end = PipeEnd::kSlave,
                            .peers = {"vm2", "vm3"}, .rings = 4, .region_bytes = 1 << 22};
}

TEST_F(StateStoreTest, ReopenKeepsEveryKindOfObject) {
  {
    auto store = OpenOrDie();
    ASSERT_TRUE(store->AddSwitch({"vale0"}).ok());
    ASSERT_TRUE(store->AddPort({"vale0", "p1"}).ok());
    ASSERT_TRUE(store->AddNic({"vale0", "eth0"}).ok());
    ASSERT_TRUE(store->AddPipe({"pp1"}).ok());
    ASSERT_TRUE(store->AddVmAttachment(TrustedVm()).ok());
  }
  auto store = OpenOrDie();
  absl::StatusOr<DesiredState> state = store->Load();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_THAT(state->switches, ElementsAre(SwitchRecord{"vale0"}));
  EXPECT_THAT(state->ports, ElementsAre(PortRecord{"vale0", "p1"}));
  EXPECT_THAT(state->nics, ElementsAre(NicRecord{"vale0", "eth0"}));
  EXPECT_THAT(state->pipes, ElementsAre(PipeRecord{"pp1"}));
  EXPECT_THAT(state->vm_attachments, ElementsAre(TrustedVm()));
}

TEST_F(StateStoreTest, DuplicatesAndMissingRowsAreReported) {
  auto store = OpenOrDie();
  ASSERT_TRUE(store->AddSwitch({"vale0"}).ok());
  EXPECT_EQ(store->AddSwitch({"vale0"}).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store->RemoveSwitch("vale1").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->RemovePort("vale0", "nope").code(), absl::StatusCode::kNotFound);
}

TEST_F(StateStoreTest, SchemaRefusesPortsOfUnknownSwitchesAndSwitchesInUse) {
  auto store = OpenOrDie();
  EXPECT_EQ(store->AddPort({"vale9", "p1"}).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store->AddSwitch({"vale0"}).ok());
  ASSERT_TRUE(store->AddPort({"vale0", "p1"}).ok());
  EXPECT_EQ(store->RemoveSwitch("vale0").code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(StateStoreTest, FailureBeforeCommitRollsBackEveryTable) {
  auto store = OpenOrDie();
  ASSERT_TRUE(store->AddPipe({"pp1"}).ok());
  store->SetBeforeCommitHookForTest([] { return absl::InternalError("injected"); });
  // The attachment row and its peer rows go in one transaction.
  EXPECT_EQ(store->AddVmAttachment(TrustedVm()).code(), absl::StatusCode::kInternal);
  store->SetBeforeCommitHookForTest(nullptr);
  absl::StatusOr<DesiredState> state = store->Load();
  ASSERT_TRUE(state.ok());
  EXPECT_TRUE(state->vm_attachments.empty());
  // No orphan peer rows: adding it now works and yields exactly its peers.
  ASSERT_TRUE(store->AddVmAttachment(TrustedVm()).ok());
  EXPECT_THAT(store->Load()->vm_attachments, ElementsAre(TrustedVm()));
}

TEST_F(StateStoreTest, FullDiskGivesClearErrorAndKeepsState) {
  auto store = OpenOrDie();
  ASSERT_TRUE(store->AddSwitch({"vale0"}).ok());
  ASSERT_TRUE(store->LimitSizeForTest(0).ok()) << store->LimitSizeForTest(0);
  absl::Status status;
  int added = 0;
  // Fill until the "disk" is full; each failure must leave the file as it was.
  for (int i = 0; i < 2000 && status.ok(); ++i) {
    VmAttachmentRecord vm = TrustedVm();
    vm.name = "vm" + std::to_string(i) + std::string(200, 'x');
    vm.pipe_name = "";
    vm.trust = Trust::kUntrusted;
    vm.switch_name = "vale0";
    vm.peers.clear();
    status = store->AddVmAttachment(vm);
    if (status.ok()) ++added;
  }
  ASSERT_FALSE(status.ok()) << "the size limit never hit";
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status.message(), HasSubstr("disk is full"));
  EXPECT_THAT(status.message(), HasSubstr(path_));
  absl::StatusOr<DesiredState> state = store->Load();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->vm_attachments.size(), static_cast<size_t>(added));
}

TEST_F(StateStoreTest, CorruptFileIsRefusedWithInstructions) {
  {
    std::ofstream out(path_, std::ios::binary);
    out << std::string(8192, 'Z');
  }
  absl::StatusOr<std::unique_ptr<StateStore>> store = StateStore::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(store.status().message(), HasSubstr("corrupt"));
  EXPECT_THAT(store.status().message(), HasSubstr("move it aside"));
}

TEST_F(StateStoreTest, NewerSchemaIsRefused) {
  {
    auto db = SqliteDb::Open(path_);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("PRAGMA user_version = 99").ok());
  }
  absl::StatusOr<std::unique_ptr<StateStore>> store = StateStore::Open(path_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("Upgrade ptnetd"));
}

TEST_F(StateStoreTest, MissingDirectorySaysWhichFlag) {
  absl::StatusOr<std::unique_ptr<StateStore>> store =
      StateStore::Open(dir_ + "/no/such/dir/ptnetd.db");
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr("--db_path"));
}

}  // namespace
}  // namespace ptnetmap::agent
