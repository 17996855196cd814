#include "agent/state_store.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ptnetmap::agent {
namespace {

// Version 1. Foreign keys keep the file consistent on their own even if a
// caller forgot an ordering rule.
constexpr absl::string_view kSchemaV1 = R"sql(
CREATE TABLE switches (
  name TEXT PRIMARY KEY
) WITHOUT ROWID;
CREATE TABLE ports (
  switch TEXT NOT NULL REFERENCES switches(name),
  name TEXT NOT NULL,
  PRIMARY KEY (switch, name)
) WITHOUT ROWID;
CREATE TABLE nics (
  nic TEXT PRIMARY KEY,
  switch TEXT NOT NULL REFERENCES switches(name)
) WITHOUT ROWID;
CREATE TABLE pipes (
  name TEXT PRIMARY KEY
) WITHOUT ROWID;
CREATE TABLE vm_attachments (
  name TEXT PRIMARY KEY,
  trust INTEGER NOT NULL CHECK (trust IN (1, 2)),
  switch TEXT REFERENCES switches(name),
  pipe TEXT REFERENCES pipes(name),
  pipe_end INTEGER NOT NULL CHECK (pipe_end IN (0, 1)),
  rings INTEGER NOT NULL,
  region_bytes INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE vm_peers (
  vm TEXT NOT NULL REFERENCES vm_attachments(name) ON DELETE CASCADE,
  peer TEXT NOT NULL,
  PRIMARY KEY (vm, peer)
) WITHOUT ROWID;
PRAGMA user_version = 1;
)sql";

}  // namespace

absl::StatusOr<std::unique_ptr<StateStore>> StateStore::Open(const std::string& path) {
  absl::StatusOr<std::unique_ptr<SqliteDb>> db = SqliteDb::Open(path);
  if (!db.ok()) return db.status();
  std::unique_ptr<StateStore> store(new StateStore(*std::move(db)));
  // WAL + FULL: a commit is on disk before COMMIT returns, so kill -9 or a
  // power cut never loses an acknowledged change.
  if (absl::Status s = store->db_->Exec(
          "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = store->Migrate(); !s.ok()) return s;
  // Reading everything once proves the file is sound before we serve.
  if (absl::StatusOr<DesiredState> state = store->Load(); !state.ok()) return state.status();
  return store;
}

absl::Status StateStore::Migrate() {
  absl::StatusOr<SqliteStatement> query = db_->Prepare("PRAGMA user_version");
  if (!query.ok()) return query.status();
  absl::StatusOr<bool> row = query->Step();
  if (!row.ok()) return row.status();
  const int64_t version = *row ? query->ColumnInt(0) : 0;
  if (version == kSchemaVersion) return absl::OkStatus();
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the configuration database ", db_->path(), " has schema version ", version,
        ", written by a newer ptnetd; this ptnetd knows version ", kSchemaVersion,
        ". Upgrade ptnetd (downgrading the database is not supported)."));
  }
  return InTransaction([&] { return db_->Exec(kSchemaV1); });
}

absl::Status StateStore::InTransaction(const std::function<absl::Status()>& body) {
  absl::StatusOr<SqliteTransaction> tx = SqliteTransaction::Begin(*db_);
  if (!tx.ok()) return tx.status();
  if (absl::Status s = body(); !s.ok()) return s;
  if (before_commit_) {
    if (absl::Status s = before_commit_(); !s.ok()) return s;
  }
  return tx->Commit();
}

absl::Status StateStore::Write(absl::string_view sql,
                               std::initializer_list<absl::string_view> args,
                               absl::string_view what) {
  absl::StatusOr<SqliteStatement> stmt = db_->Prepare(sql);
  if (!stmt.ok()) return stmt.status();
  int index = 1;
  for (absl::string_view arg : args) stmt->Bind(index++, arg);
  if (absl::Status s = stmt->Run(); !s.ok()) return s;
  if (!what.empty() && db_->Changes() == 0) {
    return absl::NotFoundError(absl::StrCat(what, " is not in the configuration database"));
  }
  return absl::OkStatus();
}

absl::StatusOr<DesiredState> StateStore::Load() {
  DesiredState state;
  // One read transaction so that the snapshot is consistent.
  absl::StatusOr<SqliteTransaction> tx = SqliteTransaction::Begin(*db_);
  if (!tx.ok()) return tx.status();

  auto for_each_row = [&](absl::string_view sql,
                          const std::function<void(SqliteStatement&)>& fn) -> absl::Status {
    absl::StatusOr<SqliteStatement> stmt = db_->Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    while (true) {
      absl::StatusOr<bool> row = stmt->Step();
      if (!row.ok()) return row.status();
      if (!*row) return absl::OkStatus();
      fn(*stmt);
    }
  };
  absl::Status s = for_each_row("SELECT name FROM switches ORDER BY name", [&](auto& r) {
    state.switches.push_back({r.ColumnText(0)});
  });
  if (s.ok()) {
    s = for_each_row("SELECT switch, name FROM ports ORDER BY switch, name", [&](auto& r) {
      state.ports.push_back({r.ColumnText(0), r.ColumnText(1)});
    });
  }
  if (s.ok()) {
    s = for_each_row("SELECT switch, nic FROM nics ORDER BY nic", [&](auto& r) {
      state.nics.push_back({r.ColumnText(0), r.ColumnText(1)});
    });
  }
  if (s.ok()) {
    s = for_each_row("SELECT name FROM pipes ORDER BY name", [&](auto& r) {
      state.pipes.push_back({r.ColumnText(0)});
    });
  }
  if (s.ok()) {
    s = for_each_row(
        "SELECT name, trust, ifnull(switch, ''), ifnull(pipe, ''), pipe_end, rings, "
        "region_bytes FROM vm_attachments ORDER BY name",
        [&](auto& r) {
          state.vm_attachments.push_back(VmAttachmentRecord{
              .name = r.ColumnText(0),
              .trust = static_cast<Trust>(r.ColumnInt(1)),
              .switch_name = r.ColumnText(2),
              .pipe_name = r.ColumnText(3),
              .pipe_end = static_cast<PipeEnd>(r.ColumnInt(4)),
              .peers = {},
              .rings = static_cast<uint32_t>(r.ColumnInt(5)),
              .region_bytes = static_cast<uint64_t>(r.ColumnInt(6)),
          });
        });
  }
  if (s.ok()) {
    s = for_each_row("SELECT vm, peer FROM vm_peers ORDER BY vm, peer", [&](auto& r) {
      std::string vm = r.ColumnText(0);
      auto it = std::find_if(state.vm_attachments.begin(), state.vm_attachments.end(),
                             [&](const VmAttachmentRecord& v) { return v.name == vm; });
      if (it != state.vm_attachments.end()) it->peers.push_back(r.ColumnText(1));
    });
  }
  if (!s.ok()) return s;
  if (absl::Status c = tx->Commit(); !c.ok()) return c;
  return state;
}

absl::Status StateStore::AddSwitch(const SwitchRecord& sw) {
  return InTransaction([&] { return Write("INSERT INTO switches (name) VALUES (?)", {sw.name}); });
}

absl::Status StateStore::RemoveSwitch(absl::string_view name) {
  return InTransaction([&] {
    return Write("DELETE FROM switches WHERE name = ?", {name}, absl::StrCat("switch ", name));
  });
}

absl::Status StateStore::AddPort(const PortRecord& port) {
  return InTransaction([&] {
    return Write("INSERT INTO ports (switch, name) VALUES (?, ?)", {port.switch_name, port.name});
  });
}

absl::Status StateStore::RemovePort(absl::string_view switch_name, absl::string_view name) {
  return InTransaction([&] {
    return Write("DELETE FROM ports WHERE switch = ? AND name = ?", {switch_name, name},
                 absl::StrCat("port ", SwitchPortNetmapName(switch_name, name)));
  });
}

absl::Status StateStore::AddNic(const NicRecord& nic) {
  return InTransaction([&] {
    return Write("INSERT INTO nics (nic, switch) VALUES (?, ?)", {nic.nic, nic.switch_name});
  });
}

absl::Status StateStore::RemoveNic(absl::string_view nic) {
  return InTransaction([&] {
    return Write("DELETE FROM nics WHERE nic = ?", {nic}, absl::StrCat("NIC ", nic));
  });
}

absl::Status StateStore::AddPipe(const PipeRecord& pipe) {
  return InTransaction([&] { return Write("INSERT INTO pipes (name) VALUES (?)", {pipe.name}); });
}

absl::Status StateStore::RemovePipe(absl::string_view name) {
  return InTransaction([&] {
    return Write("DELETE FROM pipes WHERE name = ?", {name}, absl::StrCat("pipe ", name));
  });
}

absl::Status StateStore::AddVmAttachment(const VmAttachmentRecord& vm) {
  return InTransaction([&]() -> absl::Status {
    absl::StatusOr<SqliteStatement> insert = db_->Prepare(
        "INSERT INTO vm_attachments (name, trust, switch, pipe, pipe_end, rings, region_bytes) "
        "VALUES (?, ?, nullif(?, ''), nullif(?, ''), ?, ?, ?)");
    if (!insert.ok()) return insert.status();
    insert->Bind(1, vm.name)
        .Bind(2, static_cast<int64_t>(vm.trust))
        .Bind(3, vm.switch_name)
        .Bind(4, vm.pipe_name)
        .Bind(5, static_cast<int64_t>(vm.pipe_end))
        .Bind(6, static_cast<int64_t>(vm.rings))
        .Bind(7, static_cast<int64_t>(vm.region_bytes));
    if (absl::Status s = insert->Run(); !s.ok()) return s;
    for (const std::string& peer : vm.peers) {
      if (absl::Status s = Write("INSERT INTO vm_peers (vm, peer) VALUES (?, ?)", {vm.name, peer});
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  });
}

absl::Status StateStore::RemoveVmAttachment(absl::string_view name) {
  return InTransaction([&] {
    return Write("DELETE FROM vm_attachments WHERE name = ?", {name},
                 absl::StrCat("VM attachment ", name));
  });
}

absl::Status StateStore::LimitSizeForTest(int extra_pages) {
  // The WAL defers growth of the main file; checkpoint so page_count is real.
  if (absl::Status s = db_->Exec("PRAGMA wal_checkpoint(TRUNCATE)"); !s.ok()) return s;
  int64_t pages = 0;
  {
    absl::StatusOr<SqliteStatement> count = db_->Prepare("PRAGMA page_count");
    if (!count.ok()) return count.status();
    absl::StatusOr<bool> row = count->Step();
    if (!row.ok()) return row.status();
    pages = count->ColumnInt(0);
  }
  return db_->Exec(absl::StrCat("PRAGMA max_page_count = ", pages + extra_pages));
}

}  // namespace ptnetmap::agent
