#include "services/writer/pg/pg_connection.h"

#include <libpq-fe.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace ecomstream::writer {
namespace {

template <typename T>
bool Is(const std::exception& e) {
  return dynamic_cast<const T*>(&e) != nullptr;
}

// PQputCopyData takes an int length; libpq buffers and flushes on its own.
constexpr size_t kCopyChunkBytes = 1 << 20;

std::string ErrorFromResult(const PGresult* result) {
  const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
  const char* detail = PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL);
  const char* context = PQresultErrorField(result, PG_DIAG_CONTEXT);
  std::string message = primary != nullptr ? primary : PQresultErrorMessage(result);
  if (detail != nullptr) absl::StrAppend(&message, " (", detail, ")");
  if (context != nullptr) absl::StrAppend(&message, " [", context, "]");
  return message;
}

}  // namespace

PgConnection::Policy::handle PgConnection::Policy::do_startconnect(handle orig) {
  raw_ = pqxx::connect_direct::do_startconnect(orig);
  return raw_;
}

PgConnection::Policy::handle PgConnection::Policy::do_completeconnect(handle orig) {
  raw_ = pqxx::connect_direct::do_completeconnect(orig);
  return raw_;
}

PgConnection::Policy::handle PgConnection::Policy::do_dropconnect(handle orig) noexcept {
  raw_ = pqxx::connect_direct::do_dropconnect(orig);
  return raw_;
}

PgConnection::Policy::handle PgConnection::Policy::do_disconnect(handle orig) noexcept {
  raw_ = pqxx::connect_direct::do_disconnect(orig);
  return raw_;
}

PgConnection::PgConnection(const std::string& dsn) : pqxx::connection_base(policy_), policy_(dsn) {
  init();
  // A lost session must surface as an error: its temp tables and prepared statements are gone,
  // and PgPool replaces it. (libpqxx would otherwise reconnect silently.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  inhibit_reactivation(true);
#pragma GCC diagnostic pop
}

PgConnection::~PgConnection() { close(); }

absl::StatusOr<std::unique_ptr<PgConnection>> PgConnection::Open(const std::string& dsn) {
  try {
    std::unique_ptr<PgConnection> connection(new PgConnection(WithConnectTimeout(dsn, 10)));
    pqxx::nontransaction setup(*connection);
    setup.exec("SET client_min_messages = warning");
    return connection;
  } catch (const pqxx::broken_connection& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to the database: ", absl::StripTrailingAsciiWhitespace(e.what())));
  } catch (const std::exception& e) {
    return StatusFromPgException(e);
  }
}

void PgConnection::CopyIn(pqxx::transaction_base& txn, const std::string& copy_from_stdin_sql,
                          absl::string_view data) {
  txn.exec(copy_from_stdin_sql);
  PGconn* raw = policy_.raw();
  if (raw == nullptr) throw pqxx::broken_connection("COPY without a connection");
  for (size_t offset = 0; offset < data.size(); offset += kCopyChunkBytes) {
    const size_t n = std::min(kCopyChunkBytes, data.size() - offset);
    if (PQputCopyData(raw, data.data() + offset, static_cast<int>(n)) != 1) {
      throw pqxx::broken_connection(absl::StrCat("COPY data: ", PQerrorMessage(raw)));
    }
  }
  if (PQputCopyEnd(raw, nullptr) != 1) throw pqxx::broken_connection(absl::StrCat("COPY end: ", PQerrorMessage(raw)));
  // Read every result so the session is idle again before the next statement.
  std::string error;
  std::string sqlstate;
  bool got_result = false;
  while (PGresult* result = PQgetResult(raw)) {
    got_result = true;
    if (PQresultStatus(result) != PGRES_COMMAND_OK && error.empty()) {
      error = ErrorFromResult(result);
      const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
      sqlstate = state != nullptr ? state : "";
    }
    PQclear(result);
  }
  if (PQstatus(raw) != CONNECTION_OK) throw pqxx::broken_connection(absl::StrCat("COPY: ", PQerrorMessage(raw)));
  if (!got_result) throw pqxx::broken_connection("COPY: no result from the server");
  if (!error.empty()) throw pqxx::sql_error(error, copy_from_stdin_sql, sqlstate.empty() ? nullptr : sqlstate.c_str());
}

std::string WithConnectTimeout(const std::string& dsn, int seconds) {
  if (absl::StrContains(dsn, "connect_timeout")) return dsn;
  if (absl::StartsWith(dsn, "postgresql://") || absl::StartsWith(dsn, "postgres://")) {
    return absl::StrCat(dsn, absl::StrContains(dsn, "?") ? "&" : "?", "connect_timeout=", seconds);
  }
  return absl::StrCat("connect_timeout=", seconds, dsn.empty() ? "" : " ", dsn);
}

std::string SqlState(const std::exception& e) {
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e); sql != nullptr && !sql->sqlstate().empty()) {
    return sql->sqlstate();
  }
  // libpqxx 6.4 throws its typed exceptions without the SQLSTATE: recover its class.
  if (Is<pqxx::unique_violation>(e)) return "23505";
  if (Is<pqxx::check_violation>(e)) return "23514";
  if (Is<pqxx::not_null_violation>(e)) return "23502";
  if (Is<pqxx::foreign_key_violation>(e)) return "23503";
  if (Is<pqxx::integrity_constraint_violation>(e)) return "23000";
  if (Is<pqxx::data_exception>(e)) return "22000";
  if (Is<pqxx::insufficient_privilege>(e)) return "42501";
  if (Is<pqxx::undefined_table>(e)) return "42P01";
  if (Is<pqxx::undefined_column>(e)) return "42703";
  if (Is<pqxx::undefined_function>(e)) return "42883";
  if (Is<pqxx::syntax_error>(e)) return "42601";
  if (Is<pqxx::deadlock_detected>(e)) return "40P01";
  if (Is<pqxx::serialization_failure>(e)) return "40001";
  if (Is<pqxx::transaction_rollback>(e)) return "40000";
  if (Is<pqxx::insufficient_resources>(e)) return "53000";
  return "";
}

bool IsDataError(const std::string& sqlstate) {
  return absl::StartsWith(sqlstate, "22") || absl::StartsWith(sqlstate, "23");
}

absl::Status StatusFromPgException(const std::exception& e) {
  const std::string message(absl::StripTrailingAsciiWhitespace(e.what()));
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) {
    return absl::UnavailableError(absl::StrCat("database connection lost: ", message));
  }
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
    return absl::UnavailableError(absl::StrCat("database COMMIT outcome unknown: ", message));
  }
  const std::string state = SqlState(e);
  if (state.empty()) return absl::InternalError(absl::StrCat("database: ", message));
  const std::string text = absl::StrCat("database error ", state, ": ", message);
  // 08: connection exception; 57P0x: shutdown / cannot connect now; 53: insufficient resources;
  // 40: transaction rollback (deadlock, serialization) - all pass when retried later.
  if (absl::StartsWith(state, "08") || absl::StartsWith(state, "57P") || absl::StartsWith(state, "53") ||
      absl::StartsWith(state, "40")) {
    return absl::UnavailableError(text);
  }
  if (state == "42P01" || state == "42703" || state == "42883" || state == "3F000") {
    return absl::FailedPreconditionError(absl::StrCat(text, " (is the schema migrated? run with --migrate)"));
  }
  if (state == "42501") return absl::PermissionDeniedError(text);
  return absl::InternalError(text);
}

}  // namespace ecomstream::writer
