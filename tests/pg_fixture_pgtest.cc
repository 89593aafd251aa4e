#include "tests/pg_fixture.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/files.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace ecomstream::testing {
namespace {

TEST(PgFixtureTest, EachCreatedDatabaseIsSeparateAndQueryable) {
  PgCluster& pg = SharedPgCluster();
  auto a = pg.CreateDatabase("fixture");
  auto b = pg.CreateDatabase("fixture");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE(*a, *b);
  const std::string db_a = a->substr(a->rfind('=') + 1);
  const std::string db_b = b->substr(b->rfind('=') + 1);
  ASSERT_TRUE(pg.Psql(db_a, "CREATE TABLE only_in_a (x int); INSERT INTO only_in_a VALUES (7)").ok());
  auto in_a = pg.Psql(db_a, "SELECT x FROM only_in_a");
  ASSERT_TRUE(in_a.ok()) << in_a.status();
  EXPECT_EQ(*in_a, "7\n");
  auto in_b = pg.Psql(db_b, "SELECT to_regclass('only_in_a') IS NULL");
  ASSERT_TRUE(in_b.ok()) << in_b.status();
  EXPECT_EQ(*in_b, "t\n") << "a table of one database is visible in the other";
  auto version = pg.Psql("postgres", "SHOW server_version_num");
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_GE(std::stoi(*version), 150000);
}

// RunSql lends a session the process used before: nothing a call leaves in it reaches the next
// call, one the server ended is replaced, and an idle one never keeps its database from a DROP.
TEST(PgFixtureTest, AReusedSessionCarriesNothingOverAndNeverBlocksADrop) {
  PgCluster& pg = SharedPgCluster();
  auto dsn = pg.CreateDatabase("reused");
  ASSERT_TRUE(dsn.ok()) << dsn.status();
  const std::string db = dsn->substr(dsn->rfind('=') + 1);
  auto first = RunSql(*dsn,
                      "SET work_mem = '7MB'; SET ROLE pg_read_all_data; CREATE TEMP TABLE left_behind (x int); "
                      "SELECT pg_advisory_lock(4242); SELECT pg_backend_pid()");
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string pid = first->substr(first->find('\n') + 1);
  auto second = RunSql(*dsn,
                       "SELECT current_setting('work_mem'), current_user = session_user, "
                       "to_regclass('pg_temp.left_behind') IS NULL, pg_backend_pid()");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, absl::StrCat("4MB|t|t|", pid)) << "the same session, reset";
  auto lock = pg.Psql(db, "SELECT pg_try_advisory_lock(4242)");
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_EQ(*lock, "t\n") << "a session lock outlived the call that took it";
  // A transaction left open: the session is not kept (its work is rolled back, as at disconnect).
  ASSERT_TRUE(RunSql(*dsn, "CREATE TABLE t (x int)").ok());
  ASSERT_TRUE(RunSql(*dsn, "BEGIN; INSERT INTO t VALUES (1)").ok());
  auto rows = RunSql(*dsn, "SELECT count(*) FROM t");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(*rows, "0\n");
  // Ended by the server while idle: the next call gets a new session instead of the error.
  auto before = RunSql(*dsn, "SELECT pg_backend_pid()");
  ASSERT_TRUE(before.ok()) << before.status();
  auto ended = pg.Psql("postgres", absl::StrCat("SELECT pg_terminate_backend(", *before, ")"));
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(*ended, "t\n");
  auto after = RunSql(*dsn, "SELECT pg_backend_pid()");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_NE(*after, *before);
  // This process's idle session to the database does not keep it from being dropped.
  auto dropped = pg.Psql("postgres", absl::StrCat("DROP DATABASE \"", db, "\""));
  EXPECT_TRUE(dropped.ok()) << dropped.status();
}

TEST(PgFixtureTest, DataSurvivesStopAndRestart) {
  auto own = PgCluster::Start();
  ASSERT_TRUE(own.ok()) << own.status();
  PgCluster& pg = **own;
  auto dsn = pg.CreateDatabase("restart");
  ASSERT_TRUE(dsn.ok()) << dsn.status();
  std::string db = dsn->substr(dsn->rfind('=') + 1);
  ASSERT_TRUE(pg.Psql(db, "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2), (3)").ok());
  ASSERT_TRUE(pg.Stop().ok());
  EXPECT_FALSE(pg.Psql(db, "SELECT 1").ok());
  ASSERT_TRUE(pg.Restart().ok());
  auto count = pg.Psql(db, "SELECT count(*) FROM t");
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, "3\n");
}

TEST(PgFixtureTest, TemplateIsBuiltOnceAndEveryCopyHasItsContentAndIsSeparate) {
  PgCluster& pg = SharedPgCluster();
  const std::string template_name = absl::StrCat("fixture_template_", ::getpid());
  std::atomic<int> builds{0};
  auto build = [&](const std::string& dsn) {
    ++builds;
    const std::string db = dsn.substr(dsn.rfind('=') + 1);
    return pg.Psql(db, "CREATE TABLE seeded (x int); INSERT INTO seeded VALUES (41), (42)").status();
  };
  // Concurrent copies of one template: PostgreSQL refuses a copy while anything is connected to
  // the template, so the fixture must keep it free of connections.
  constexpr int kCopies = 6;
  std::vector<std::string> dsns(kCopies);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < kCopies; ++i) {
    threads.emplace_back([&, i] {
      auto dsn = pg.CreateDatabaseFromTemplate(absl::StrCat("copy", i), template_name, build);
      if (dsn.ok()) {
        dsns[i] = *dsn;
      } else {
        ++failures;
        ADD_FAILURE() << dsn.status();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_EQ(failures.load(), 0);
  EXPECT_EQ(builds.load(), 1);
  const std::string first = dsns[0].substr(dsns[0].rfind('=') + 1);
  const std::string second = dsns[1].substr(dsns[1].rfind('=') + 1);
  ASSERT_TRUE(pg.Psql(first, "INSERT INTO seeded VALUES (1)").ok());
  EXPECT_EQ(pg.Psql(first, "SELECT count(*) FROM seeded").value_or(""), "3\n");
  EXPECT_EQ(pg.Psql(second, "SELECT string_agg(x::text, ',' ORDER BY x) FROM seeded").value_or(""), "41,42\n");
  auto frozen = pg.Psql("postgres", absl::StrCat("SELECT datistemplate, datallowconn FROM pg_database WHERE datname = '",
                                                 template_name, "'"));
  EXPECT_EQ(frozen.value_or(""), "t|f\n");
}

TEST(PgFixtureTest, FailedTemplateBuildIsAnErrorAndTheNextCallerBuildsIt) {
  PgCluster& pg = SharedPgCluster();
  const std::string template_name = absl::StrCat("fixture_broken_", ::getpid());
  auto failed = pg.CreateDatabaseFromTemplate("broken", template_name, [](const std::string&) {
    return absl::InternalError("migration 3 failed");
  });
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(failed.status().message(), "migration 3 failed");
  auto built = pg.CreateDatabaseFromTemplate("broken", template_name, [](const std::string&) { return absl::OkStatus(); });
  EXPECT_TRUE(built.ok()) << built.status();
}

TEST(PgFixtureTest, AttachedClusterRefusesStopAndRestartAndIsStoppedFromItsInfoFile) {
  TempDir dir("attach");
  const std::string info = dir.File("cluster.info");
  std::string data_dir;
  {
    auto started = PgCluster::Start();
    ASSERT_TRUE(started.ok()) << started.status();
    data_dir = (*started)->dir();
    ASSERT_TRUE((*started)->WriteInfo(info).ok());
  }  // no longer owned: still running
  auto attached = PgCluster::Attach(info);
  ASSERT_TRUE(attached.ok()) << attached.status();
  EXPECT_FALSE((*attached)->owned());
  EXPECT_EQ((*attached)->Psql("postgres", "SELECT 6 * 7").value_or(""), "42\n");
  EXPECT_EQ((*attached)->Stop().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*attached)->Restart().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE((*attached)->Psql("postgres", "SELECT 1").ok()) << "a refused Stop stopped the cluster";
  ASSERT_TRUE(PgCluster::StopFromInfo(info).ok());
  EXPECT_FALSE((*attached)->Psql("postgres", "SELECT 1").ok());
  EXPECT_TRUE(WaitUntil([&] { return ::access(data_dir.c_str(), F_OK) != 0; }, absl::Seconds(60)))
      << data_dir << " was not removed";
  EXPECT_NE(::access(info.c_str(), F_OK), 0);
  EXPECT_EQ(PgCluster::Attach(info).status().code(), absl::StatusCode::kNotFound);
}

// Sets (or, with nullptr, unsets) an environment variable for the life of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    if (old != nullptr) old_ = old;
    had_ = old != nullptr;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (had_) {
      ::setenv(name_, old_.c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

TEST(PgFixtureTest, AClusterOfItsOwnIsACopyOfTheKeptInitdbOutputNotOfTheLiveData) {
  TempDir dir("initdb_copy");
  const std::string info = dir.File("cluster.info");
  StartOptions keep;
  keep.keep_initdb_copy = true;
  std::string source_id;
  int source_port = 0;
  {
    auto source = PgCluster::Start(keep);
    ASSERT_TRUE(source.ok()) << source.status();
    source_port = (*source)->port();
    ASSERT_TRUE((*source)->Psql("postgres", "CREATE DATABASE made_after_initdb").ok());
    source_id = (*source)->Psql("postgres", "SELECT system_identifier FROM pg_control_system()").value_or("");
    ASSERT_TRUE((*source)->WriteInfo(info).ok());  // no longer owned: StopFromInfo below
  }
  EXPECT_NE(ReadFileToString(info).value_or("").find("\ninitdb="), std::string::npos);

  absl::StatusOr<std::unique_ptr<PgCluster>> own;
  {
    ScopedEnv no_run_cluster("ECOMSTREAM_TEST_PG", nullptr);
    ScopedEnv copy_from("ECOMSTREAM_TEST_PG_INITDB", info.c_str());
    own = PgCluster::Start();
  }
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_NE((*own)->port(), source_port);
  EXPECT_EQ((*own)->Psql("postgres", "SELECT system_identifier FROM pg_control_system()").value_or("?"), source_id)
      << "not a copy of the kept initdb output";
  EXPECT_EQ((*own)->Psql("postgres", "SELECT count(*) FROM pg_database WHERE datname = 'made_after_initdb'")
                .value_or(""),
            "0\n")
      << "a copy of the live data, not of the initdb output";
  ASSERT_TRUE((*own)->Psql("postgres", "CREATE DATABASE made_in_the_copy").ok());
  auto attached = PgCluster::Attach(info);
  ASSERT_TRUE(attached.ok()) << attached.status();
  EXPECT_EQ((*attached)->Psql("postgres", "SELECT count(*) FROM pg_database WHERE datname = 'made_in_the_copy'")
                .value_or(""),
            "0\n");
  ASSERT_TRUE(PgCluster::StopFromInfo(info).ok());
}

TEST(PgFixtureTest, AttachToAMalformedInfoFileIsAnError) {
  TempDir dir("attach_bad");
  ASSERT_EQ(RunCommand({"sh", "-c", "printf 'port=abc\\ndir=/x\\n' > \"$1\"", "sh", dir.File("bad.info")}), 0);
  auto attached = PgCluster::Attach(dir.File("bad.info"));
  EXPECT_EQ(attached.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(attached.status().message().find("is not a cluster description"), absl::string_view::npos)
      << attached.status();
}

TEST(PgFixtureTest, MalformedSqlIsAnErrorWithTheServerMessage) {
  auto result = SharedPgCluster().Psql("postgres", "SELEC 1");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("syntax error"), absl::string_view::npos) << result.status();
}

}  // namespace
}  // namespace ecomstream::testing
