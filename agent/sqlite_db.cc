#include "agent/sqlite_db.h"

#include "absl/strings/str_cat.h"

namespace ptnetmap::agent {

absl::StatusOr<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  // sqlite3_open_v2 returns a handle even on failure, to carry the message.
  std::unique_ptr<SqliteDb> db(new SqliteDb(path, raw));
  if (rc != SQLITE_OK) return db->Error(rc, "open");
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, 2000);
  return db;
}

SqliteDb::~SqliteDb() { sqlite3_close(db_); }

absl::Status SqliteDb::Exec(absl::string_view sql) {
  int rc = sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? absl::OkStatus() : Error(rc, sql);
}

absl::StatusOr<SqliteStatement> SqliteDb::Prepare(absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return Error(rc, sql);
  return SqliteStatement(this, stmt);
}

int SqliteDb::Changes() const { return sqlite3_changes(db_); }

absl::Status SqliteDb::Error(int code, absl::string_view what) const {
  std::string detail = absl::StrCat(db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(code),
                                    " (while running: ", what, ")");
  switch (code & 0xff) {
    case SQLITE_FULL:
      return absl::InternalError(absl::StrCat(
          "cannot save configuration in ", path_,
          ": the disk is full; free space on its filesystem and retry (nothing was changed): ",
          detail));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(absl::StrCat(
          "the configuration database ", path_,
          " is corrupt; restore it from a backup, or move it aside to start with an "
          "empty configuration: ",
          detail));
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::PermissionDeniedError(absl::StrCat(
          "cannot open or write the configuration database ", path_,
          "; check that its directory exists and is writable by ptnetd (flag --db_path): ",
          detail));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(absl::StrCat(
          "the configuration database ", path_,
          " is locked by another process; is a second ptnetd running? ", detail));
    case SQLITE_CONSTRAINT:
      if (code == SQLITE_CONSTRAINT_PRIMARYKEY || code == SQLITE_CONSTRAINT_UNIQUE) {
        return absl::AlreadyExistsError(absl::StrCat("already stored: ", detail));
      }
      return absl::FailedPreconditionError(absl::StrCat("stored objects depend on it: ", detail));
    case SQLITE_IOERR:
      return absl::InternalError(absl::StrCat(
          "I/O error on the configuration database ", path_,
          "; check the disk (dmesg) and retry: ", detail));
    default:
      return absl::InternalError(
          absl::StrCat("configuration database ", path_, " failed: ", detail));
  }
}

SqliteStatement& SqliteStatement::Bind(int index, absl::string_view text) {
  sqlite3_bind_text(stmt_.get(), index, text.data(), static_cast<int>(text.size()),
                    SQLITE_TRANSIENT);
  return *this;
}

SqliteStatement& SqliteStatement::Bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_.get(), index, value);
  return *this;
}

absl::StatusOr<bool> SqliteStatement::Step() {
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->Error(rc, sqlite3_sql(stmt_.get()));
}

absl::Status SqliteStatement::Run() {
  absl::StatusOr<bool> row = Step();
  return row.ok() ? absl::OkStatus() : row.status();
}

std::string SqliteStatement::ColumnText(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_.get(), column);
  return text ? std::string(reinterpret_cast<const char*>(text)) : std::string();
}

int64_t SqliteStatement::ColumnInt(int column) const {
  return sqlite3_column_int64(stmt_.get(), column);
}

absl::StatusOr<SqliteTransaction> SqliteTransaction::Begin(SqliteDb& db) {
  if (absl::Status s = db.Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  return SqliteTransaction(&db);
}

SqliteTransaction::~SqliteTransaction() {
  // Nothing useful can be done if the rollback itself fails: SQLite then
  // rolls back on the next open, from the journal.
  if (db_ != nullptr) (void)db_->Exec("ROLLBACK");
}

absl::Status SqliteTransaction::Commit() {
  absl::Status status = db_->Exec("COMMIT");
  // A failed COMMIT leaves the transaction open; the destructor rolls back.
  if (status.ok()) db_ = nullptr;
  return status;
}

}  // namespace ptnetmap::agent
