#include "services/processor/tap.h"

#include <httplib.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/processor/schema_registry.h"
#include "tests/e2e/e2e_util.h"

namespace ecomstream::processor {
namespace {

using ::testing::HasSubstr;

constexpr char kHeader[] = "event_id,user_id,event_type,product_id,price,event_time";
constexpr int64_t kReference = 1704067200LL * 1000000;  // 2024-01-01T00:00:00Z

// Validates `row` (a v1 record) and offers it to `tap` as row `n` of "f.csv".
class Rows {
 public:
  Rows() {
    const std::vector<absl::string_view> header = absl::StrSplit(kHeader, ',');
    schema_ = *SchemaRegistry::Detect(header);
  }
  void Offer(Tap& tap, const std::string& raw, int64_t n) {
    StringByteSource source(raw);
    CsvReader reader(&source, CsvReaderOptions{});
    CsvRecord record;
    ASSERT_TRUE(*reader.Next(&record));
    RowValidator validator(schema_, RowValidatorOptions{kReference});
    const RowOutcome outcome = validator.Validate(record, n);
    if (tap.active()) tap.Offer("f.csv", n, record, outcome, validator);
  }

 private:
  Schema schema_;
};

const std::string kValid = "018f3a6e-1b2c-7d3e-8f40-123456789abc,42,view,400001,9.99,2023-12-31T23:30:00Z";
const std::string kBadPrice = "018f3a6e-1b2c-7d3e-8f40-123456789abd,42,view,400001,-1,2023-12-31T23:30:00Z";

absl::StatusOr<TapFilter> Filter(std::multimap<std::string, std::string> params) {
  return ParseTapFilter(params);
}

TEST(TapFilterTest, ParsesOutcomesReasonsAndRate) {
  auto all = Filter({});
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->events && all->dead_letters && all->duplicates);
  EXPECT_EQ(all->rows_per_second, 100);

  auto some = Filter({{"outcome", "event,duplicate"}, {"rate", "7"}});
  ASSERT_TRUE(some.ok());
  EXPECT_TRUE(some->events && some->duplicates);
  EXPECT_FALSE(some->dead_letters);
  EXPECT_EQ(some->rows_per_second, 7);

  auto reasons = Filter({{"reason", "bad_price"}, {"reason", "unknown_category,nul_byte"}});
  ASSERT_TRUE(reasons.ok());
  EXPECT_FALSE(reasons->events);
  EXPECT_TRUE(reasons->dead_letters);
  EXPECT_THAT(reasons->reasons, ::testing::ElementsAre(v1::REJECT_REASON_BAD_PRICE, v1::REJECT_REASON_UNKNOWN_CATEGORY,
                                                       v1::REJECT_REASON_NUL_BYTE));
}

TEST(TapFilterTest, HostileValuesAreRefusedNamingTheParameter) {
  const std::vector<std::pair<std::multimap<std::string, std::string>, std::string>> cases = {
      {{{"outcome", "everything"}}, "outcome \"everything\" is not event, dead_letter or duplicate"},
      {{{"reason", "bad_price,'; DROP TABLE"}}, "reason \"'; DROP TABLE\" is not a reason code (see docs/rows.md)"},
      {{{"reason", "unspecified"}}, "reason \"unspecified\" is not a reason code (see docs/rows.md)"},
      {{{"rate", "0"}}, "rate \"0\" is not a whole number in 1..1000"},
      {{{"rate", "1001"}}, "rate \"1001\" is not a whole number in 1..1000"},
      {{{"rate", "1e3"}}, "rate \"1e3\" is not a whole number in 1..1000"},
      {{{"rate", std::string(100, '9')}}, "rate \"" + std::string(64, '9') + "...\" is not a whole number in 1..1000"},
      {{{"format", "xml"}}, "unknown parameter \"format\" (outcome, reason and rate are known)"},
      {{{"outcome", "event"}, {"reason", "bad_price"}}, "reason= selects dead letters, but outcome= leaves them out"},
  };
  for (const auto& [params, message] : cases) {
    auto filter = ParseTapFilter(params);
    ASSERT_FALSE(filter.ok()) << message;
    EXPECT_EQ(filter.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(filter.status().message(), message);
  }
}

TEST(TapTest, NobodyWatchingMeansInactiveAndNothingBuffered) {
  metrics::Registry registry;
  Tap tap(TapOptions{}, &registry);
  EXPECT_FALSE(tap.active());
  Rows rows;
  rows.Offer(tap, kValid, 1);
  EXPECT_THAT(registry.ExportText(), HasSubstr("ecomstream_processor_tap_rows_total{result=\"sent\"} 0\n"));
}

TEST(TapTest, AFullBufferDropsAndCountsInsteadOfWaiting) {
  metrics::Registry registry;
  Tap tap(TapOptions{4, 3}, &registry);
  TapFilter filter;
  filter.rows_per_second = 1000;
  auto subscription = tap.Subscribe(filter);
  ASSERT_TRUE(subscription.ok());
  Rows rows;
  for (int n = 1; n <= 10; ++n) rows.Offer(tap, kValid, n);
  std::string lines;
  EXPECT_TRUE((*subscription)->Next(&lines, absl::ZeroDuration()));
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 3);
  const std::string text = registry.ExportText();
  EXPECT_THAT(text, HasSubstr("ecomstream_processor_tap_rows_total{result=\"sent\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("ecomstream_processor_tap_rows_total{result=\"dropped\"} 7\n"));
}

TEST(TapTest, TheRateLimitsEachWatcher) {
  metrics::Registry registry;
  Tap tap(TapOptions{}, &registry);
  TapFilter filter;
  filter.rows_per_second = 2;
  auto subscription = tap.Subscribe(filter);
  ASSERT_TRUE(subscription.ok());
  Rows rows;
  for (int n = 1; n <= 5; ++n) rows.Offer(tap, kValid, n);
  std::string lines;
  (*subscription)->Next(&lines, absl::ZeroDuration());
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 2);
  EXPECT_THAT(registry.ExportText(), HasSubstr("ecomstream_processor_tap_rows_total{result=\"rate_limited\"} 3\n"));
}

TEST(TapTest, WatchersBeyondTheCapAreRefused) {
  Tap tap(TapOptions{1, 10}, nullptr);
  auto first = tap.Subscribe(TapFilter{});
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(tap.Subscribe(TapFilter{}).status().code(), absl::StatusCode::kResourceExhausted);
  first->reset();
  EXPECT_FALSE(tap.active());
  EXPECT_TRUE(tap.Subscribe(TapFilter{}).ok());
}

TEST(TapHttpTest, GetTapStreamsFilteredJsonLinesAndRefusesBadParameters) {
  metrics::Registry registry;
  Tap tap(TapOptions{}, &registry);
  StatusServer server(&registry, [] { return true; });
  tap.Serve(&server);
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());

  httplib::Client client("127.0.0.1", server.port());
  auto bad = client.Get("/tap?reason=nope");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(bad->body, "reason \"nope\" is not a reason code (see docs/rows.md)\n");

  std::string received;
  std::thread reader([&] {
    httplib::Client watcher("127.0.0.1", server.port());
    watcher.set_read_timeout(10, 0);
    watcher.Get("/tap?outcome=dead_letter", [&](const char* data, size_t n) {
      received.append(data, n);
      return received.find('\n') == std::string::npos;  // one line is enough
    });
  });
  ASSERT_TRUE(::ecomstream::testing::WaitUntil([&] { return tap.active(); }, absl::Seconds(10)));
  Rows rows;
  rows.Offer(tap, kValid, 1);
  rows.Offer(tap, kBadPrice, 2);
  reader.join();
  EXPECT_EQ(received,
            received.substr(0, received.find("\"file\"")) +
                "\"file\":\"f.csv\",\"row\":2,\"line\":1,\"outcome\":\"dead_letter\",\"reasons\":[\"bad_price\"],"
                "\"detail\":\"price: negative (value \\\"-1\\\")\",\"raw\":\"" + kBadPrice + "\"}\n");
  EXPECT_THAT(received, ::testing::StartsWith("{\"time\":\""));
  tap.Close();
  server.Stop();
}

}  // namespace
}  // namespace ecomstream::processor
