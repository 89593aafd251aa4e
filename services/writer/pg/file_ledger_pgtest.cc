// ClaimFile against a real PostgreSQL: claims, leases, takeovers and races.
#include "services/writer/pg/file_ledger.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/time_util.h"
#include "services/writer/pg/testing/writer_testing.h"

namespace ecomstream::writer {
namespace {

using ::testing::HasSubstr;
using testing::MakeBatch;
using testing::MakeEvent;
using testing::TestFile;
using Outcome = v1::ClaimFileResponse;

class FileLedgerTest : public testing::WriterDbTest {
 protected:
  v1::ClaimFileRequest Request(absl::string_view name, absl::string_view claimant, int64_t lease_ms = 60'000) {
    return testing::MakeClaimRequest(name, claimant, lease_ms);
  }
  v1::ClaimFileResponse ClaimOk(const v1::ClaimFileRequest& request) {
    auto response = ledger_->Claim(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : v1::ClaimFileResponse();
  }
};

TEST_F(FileLedgerTest, ANewFileIsClaimedFromRowOneWithALease) {
  const int64_t before = NowMicros();
  const v1::ClaimFileResponse response = ClaimOk(Request("fresh.csv", "p1", 30'000));
  EXPECT_EQ(response.outcome(), Outcome::OUTCOME_CLAIMED);
  EXPECT_EQ(response.resume_after_row(), 0);
  EXPECT_EQ(response.claim_token().size(), 36u);
  EXPECT_GE(response.lease_expires_us(), before + 29'000'000);
  EXPECT_LE(response.lease_expires_us(), NowMicros() + 31'000'000);
  EXPECT_EQ(Sql("SELECT file_name, state, claimant, claims, lease_ms FROM ecomstream.ingest_files"),
            "fresh.csv|claimed|p1|1|30000");
}

TEST_F(FileLedgerTest, NewFilesClaimedOneAfterAnotherOnTheSameSessionsEachStoreTheirOwnFacts) {
  // The claim statement is prepared once per session; every later claim binds its own values.
  for (int i = 1; i <= 6; ++i) {
    v1::ClaimFileRequest request = Request(absl::StrCat("f", i, ".csv"), absl::StrCat("p", i), 10'000 * i);
    request.set_size_bytes(100 * i);
    request.set_schema_version(i % 2 == 0 ? 3 : 0);
    request.set_expected_rows(i == 3 ? 0 : 10 * i);
    request.set_file_drop_time_us(i == 4 ? 0 : 1'700'000'000'000'000 + i);
    request.set_header(i == 5 ? "" : absl::StrCat("event_id,h", i));
    request.set_reference_time_us(1'600'000'000'000'000 + i);
    EXPECT_EQ(ClaimOk(request).outcome(), Outcome::OUTCOME_CLAIMED) << i;
  }
  EXPECT_EQ(Sql("SELECT string_agg(concat_ws(' ', file_name, size_bytes, coalesce(schema_version::text, '-'), "
                "coalesce(expected_rows::text, '-'), claimant, lease_ms, state, "
                "coalesce((extract(epoch FROM file_drop_time) * 1000000)::bigint::text, '-'), "
                "coalesce(header, '-'), (extract(epoch FROM reference_time) * 1000000)::bigint), ';' "
                "ORDER BY file_name) FROM ecomstream.ingest_files"),
            "f1.csv 100 - 10 p1 10000 claimed 1700000000000001 event_id,h1 1600000000000001;"
            "f2.csv 200 3 20 p2 20000 claimed 1700000000000002 event_id,h2 1600000000000002;"
            "f3.csv 300 - - p3 30000 claimed 1700000000000003 event_id,h3 1600000000000003;"
            "f4.csv 400 3 40 p4 40000 claimed - event_id,h4 1600000000000004;"
            "f5.csv 500 - 50 p5 50000 claimed 1700000000000005 - 1600000000000005;"
            "f6.csv 600 3 60 p6 60000 claimed 1700000000000006 event_id,h6 1600000000000006");
}

TEST_F(FileLedgerTest, WarmUpClaimsNothingAndTheNextNewFileIsClaimedOnTheRehearsedSession) {
  ASSERT_TRUE(ledger_->WarmUp().ok());
  ASSERT_TRUE(ledger_->WarmUp().ok());  // again on a session already set up: still a rehearsal only
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.ingest_files"), "0");
  EXPECT_EQ(Sql(absl::StrCat("SELECT count(*) FROM ecomstream.ingest_files WHERE file_id = '", kRehearsalFileId, "'")),
            "0");
  const v1::ClaimFileRequest request = Request("after-warm-up.csv", "p1");
  const v1::ClaimFileResponse claimed = ClaimOk(request);
  EXPECT_EQ(claimed.outcome(), Outcome::OUTCOME_CLAIMED);
  EXPECT_EQ(claimed.resume_after_row(), 0);
  EXPECT_EQ(Sql("SELECT file_name, claimant, state, claims FROM ecomstream.ingest_files"), "after-warm-up.csv|p1|claimed|1");
}

TEST_F(FileLedgerTest, ALiveLeaseOfAnotherClaimantIsReportedWithItsHolder) {
  ClaimOk(Request("busy.csv", "p1"));
  const v1::ClaimFileResponse response = ClaimOk(Request("busy.csv", "p2"));
  EXPECT_EQ(response.outcome(), Outcome::OUTCOME_HELD_BY_OTHER);
  EXPECT_EQ(response.holder(), "p1");
  EXPECT_TRUE(response.claim_token().empty());
  EXPECT_GT(response.lease_expires_us(), NowMicros());
}

TEST_F(FileLedgerTest, TheSameClaimantBackResumesAfterItsCommittedRows) {
  const TestFile file = Claim("back.csv", "p1");
  ASSERT_TRUE(sink_->Write(MakeBatch(file, 1, {MakeEvent(1), MakeEvent(2), MakeEvent(3)})).ok());
  const v1::ClaimFileResponse response = ClaimOk(Request("back.csv", "p1"));
  EXPECT_EQ(response.outcome(), Outcome::OUTCOME_RESUME);
  EXPECT_EQ(response.resume_after_row(), 3);
  EXPECT_NE(response.claim_token(), file.claim_token);
}

TEST_F(FileLedgerTest, AnExpiredLeaseIsTakenOverAtTheLastContiguousCommittedRow) {
  TestFile file = Claim("takeover.csv", "p1", /*lease_ms=*/300);
  ASSERT_TRUE(sink_->Write(MakeBatch(file, 1, {MakeEvent(1), MakeEvent(2)})).ok());
  ASSERT_TRUE(sink_->Write(MakeBatch(file, 3, {MakeEvent(3)}, {}, 2)).ok());  // rows 3-5
  EXPECT_EQ(ClaimOk(Request("takeover.csv", "p2")).outcome(), Outcome::OUTCOME_HELD_BY_OTHER);
  absl::SleepFor(absl::Milliseconds(400));  // p1 dies: no batch extends its lease
  const v1::ClaimFileResponse taken = ClaimOk(Request("takeover.csv", "p2"));
  EXPECT_EQ(taken.outcome(), Outcome::OUTCOME_RESUME);
  EXPECT_EQ(taken.resume_after_row(), 5);
  EXPECT_EQ(Sql("SELECT claimant, claims, committed_through FROM ecomstream.ingest_files"), "p2|2|5");
  // p1 wakes up: its batch is refused; p2 continues at row 6.
  EXPECT_EQ(sink_->Write(MakeBatch(file, 6, {MakeEvent(6)})).status().code(), absl::StatusCode::kAborted);
  file.claim_token = taken.claim_token();
  ASSERT_TRUE(sink_->Write(MakeBatch(file, 6, {MakeEvent(6)}, {}, 0, true)).ok());
  EXPECT_EQ(ClaimOk(Request("takeover.csv", "p3")).outcome(), Outcome::OUTCOME_ALREADY_COMMITTED);
}

TEST_F(FileLedgerTest, ConcurrentClaimsOfOneFileHaveExactlyOneWinner) {
  constexpr int kClaimants = 8;
  std::vector<absl::StatusOr<v1::ClaimFileResponse>> responses(kClaimants);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClaimants; ++i) {
    threads.emplace_back([&, i] { responses[i] = ledger_->Claim(Request("contested.csv", absl::StrCat("p", i))); });
  }
  for (std::thread& thread : threads) thread.join();
  int claimed = 0;
  int held = 0;
  std::string winner;
  for (int i = 0; i < kClaimants; ++i) {
    ASSERT_TRUE(responses[i].ok()) << responses[i].status();
    if (responses[i]->outcome() == Outcome::OUTCOME_CLAIMED) {
      ++claimed;
      winner = absl::StrCat("p", i);
    }
    if (responses[i]->outcome() == Outcome::OUTCOME_HELD_BY_OTHER) ++held;
  }
  EXPECT_EQ(claimed, 1);
  EXPECT_EQ(held, kClaimants - 1);
  for (int i = 0; i < kClaimants; ++i) {
    if (responses[i]->outcome() == Outcome::OUTCOME_HELD_BY_OTHER) {
      EXPECT_EQ(responses[i]->holder(), winner);
    }
  }
  EXPECT_EQ(Sql("SELECT count(*), max(claims) FROM ecomstream.ingest_files"), "1|1");
}

TEST_F(FileLedgerTest, ALeaseIsCappedAtTheMaximumAndDefaultsWhenUnset) {
  FileLedgerOptions options;
  options.default_lease = absl::Seconds(7);
  options.max_lease = absl::Seconds(10);
  FileLedger ledger(pool_.get(), metrics_.get(), options);
  auto capped = ledger.Claim(Request("capped.csv", "p1", 3'600'000));
  ASSERT_TRUE(capped.ok()) << capped.status();
  EXPECT_LE(capped->lease_expires_us(), NowMicros() + 10'000'000);
  auto defaulted = ledger.Claim(Request("default.csv", "p1", 0));
  ASSERT_TRUE(defaulted.ok()) << defaulted.status();
  EXPECT_EQ(Sql("SELECT string_agg(lease_ms::text, ',' ORDER BY file_name) FROM ecomstream.ingest_files"), "10000,7000");
}

TEST_F(FileLedgerTest, MalformedClaimsAreInvalidArgument) {
  const auto expect_invalid = [&](v1::ClaimFileRequest request, const std::string& message) {
    auto response = ledger_->Claim(request);
    EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument) << response.status();
    EXPECT_THAT(std::string(response.status().message()), HasSubstr(message));
  };
  v1::ClaimFileRequest request = Request("ok.csv", "p1");
  request.set_file_id("sha256:'); DELETE FROM ecomstream.events; --");
  expect_invalid(request, "is not sha256:<64 lower-case hex digits>");
  request = Request("ok.csv", "p1");
  request.set_file_id(absl::AsciiStrToUpper(request.file_id()));
  expect_invalid(request, "is not sha256:");
  request = Request("ok.csv", "");
  expect_invalid(request, "claimant is missing");
  request = Request("ok.csv", std::string("p\0x", 3));
  expect_invalid(request, "claimant contains a NUL byte");
  request = Request(std::string(5000, 'n'), "p1");
  expect_invalid(request, "file_name is 5000 bytes");
  request = Request("ok.csv", "p1", -5);
  expect_invalid(request, "must not be negative");
  request = Request("ok.csv", "p1");
  request.set_schema_version(9);
  expect_invalid(request, "schema_version 9 is not 1, 2, 3");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.ingest_files"), "0");
}

}  // namespace
}  // namespace ecomstream::writer
