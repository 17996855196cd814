// StateStore: the agent's desired configuration in an embedded SQLite file.
//
// Every mutation is one transaction: it is either committed whole (and then
// survives kill -9 and power loss: WAL with synchronous=FULL) or leaves the
// file exactly as it was. A full disk, an unwritable directory or a corrupt
// file each return an error that says what to do. The schema is versioned
// with PRAGMA user_version; a newer schema than this agent knows is refused
// rather than misread.
#ifndef PTNETMAP_AGENT_STATE_STORE_H_
#define PTNETMAP_AGENT_STATE_STORE_H_

#include <functional>
#include <initializer_list>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/model.h"
#include "agent/sqlite_db.h"

namespace ptnetmap::agent {

class StateStore {
 public:
  // The schema version this agent writes.
  static constexpr int kSchemaVersion = 1;

  // Opens or creates the database at `path` and checks it. Errors:
  // DATA_LOSS (corrupt file), PERMISSION_DENIED (cannot open or write),
  // FAILED_PRECONDITION (schema from a newer agent).
  static absl::StatusOr<std::unique_ptr<StateStore>> Open(const std::string& path);

  // Reads the whole configuration.
  absl::StatusOr<DesiredState> Load();

  // Inserts fail with ALREADY_EXISTS on a duplicate key; deletes fail with
  // NOT_FOUND when nothing matched. Referential rules (no port without its
  // switch) are enforced by the schema as FAILED_PRECONDITION.
  absl::Status AddSwitch(const SwitchRecord& sw);
  absl::Status RemoveSwitch(absl::string_view name);
  absl::Status AddPort(const PortRecord& port);
  absl::Status RemovePort(absl::string_view switch_name, absl::string_view name);
  absl::Status AddNic(const NicRecord& nic);
  absl::Status RemoveNic(absl::string_view nic);
  absl::Status AddPipe(const PipeRecord& pipe);
  absl::Status RemovePipe(absl::string_view name);
  absl::Status AddVmAttachment(const VmAttachmentRecord& vm);
  absl::Status RemoveVmAttachment(absl::string_view name);

  // Tests only: called inside every mutation's transaction just before
  // COMMIT; a non-OK status aborts the transaction with that status.
  using CommitHook = std::function<absl::Status()>;
  void SetBeforeCommitHookForTest(CommitHook hook) { before_commit_ = std::move(hook); }
  // Tests only: limits the file to its current size plus `extra_pages`, as
  // a full disk would.
  absl::Status LimitSizeForTest(int extra_pages);

 private:
  explicit StateStore(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}
  absl::Status Migrate();
  // Runs `body` in a transaction and commits it.
  absl::Status InTransaction(const std::function<absl::Status()>& body);
  // Runs one statement with text parameters. With a non-empty `what`, "no
  // row matched" becomes NOT_FOUND naming `what`.
  absl::Status Write(absl::string_view sql, std::initializer_list<absl::string_view> args,
                     absl::string_view what = {});

  std::unique_ptr<SqliteDb> db_;
  CommitHook before_commit_;
};

}  // namespace ptnetmap::agent

#endif  // PTNETMAP_AGENT_STATE_STORE_H_
