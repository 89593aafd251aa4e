#include "tests/otel/test_collector.h"

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace ecomstream::testing {
namespace {

namespace otlp_collector = ::opentelemetry::proto::collector::trace::v1;
namespace otlp_trace = ::opentelemetry::proto::trace::v1;

// A hand-built request, so the collector is tested without the exporter.
otlp_collector::ExportTraceServiceRequest Request(const std::string& service, const std::string& trace_id,
                                                  std::initializer_list<std::string> span_ids) {
  otlp_collector::ExportTraceServiceRequest request;
  auto* resource_spans = request.add_resource_spans();
  auto* attribute = resource_spans->mutable_resource()->add_attributes();
  attribute->set_key("service.name");
  attribute->mutable_value()->set_string_value(service);
  auto* scope_spans = resource_spans->add_scope_spans();
  scope_spans->mutable_scope()->set_name("test-scope");
  for (const std::string& span_id : span_ids) {
    otlp_trace::Span* span = scope_spans->add_spans();
    span->set_trace_id(trace_id);
    span->set_span_id(span_id);
    span->set_name(absl::StrCat("span-", span_id.size()));
    auto* kv = span->add_attributes();
    kv->set_key("rows");
    kv->mutable_value()->set_int_value(7);
  }
  return request;
}

class TestCollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TestCollector>> collector = TestCollector::Start();
    ASSERT_TRUE(collector.ok()) << collector.status();
    collector_ = *std::move(collector);
    stub_ = otlp_collector::TraceService::NewStub(
        grpc::CreateChannel(collector_->address(), grpc::InsecureChannelCredentials()));
  }

  grpc::Status Export(const otlp_collector::ExportTraceServiceRequest& request,
                      absl::Duration deadline = absl::Seconds(10)) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    otlp_collector::ExportTraceServiceResponse response;
    return stub_->Export(&context, request, &response);
  }

  std::unique_ptr<TestCollector> collector_;
  std::unique_ptr<otlp_collector::TraceService::Stub> stub_;
};

const std::string kTraceA(16, '\xaa');
const std::string kTraceB(16, '\xbb');

TEST_F(TestCollectorTest, ListensOnLoopbackWithAKernelChosenPort) {
  EXPECT_GT(collector_->port(), 0);
  EXPECT_EQ(collector_->address(), absl::StrCat("127.0.0.1:", collector_->port()));
  EXPECT_EQ(collector_->endpoint(), absl::StrCat("http://127.0.0.1:", collector_->port()));
}

TEST_F(TestCollectorTest, RecordsSpansWithTheirResourceAndScopeAndGroupsThemByTrace) {
  ASSERT_TRUE(Export(Request("svc-a", kTraceA, {std::string(8, '\x01'), std::string(8, '\x02')})).ok());
  ASSERT_TRUE(Export(Request("svc-b", kTraceB, {std::string(8, '\x03')})).ok());
  EXPECT_TRUE(collector_->WaitForSpans(3, absl::Seconds(1)));
  EXPECT_EQ(collector_->span_count(), 3u);
  EXPECT_EQ(collector_->export_calls(), 2);
  const std::vector<CollectedSpan> a = collector_->SpansForTrace(std::string(32, 'a'));
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].span_id_hex(), "0101010101010101");
  EXPECT_EQ(a[1].span_id_hex(), "0202020202020202");
  EXPECT_EQ(a[0].trace_id_hex(), std::string(32, 'a'));
  EXPECT_EQ(a[0].parent_span_id_hex(), "");
  EXPECT_EQ(a[0].ResourceAttribute("service.name"), "svc-a");
  EXPECT_EQ(a[0].ResourceAttribute("absent"), "");
  EXPECT_EQ(a[0].scope.name(), "test-scope");
  EXPECT_EQ(a[0].Attribute("rows")->int_value(), 7);
  EXPECT_FALSE(a[0].Attribute("absent").has_value());
  const std::vector<CollectedSpan> b = collector_->SpansForTrace(std::string(32, 'b'));
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].ResourceAttribute("service.name"), "svc-b");
  EXPECT_TRUE(collector_->SpansForTrace(std::string(32, 'c')).empty());
  EXPECT_EQ(collector_->Spans().size(), 3u);
}

TEST_F(TestCollectorTest, WaitForSpansTimesOutWhenTooFewArrive) {
  ASSERT_TRUE(Export(Request("svc", kTraceA, {std::string(8, '\x01')})).ok());
  const absl::Time start = absl::Now();
  EXPECT_FALSE(collector_->WaitForSpans(2, absl::Milliseconds(100)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(100));
  EXPECT_TRUE(collector_->WaitForSpans(1, absl::Milliseconds(100)));
}

TEST_F(TestCollectorTest, AFailingCollectorAnswersWithItsStatusAndRecordsNothing) {
  collector_->SetExportStatus(absl::ResourceExhaustedError("full"));
  grpc::Status status = Export(Request("svc", kTraceA, {std::string(8, '\x01')}));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(status.error_message(), "full");
  EXPECT_EQ(collector_->span_count(), 0u);
  EXPECT_EQ(collector_->export_calls(), 1);
  collector_->SetExportStatus(absl::OkStatus());
  EXPECT_TRUE(Export(Request("svc", kTraceA, {std::string(8, '\x01')})).ok());
  EXPECT_EQ(collector_->span_count(), 1u);
}

TEST_F(TestCollectorTest, ASlowCollectorHoldsTheCallForItsDelay) {
  collector_->SetExportDelay(absl::Seconds(30));
  grpc::Status status = Export(Request("svc", kTraceA, {std::string(8, '\x01')}), absl::Milliseconds(200));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // Destroying the collector wakes the sleeping handler at once (TearDown would hang otherwise).
  const absl::Time start = absl::Now();
  collector_.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(TestCollectorTest, WithoutKeepingSpansItStillCountsThem) {
  collector_->SetKeepSpans(false);
  ASSERT_TRUE(Export(Request("svc", kTraceA, {std::string(8, '\x01'), std::string(8, '\x02')})).ok());
  EXPECT_EQ(collector_->span_count(), 2u);
  EXPECT_TRUE(collector_->Spans().empty());
}

}  // namespace
}  // namespace ecomstream::testing
