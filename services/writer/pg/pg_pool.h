// A pool of PostgreSQL sessions that knows whether the database is usable.
//
// The database is "healthy" when the last connection attempt or check succeeded and the schema
// is at least `required_schema_version`. While it is not, Acquire() fails fast with kUnavailable
// and a monitor thread reconnects with exponential backoff; while it is, the monitor checks an
// idle session every `check_interval`, so health follows the database even without traffic.
// Health transitions are logged and reported to the listener (the gRPC health service).
//
// Thread-safe.
#ifndef ECOMSTREAM_SERVICES_WRITER_PG_PG_POOL_H_
#define ECOMSTREAM_SERVICES_WRITER_PG_PG_POOL_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/writer/pg/pg_connection.h"

namespace ecomstream::writer {

struct PgPoolOptions {
  std::string dsn;                 // libpq key=value or URI; empty = PG* variables only
  int max_connections = 16;
  int required_schema_version = 0;  // 0 = do not check
  absl::Duration acquire_timeout = absl::Seconds(10);
  absl::Duration check_interval = absl::Seconds(2);
  absl::Duration min_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
};

class PgPool {
 public:
  explicit PgPool(PgPoolOptions options);
  ~PgPool();
  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  // Called with the new health on every transition, from the thread that noticed it. Set before
  // Start().
  void SetHealthListener(std::function<void(bool healthy)> listener);
  // Connects once (so the first health is known) and starts the monitor thread. Returns the
  // first connection attempt's status; the pool keeps retrying in the background either way.
  absl::Status Start();

  // A session borrowed from the pool; returned when destroyed. MarkBroken() (or a lost
  // connection) drops the session instead and marks the database unhealthy.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    PgConnection& operator*() const { return *connection_; }
    PgConnection* operator->() const { return connection_.get(); }
    // The database failed under this session (kUnavailable): drop it, drop the idle sessions
    // and recheck health now.
    void MarkBroken();

   private:
    friend class PgPool;
    Lease(PgPool* pool, std::unique_ptr<PgConnection> connection, uint64_t generation);
    PgPool* pool_;
    std::unique_ptr<PgConnection> connection_;
    uint64_t generation_;
    bool broken_ = false;
  };

  // kUnavailable while the database is unhealthy (the message says why), or when every session
  // stayed busy for `acquire_timeout`.
  absl::StatusOr<Lease> Acquire();
  // An idle session, or a new one if the pool is below max_connections; never waits for a busy
  // session to come back. nullopt when none is to be had or the database is unhealthy. For
  // work that may be skipped (pg_sink's Begin), so that it can never starve Acquire.
  std::optional<Lease> TryAcquire();

  bool healthy() const;
  // Why the database is unhealthy (OK while healthy).
  absl::Status last_error() const;

 private:
  // Opens a session and checks the schema version.
  absl::StatusOr<std::unique_ptr<PgConnection>> Connect() const;
  // Acquire, waiting for a session until `deadline`.
  absl::StatusOr<Lease> AcquireBy(absl::Time deadline);
  void Return(std::unique_ptr<PgConnection> connection, uint64_t generation, bool broken);
  void SetHealth(bool healthy, const absl::Status& why);
  // Drops every idle session (a newer generation starts) and wakes the monitor.
  void DropIdle();
  void MonitorLoop();
  // Runs a trivial query on an idle session (or a new one); false if the database failed.
  absl::Status Check();

  const PgPoolOptions options_;
  std::function<void(bool)> listener_;

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<PgConnection>> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;  // idle + leased + being opened
  bool healthy_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status last_error_ ABSL_GUARDED_BY(mu_) = absl::UnavailableError("database not connected yet");
  // Bumped when the database goes down: sessions from an older generation are dropped.
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  std::thread monitor_;
};

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_PG_PG_POOL_H_
