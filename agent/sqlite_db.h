// A small RAII layer over the sqlite3 C API: a connection, prepared
// statements, and transactions that roll back unless committed. Errors come
// back as absl::Status with SQLite's own message attached.
#ifndef PTNETMAP_AGENT_SQLITE_DB_H_
#define PTNETMAP_AGENT_SQLITE_DB_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ptnetmap::agent {

class SqliteDb;

// One prepared statement. Bind with 1-based indexes, then Step until it
// returns false (no more rows) or an error.
class SqliteStatement {
 public:
  SqliteStatement(SqliteStatement&&) = default;
  ~SqliteStatement() = default;

  SqliteStatement& Bind(int index, absl::string_view text);
  SqliteStatement& Bind(int index, int64_t value);
  // true: a row is available through Column*(); false: done.
  absl::StatusOr<bool> Step();
  // Runs a statement that returns no rows.
  absl::Status Run();

  std::string ColumnText(int column) const;
  int64_t ColumnInt(int column) const;

 private:
  friend class SqliteDb;
  struct Finalizer {
    void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
  };
  SqliteStatement(SqliteDb* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}

  SqliteDb* db_;
  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
};

class SqliteDb {
 public:
  // Opens (creating if needed) the database file at `path`.
  static absl::StatusOr<std::unique_ptr<SqliteDb>> Open(const std::string& path);
  ~SqliteDb();

  const std::string& path() const { return path_; }
  // Runs one or more statements without results (schema, pragmas).
  absl::Status Exec(absl::string_view sql);
  absl::StatusOr<SqliteStatement> Prepare(absl::string_view sql);
  // Rows changed by the last INSERT/UPDATE/DELETE.
  int Changes() const;
  // Converts SQLite result `code` into a status whose message names the
  // database file, says what failed and what to do about it.
  absl::Status Error(int code, absl::string_view what) const;

 private:
  SqliteDb(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
  std::string path_;
  sqlite3* db_;
};

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless Commit()
// succeeded. IMMEDIATE takes the write lock up front so a transaction never
// fails half-way because another connection started writing.
class SqliteTransaction {
 public:
  static absl::StatusOr<SqliteTransaction> Begin(SqliteDb& db);
  SqliteTransaction(SqliteTransaction&& other) noexcept
      : db_(std::exchange(other.db_, nullptr)) {}
  SqliteTransaction& operator=(SqliteTransaction&&) = delete;
  ~SqliteTransaction();
  absl::Status Commit();

 private:
  explicit SqliteTransaction(SqliteDb* db) : db_(db) {}
  SqliteDb* db_;  // null once committed or rolled back
};

}  // namespace ptnetmap::agent

#endif  // PTNETMAP_AGENT_SQLITE_DB_H_
