#include "services/generator/anomaly_injector.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "common/domain.h"
#include "gtest/gtest.h"
#include "services/generator/csv_row_encoder.h"
#include "services/generator/shopper_model.h"
#include "services/generator/testing/row_oracle.h"

namespace ecomstream::generator {
namespace {

using testing::ClassifyCsv;
using testing::OracleFile;

constexpr int64_t kStartMs = 1'777'000'000'000;

struct ComposedFile {
  std::string content;
  std::vector<RowVerdict> verdicts;
  int64_t reference_us = 0;  // as the generator sets created_time_us: just after the last row
};

// One file the way Generator writes it, rows 1 ms apart.
ComposedFile Compose(SchemaVersion version, uint64_t seed, int rows, AnomalyInjector::Options options,
                     bool reversed_columns, bool crlf, AnomalyInjector* injector = nullptr) {
  ShopperModel model(seed);
  AnomalyInjector own(seed + 1, options);
  if (injector == nullptr) injector = &own;
  std::vector<Column> columns = ColumnsOf(version);
  if (reversed_columns) std::reverse(columns.begin(), columns.end());
  CsvRowEncoder encoder(columns, crlf);
  injector->BeginFile(version);
  ComposedFile file;
  encoder.AppendHeader(&file.content);
  ShopperEvent event;
  RowPlan plan;
  for (int i = 0; i < rows; ++i) {
    model.Next(kStartMs + i, &event);
    const RowVerdict verdict = injector->Apply(&event, &plan);
    const size_t start = file.content.size();
    const size_t length = encoder.AppendRow(event, plan, &file.content);
    if (verdict.outcome == RowOutcome::kEvent) injector->Remember(event, file.content.substr(start, length));
    file.verdicts.push_back(verdict);
  }
  file.reference_us = (kStartMs + rows - 1) * 1000 + 1000;
  return file;
}

std::string Describe(const RowVerdict& v) { return v.anomalous ? std::string(AnomalyKindName(v.kind)) : "clean"; }

// The heart of the ground truth: with every row bent, an independent reading of docs/rows.md
// finds each row exactly where the injector says: noise and late rows valid (late flagged
// exactly when late_event), each invalid kind a dead letter with exactly its one reason, exact
// duplicates skipped.
TEST(AnomalyInjectorTest, EveryKindLandsInExactlyItsOutcomeForEverySchemaVersion) {
  for (SchemaVersion version : {SchemaVersion::kV1, SchemaVersion::kV2, SchemaVersion::kV3}) {
    for (bool crlf : {false, true}) {
      SCOPED_TRACE(absl::StrCat(SchemaVersionName(version), crlf ? " crlf" : " lf"));
      const ComposedFile file = Compose(version, 100 + static_cast<int>(version), 20'000,
                                        {/*rate=*/1.0, /*late_rate=*/0.05, AllAnomalyKinds()},
                                        /*reversed_columns=*/crlf, crlf);
      const OracleFile oracle = ClassifyCsv(file.content, file.reference_us);
      ASSERT_EQ(oracle.schema_version, static_cast<int>(version));
      ASSERT_EQ(oracle.rows.size(), file.verdicts.size());
      std::map<AnomalyKind, int> seen;
      for (size_t i = 0; i < file.verdicts.size(); ++i) {
        const RowVerdict& v = file.verdicts[i];
        const testing::OracleRow& row = oracle.rows[i];
        ASSERT_TRUE(v.anomalous) << "rate 1.0 bends every row";
        ++seen[v.kind];
        SCOPED_TRACE(absl::StrCat("row ", row.row, " line ", row.line, " kind ", Describe(v), ": ", row.raw));
        EXPECT_EQ(row.line, static_cast<int64_t>(i) + 2) << "one physical line per row";
        switch (v.outcome) {
          case RowOutcome::kDeadLetter:
            ASSERT_EQ(row.reasons.size(), 1u);
            EXPECT_EQ(row.reasons[0], ReasonOf(v.kind)) << domain::RejectReasonName(row.reasons[0]);
            break;
          case RowOutcome::kDuplicate:
            EXPECT_TRUE(row.reasons.empty());
            EXPECT_TRUE(row.duplicate);
            break;
          case RowOutcome::kEvent:
            EXPECT_TRUE(row.reasons.empty()) << (row.reasons.empty() ? "" : domain::RejectReasonName(row.reasons[0]));
            EXPECT_FALSE(row.duplicate);
            EXPECT_EQ(row.late, v.late);
            break;
        }
      }
      // Every kind the version can express occurs.
      for (int k = 0; k < kNumAnomalyKinds; ++k) {
        const auto kind = static_cast<AnomalyKind>(k);
        const bool expressible =
            version == SchemaVersion::kV3 ||
            (kind != AnomalyKind::kBadCountry &&
             (version == SchemaVersion::kV2 ||
              (kind != AnomalyKind::kBadSessionId && kind != AnomalyKind::kUnknownCategory &&
               kind != AnomalyKind::kBadEnumValue && kind != AnomalyKind::kBadQuantity)));
        if (expressible) {
          EXPECT_GT(seen[kind], 20) << AnomalyKindName(kind);
        } else {
          EXPECT_EQ(seen[kind], 0) << AnomalyKindName(kind);
        }
      }
    }
  }
}

TEST(AnomalyInjectorTest, CleanRowsAreValidAndNeverLate) {
  const ComposedFile file =
      Compose(SchemaVersion::kV3, 7, 20'000, {/*rate=*/0, /*late_rate=*/0, AllAnomalyKinds()}, false, false);
  const OracleFile oracle = ClassifyCsv(file.content, file.reference_us);
  EXPECT_EQ(oracle.events, 20'000);
  EXPECT_EQ(oracle.dead_letters, 0);
  EXPECT_EQ(oracle.duplicates, 0);
  EXPECT_EQ(oracle.late, 0);
}

TEST(AnomalyInjectorTest, RatesAreHonouredAndCountsAreExact) {
  AnomalyInjector injector(21, {/*rate=*/0.02, /*late_rate=*/0.005, AllAnomalyKinds()});
  const ComposedFile file = Compose(SchemaVersion::kV3, 20, 100'000, {}, false, false, &injector);
  std::map<AnomalyKind, int64_t> counted;
  int64_t anomalous = 0, late = 0;
  for (const RowVerdict& v : file.verdicts) {
    if (!v.anomalous) continue;
    ++counted[v.kind];
    ++anomalous;
    late += v.late;
  }
  EXPECT_EQ(late, counted[AnomalyKind::kLateEvent]);
  EXPECT_NEAR(late, 500, 90);                      // 0.5% of 100k, ~4 sigma
  EXPECT_NEAR(anomalous - late, 0.02 * 99'500, 200);  // 2% of the rest, ~4.5 sigma
  const OracleFile oracle = ClassifyCsv(file.content, file.reference_us);
  int64_t dead = 0, dups = 0;
  for (const RowVerdict& v : file.verdicts) {
    dead += v.anomalous && v.outcome == RowOutcome::kDeadLetter;
    dups += v.anomalous && v.outcome == RowOutcome::kDuplicate;
  }
  EXPECT_EQ(oracle.dead_letters, dead);
  EXPECT_EQ(oracle.duplicates, dups);
  EXPECT_EQ(oracle.late, late);
  EXPECT_EQ(oracle.events, 100'000 - dead - dups);
}

TEST(AnomalyInjectorTest, OnlySelectedKindsAreInjected) {
  absl::StatusOr<AnomalyKindSet> kinds = ParseAnomalyKinds("bad_price,exact_duplicate");
  ASSERT_TRUE(kinds.ok()) << kinds.status();
  const ComposedFile file = Compose(SchemaVersion::kV2, 30, 10'000, {/*rate=*/0.2, /*late_rate=*/0.5, *kinds},
                                    false, false);
  std::map<AnomalyKind, int> seen;
  for (const RowVerdict& v : file.verdicts) {
    if (v.anomalous) ++seen[v.kind];
  }
  ASSERT_EQ(seen.size(), 2u) << "late_event is not selected, whatever --late_rate says";
  EXPECT_GT(seen[AnomalyKind::kBadPrice], 100);
  EXPECT_GT(seen[AnomalyKind::kExactDuplicate], 100);
  const OracleFile oracle = ClassifyCsv(file.content, file.reference_us);
  EXPECT_EQ(oracle.reasons.size(), 1u);
  EXPECT_EQ(oracle.reasons.at(v1::REJECT_REASON_BAD_PRICE), seen[AnomalyKind::kBadPrice]);
  EXPECT_EQ(oracle.duplicates, seen[AnomalyKind::kExactDuplicate]);
}

TEST(AnomalyInjectorTest, DuplicatesNeverReachBackIntoAnEarlierFile) {
  const AnomalyKindSet dups = *ParseAnomalyKinds("exact_duplicate,conflicting_duplicate");
  AnomalyInjector injector(40, {/*rate=*/1.0, /*late_rate=*/0, dups});
  for (int f = 0; f < 3; ++f) {
    const ComposedFile file = Compose(SchemaVersion::kV3, 41 + f, 50, {}, false, false, &injector);
    EXPECT_FALSE(file.verdicts[0].anomalous) << "file " << f << ": nothing earlier in this file to repeat";
    EXPECT_TRUE(file.verdicts[1].anomalous);
    const OracleFile oracle = ClassifyCsv(file.content, file.reference_us);
    EXPECT_EQ(oracle.events, 1) << "every later row repeats row 1";
    EXPECT_EQ(oracle.events + oracle.duplicates + oracle.dead_letters, 50);
  }
}

TEST(AnomalyInjectorTest, KindNamesAreTheReasonNamesTheProcessorStores) {
  for (int k = 0; k < kNumAnomalyKinds; ++k) {
    const auto kind = static_cast<AnomalyKind>(k);
    if (OutcomeOf(kind) == RowOutcome::kDeadLetter) {
      EXPECT_EQ(AnomalyKindName(kind), domain::RejectReasonName(ReasonOf(kind)));
    } else {
      EXPECT_EQ(ReasonOf(kind), v1::REJECT_REASON_UNSPECIFIED) << AnomalyKindName(kind);
    }
  }
}

TEST(AnomalyInjectorTest, ParseAnomalyKindsAcceptsNamesAndGroupsAndNamesTheBadEntry) {
  EXPECT_EQ(ParseAnomalyKinds("all")->count(), static_cast<size_t>(kNumAnomalyKinds));
  EXPECT_EQ(ParseAnomalyKinds("noise")->count(), 5u);
  EXPECT_EQ(ParseAnomalyKinds("malformed")->count(), 3u);
  EXPECT_EQ(ParseAnomalyKinds("invalid")->count(), 16u);
  const absl::StatusOr<AnomalyKindSet> two = ParseAnomalyKinds(" bad_price , late_event ");
  ASSERT_TRUE(two.ok());
  EXPECT_TRUE(two->test(static_cast<int>(AnomalyKind::kBadPrice)));
  EXPECT_TRUE(two->test(static_cast<int>(AnomalyKind::kLateEvent)));
  EXPECT_EQ(two->count(), 2u);
  const absl::Status bogus = ParseAnomalyKinds("bad_price,bogus").status();
  EXPECT_EQ(bogus.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bogus.message().find("'bogus'"), absl::string_view::npos) << bogus;
  EXPECT_EQ(ParseAnomalyKinds("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseAnomalyKinds(",,").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ecomstream::generator
