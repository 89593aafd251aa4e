#include "services/writer/pg/batch_validator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/uuid.h"

namespace ecomstream::writer {
namespace {

using ::testing::HasSubstr;

constexpr char kFileId[] = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

v1::Event ValidEvent(int64_t row) {
  v1::Event event;
  event.set_event_id(std::string(UuidBytes(UuidV7(1'700'000'000'000 + row, 1, 2))));
  event.set_event_type(v1::EVENT_TYPE_VIEW);
  event.set_source_row(row);
  return event;
}

// Rows 1-4: events at 1 and 2, a dead letter at 3, one exact duplicate.
v1::Batch ValidBatch() {
  v1::Batch batch;
  batch.set_file_id(kFileId);
  batch.set_file_name("events-000001.csv");
  batch.set_claim_token(FormatUuid(UuidV4(7, 8)));
  batch.set_first_row(1);
  batch.set_last_row(4);
  *batch.add_events() = ValidEvent(1);
  *batch.add_events() = ValidEvent(2);
  v1::DeadLetter* dead = batch.add_dead_letters();
  dead->set_row(3);
  dead->set_line(4);
  dead->set_raw("bad,row");
  dead->add_reasons(v1::REJECT_REASON_BAD_PRICE);
  dead->add_reasons(v1::REJECT_REASON_BAD_COUNTRY);
  batch.set_duplicate_rows(1);
  v1::ReasonCount* count = batch.add_reason_counts();
  count->set_reason(v1::REJECT_REASON_BAD_PRICE);
  count->set_count(1);
  count = batch.add_reason_counts();
  count->set_reason(v1::REJECT_REASON_BAD_COUNTRY);
  count->set_count(1);
  return batch;
}

void ExpectInvalid(const v1::Batch& batch, const std::string& message) {
  const absl::Status status = ValidateBatch(batch);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(message));
}

TEST(BatchValidatorTest, AcceptsAWellFormedBatch) { EXPECT_TRUE(ValidateBatch(ValidBatch()).ok()); }

TEST(BatchValidatorTest, AcceptsTheEmptyFilesOnlyBatch) {
  v1::Batch batch = ValidBatch();
  batch.clear_events();
  batch.clear_dead_letters();
  batch.clear_reason_counts();
  batch.set_duplicate_rows(0);
  batch.set_last_row(0);
  batch.set_last_batch(true);
  EXPECT_TRUE(ValidateBatch(batch).ok());
  batch.set_last_batch(false);
  ExpectInvalid(batch, "not a range of data rows");
}

TEST(BatchValidatorTest, RejectsMissingOrMalformedFileId) {
  v1::Batch batch = ValidBatch();
  batch.clear_file_id();
  ExpectInvalid(batch, "file_id is missing");
  for (const char* bad : {"0123456789abcdef", "sha256:0123", "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
                          "md5:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                          "sha256:'; DROP TABLE ecomstream.events; --"}) {
    batch.set_file_id(bad);
    ExpectInvalid(batch, "is not sha256:<64 lower-case hex digits>");
  }
}

TEST(BatchValidatorTest, RejectsMissingFileNameAndNulBytes) {
  v1::Batch batch = ValidBatch();
  batch.clear_file_name();
  ExpectInvalid(batch, "file_name is missing");
  batch.set_file_name(std::string("a\0b.csv", 7));
  ExpectInvalid(batch, "file_name contains a NUL byte");
  batch.set_file_name(std::string(2000, 'x'));
  ExpectInvalid(batch, "file_name is 2000 bytes; the limit is 1024");
}

TEST(BatchValidatorTest, RejectsMissingOrMalformedClaimToken) {
  v1::Batch batch = ValidBatch();
  batch.clear_claim_token();
  ExpectInvalid(batch, "claim_token is missing");
  batch.set_claim_token("not-a-uuid");
  ExpectInvalid(batch, "claim_token 'not-a-uuid' is not a UUID");
}

TEST(BatchValidatorTest, RejectsRowCountMismatchWithTheArithmetic) {
  v1::Batch batch = ValidBatch();
  batch.set_last_row(5);
  ExpectInvalid(batch, "row count mismatch: rows 1-5 are 5 rows but events + dead_letters + duplicate_rows = 2 + 1 + 1 = 4");
}

TEST(BatchValidatorTest, RejectsReversedOrZeroRowRanges) {
  v1::Batch batch = ValidBatch();
  batch.set_first_row(0);
  ExpectInvalid(batch, "rows 0-4 are not a range");
  batch.set_first_row(5);
  ExpectInvalid(batch, "rows 5-4 are not a range");
}

TEST(BatchValidatorTest, RejectsWrongUuidLengths) {
  v1::Batch batch = ValidBatch();
  batch.mutable_events(1)->set_event_id(std::string(15, 'x'));
  ExpectInvalid(batch, "event 1 (row 2) has a 15-byte event_id; a UUID is 16 bytes");
  batch = ValidBatch();
  batch.mutable_events(0)->set_session_id("8-bytes!");
  ExpectInvalid(batch, "event 0 (row 1) has a 8-byte session_id");
}

TEST(BatchValidatorTest, RejectsUnknownEnums) {
  v1::Batch batch = ValidBatch();
  batch.mutable_events(0)->set_event_type(v1::EVENT_TYPE_UNSPECIFIED);
  ExpectInvalid(batch, "event 0 (row 1) has no known event_type (0)");
  batch = ValidBatch();
  batch.mutable_events(0)->set_event_type(static_cast<v1::EventType>(99));
  ExpectInvalid(batch, "has no known event_type (99)");
  batch = ValidBatch();
  batch.mutable_events(0)->set_user_segment(static_cast<v1::UserSegment>(42));
  ExpectInvalid(batch, "has an unknown user_segment (42)");
  batch = ValidBatch();
  batch.mutable_dead_letters(0)->add_reasons(static_cast<v1::RejectReason>(500));
  ExpectInvalid(batch, "dead letter at row 3 has an unknown reason (500)");
  batch = ValidBatch();
  batch.mutable_dead_letters(0)->clear_reasons();
  ExpectInvalid(batch, "dead letter at row 3 has no reason");
}

TEST(BatchValidatorTest, RejectsRowsOutsideTheBatchOrTwice) {
  v1::Batch batch = ValidBatch();
  batch.mutable_events(1)->set_source_row(9);
  ExpectInvalid(batch, "event 1 has row 9, outside the batch's rows 1-4");
  batch = ValidBatch();
  batch.mutable_dead_letters(0)->set_row(1);
  ExpectInvalid(batch, "row 1 appears twice in the batch (a dead letter)");
}

TEST(BatchValidatorTest, RejectsReasonCountsThatDisagreeWithDeadLetters) {
  v1::Batch batch = ValidBatch();
  batch.mutable_reason_counts(0)->set_count(3);
  ExpectInvalid(batch, "reason_counts disagree with dead_letters: bad_price says 3 but 1 dead letters have it;");
  batch = ValidBatch();
  batch.mutable_reason_counts()->RemoveLast();
  ExpectInvalid(batch, "bad_country is missing but 1 dead letters have it;");
}

TEST(BatchValidatorTest, RejectsNegativeDuplicatesAndLines) {
  v1::Batch batch = ValidBatch();
  batch.set_duplicate_rows(-1);
  ExpectInvalid(batch, "duplicate_rows is negative (-1)");
  batch = ValidBatch();
  batch.mutable_dead_letters(0)->set_line(-3);
  ExpectInvalid(batch, "has a negative line (-3)");
}

TEST(BatchValidatorTest, RejectsLastBatchWhoseTotalDisagrees) {
  v1::Batch batch = ValidBatch();
  batch.set_last_batch(true);
  batch.set_total_file_rows(10);
  ExpectInvalid(batch, "the last batch ends at row 4 but total_file_rows is 10");
}

}  // namespace
}  // namespace ecomstream::writer
