#include "services/writer/pg/pg_pool.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace ecomstream::writer {
namespace {

constexpr char kSchemaVersion[] = "SELECT coalesce(max(version), 0) FROM ecomstream.schema_migrations";
constexpr char kPing[] = "SELECT 1";

}  // namespace

PgPool::Lease::Lease(PgPool* pool, std::unique_ptr<PgConnection> connection, uint64_t generation)
    : pool_(pool), connection_(std::move(connection)), generation_(generation) {}

PgPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_),
      connection_(std::move(other.connection_)),
      generation_(other.generation_),
      broken_(other.broken_) {}

PgPool::Lease::~Lease() {
  if (connection_ != nullptr) pool_->Return(std::move(connection_), generation_, broken_);
}

void PgPool::Lease::MarkBroken() {
  broken_ = true;
  // Sessions opened before this failure are suspect (a restarted server kills them all): drop
  // the idle ones now and let the monitor find out whether the database itself is down.
  pool_->DropIdle();
}

PgPool::PgPool(PgPoolOptions options) : options_(std::move(options)) {}

PgPool::~PgPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (monitor_.joinable()) monitor_.join();
}

void PgPool::SetHealthListener(std::function<void(bool)> listener) { listener_ = std::move(listener); }

absl::Status PgPool::Start() {
  absl::Status status = Check();
  monitor_ = std::thread(&PgPool::MonitorLoop, this);
  return status;
}

bool PgPool::healthy() const {
  absl::MutexLock lock(&mu_);
  return healthy_;
}

absl::Status PgPool::last_error() const {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

absl::StatusOr<std::unique_ptr<PgConnection>> PgPool::Connect() const {
  auto connection = PgConnection::Open(options_.dsn);
  if (!connection.ok()) return connection.status();
  if (options_.required_schema_version <= 0) return connection;
  int version = 0;
  try {
    pqxx::nontransaction query(**connection);
    version = query.exec(kSchemaVersion)[0][0].as<int>();
  } catch (const std::exception& e) {
    absl::Status status = StatusFromPgException(e);
    if (status.code() == absl::StatusCode::kFailedPrecondition) {
      return absl::FailedPreconditionError("schema ecomstream is not migrated: run ecomstream-writer --migrate");
    }
    return status;
  }
  if (version < options_.required_schema_version) {
    return absl::FailedPreconditionError(absl::StrCat("schema ecomstream is at migration ", version, ", this writer needs ",
                                                      options_.required_schema_version,
                                                      ": run ecomstream-writer --migrate"));
  }
  return connection;
}

absl::StatusOr<PgPool::Lease> PgPool::Acquire() { return AcquireBy(absl::Now() + options_.acquire_timeout); }

absl::StatusOr<PgPool::Lease> PgPool::AcquireBy(absl::Time deadline) {
  uint64_t generation = 0;
  {
    absl::MutexLock lock(&mu_);
    auto can_proceed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !healthy_ || !idle_.empty() || open_ < options_.max_connections;
    };
    if (!mu_.AwaitWithDeadline(absl::Condition(&can_proceed), deadline)) {
      return absl::UnavailableError(absl::StrCat("all ", options_.max_connections, " database sessions stayed busy for ",
                                                 absl::FormatDuration(options_.acquire_timeout)));
    }
    if (!healthy_) return absl::UnavailableError(absl::StrCat("database unavailable: ", last_error_.message()));
    generation = generation_;
    if (!idle_.empty()) {
      std::unique_ptr<PgConnection> connection = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(connection), generation);
    }
    ++open_;
  }
  auto connection = Connect();
  if (!connection.ok()) {
    {
      absl::MutexLock lock(&mu_);
      --open_;
    }
    SetHealth(false, connection.status());
    return absl::UnavailableError(absl::StrCat("database unavailable: ", connection.status().message()));
  }
  return Lease(this, std::move(connection).value(), generation);
}

std::optional<PgPool::Lease> PgPool::TryAcquire() {
  absl::StatusOr<Lease> lease = AcquireBy(absl::InfinitePast());  // the condition is checked once
  if (!lease.ok()) return std::nullopt;
  return *std::move(lease);
}

void PgPool::Return(std::unique_ptr<PgConnection> connection, uint64_t generation, bool broken) {
  {
    absl::MutexLock lock(&mu_);
    if (!broken && generation == generation_ && !stopping_ && connection->is_open()) {
      idle_.push_back(std::move(connection));
      return;
    }
    --open_;
  }
  connection.reset();  // closing may wait on the network: not under the lock
}

void PgPool::DropIdle() {
  std::vector<std::unique_ptr<PgConnection>> dropped;
  {
    absl::MutexLock lock(&mu_);
    ++generation_;
    open_ -= static_cast<int>(idle_.size());
    dropped.swap(idle_);
    wake_ = true;
  }
}

void PgPool::SetHealth(bool healthy, const absl::Status& why) {
  std::vector<std::unique_ptr<PgConnection>> dropped;
  bool changed = false;
  {
    absl::MutexLock lock(&mu_);
    changed = healthy_ != healthy;
    healthy_ = healthy;
    last_error_ = healthy ? absl::OkStatus() : why;
    if (!healthy) {
      ++generation_;
      open_ -= static_cast<int>(idle_.size());
      dropped.swap(idle_);
    }
  }
  if (!changed) return;
  if (healthy) {
    LOG_INFO("Database is reachable");
  } else {
    LOG_WARNING("Database is unavailable; retrying with backoff") << Kv("error", why.ToString());
  }
  if (listener_) listener_(healthy);
}

absl::Status PgPool::Check() {
  std::unique_ptr<PgConnection> connection;
  uint64_t generation = 0;
  {
    absl::MutexLock lock(&mu_);
    generation = generation_;
    if (!idle_.empty()) {
      connection = std::move(idle_.back());
      idle_.pop_back();
    } else if (open_ < options_.max_connections) {
      ++open_;
    } else {
      return absl::OkStatus();  // every session is in use: the database is answering
    }
  }
  if (connection == nullptr) {
    auto opened = Connect();
    if (!opened.ok()) {
      {
        absl::MutexLock lock(&mu_);
        --open_;
      }
      SetHealth(false, opened.status());
      return opened.status();
    }
    connection = std::move(opened).value();
    SetHealth(true, absl::OkStatus());
    absl::MutexLock lock(&mu_);
    generation = generation_;
  } else {
    try {
      pqxx::nontransaction query(*connection);
      query.exec(kPing);
    } catch (const std::exception&) {
      // The session may just be stale (the server restarted): only a failed reconnect means
      // the database is down.
      Return(std::move(connection), generation, /*broken=*/true);
      DropIdle();
      return Check();
    }
    SetHealth(true, absl::OkStatus());
  }
  Return(std::move(connection), generation, /*broken=*/false);
  return absl::OkStatus();
}

void PgPool::MonitorLoop() {
  absl::Duration backoff = options_.min_backoff;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      const absl::Duration wait = healthy_ ? options_.check_interval : backoff;
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || wake_; };
      mu_.AwaitWithTimeout(absl::Condition(&woken), wait);
      if (stopping_) return;
      wake_ = false;
    }
    if (Check().ok()) {
      backoff = options_.min_backoff;
    } else {
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }
}

}  // namespace ecomstream::writer
