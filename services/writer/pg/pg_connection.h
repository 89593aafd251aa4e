// One PostgreSQL session, and the boundary where libpqxx exceptions become absl::Status.
//
// PgConnection is a libpqxx connection that also exposes its libpq handle: libpqxx 6.4 has no
// public API for raw COPY data, and the writer streams binary COPY (copy_encoder.h). Only the
// writer's pg_* modules, file_ledger and migrator include this header.
#ifndef ECOMSTREAM_SERVICES_WRITER_PG_PG_CONNECTION_H_
#define ECOMSTREAM_SERVICES_WRITER_PG_PG_CONNECTION_H_

#include <exception>
#include <memory>
#include <string>

#include <pqxx/pqxx>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ecomstream::writer {

class PgConnection : public pqxx::connection_base {
 public:
  // Connects. libpq reads PG* variables for anything `dsn` leaves out; a 10 s connect timeout is
  // added unless the DSN sets one. kUnavailable when the server cannot be reached or refuses
  // the login.
  static absl::StatusOr<std::unique_ptr<PgConnection>> Open(const std::string& dsn);
  ~PgConnection();

  // Streams `data` (complete COPY payload, e.g. from CopyEncoder) into `copy_from_stdin_sql`
  // ("COPY t (a, b) FROM STDIN (FORMAT binary)") inside `txn`. Throws like libpqxx does:
  // pqxx::sql_error with the server's SQLSTATE, or pqxx::broken_connection.
  void CopyIn(pqxx::transaction_base& txn, const std::string& copy_from_stdin_sql, absl::string_view data);

  // Per-session state of the modules using this connection (prepared statements, temp tables).
  bool sink_ready = false;
  int64_t staged_rows = 0;  // rows COPYed into the sink's staging table since its last TRUNCATE
  bool ledger_ready = false;

 private:
  class Policy : public pqxx::connect_direct {
   public:
    explicit Policy(const std::string& options) : pqxx::connect_direct(options) {}
    handle do_startconnect(handle orig) override;
    handle do_completeconnect(handle orig) override;
    handle do_dropconnect(handle orig) noexcept override;
    handle do_disconnect(handle orig) noexcept override;
    handle raw() const { return raw_; }

   private:
    handle raw_ = nullptr;
  };

  explicit PgConnection(const std::string& dsn);

  Policy policy_;
};

// Adds connect_timeout=`seconds` to a key=value or URI DSN that does not set one.
std::string WithConnectTimeout(const std::string& dsn, int seconds);

// The status for an exception thrown by libpqxx (or PgConnection::CopyIn):
//   connection lost, COMMIT outcome unknown, server shutting down,
//   too many connections, deadlock/serialization failure           -> kUnavailable
//   undefined table/column/function (schema not migrated)          -> kFailedPrecondition
//   insufficient privilege                                         -> kPermissionDenied
//   anything else                                                  -> kInternal
// The message carries the SQLSTATE and the server's message.
absl::Status StatusFromPgException(const std::exception& e);

// The SQLSTATE of a pqxx::sql_error, "" for other exceptions.
std::string SqlState(const std::exception& e);

// Class 22 (data exception) or 23 (integrity constraint violation): the row's fault.
bool IsDataError(const std::string& sqlstate);

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_PG_PG_CONNECTION_H_
