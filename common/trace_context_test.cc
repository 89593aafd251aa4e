#include "common/trace_context.h"

#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace ecomstream::tracing {
namespace {

using ::testing::HasSubstr;

constexpr char kTraceHex[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kSpanHex[] = "00f067aa0ba902b7";
constexpr char kValid[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

absl::StatusCode ParseCode(absl::string_view text) { return TraceContext::FromTraceparent(text).status().code(); }

TEST(TraceparentTest, ParsesEveryFieldOfAValidVersion00Header) {
  absl::StatusOr<TraceContext> context = TraceContext::FromTraceparent(kValid);
  ASSERT_TRUE(context.ok()) << context.status();
  EXPECT_EQ(context->trace_id().ToHex(), kTraceHex);
  EXPECT_EQ(context->span_id().ToHex(), kSpanHex);
  EXPECT_EQ(context->flags(), 0x01);
  EXPECT_TRUE(context->sampled());
  EXPECT_TRUE(context->IsValid());
  EXPECT_EQ(context->trace_id().bytes[0], 0x4b);
  EXPECT_EQ(context->trace_id().bytes[15], 0x36);
  EXPECT_EQ(context->trace_id().Low64(), 0xa3ce929d0e0e4736ULL);
}

TEST(TraceparentTest, FormatsBackToTheSameText) {
  EXPECT_EQ(TraceContext::FromTraceparent(kValid)->ToTraceparent(), kValid);
  const std::string unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
  absl::StatusOr<TraceContext> context = TraceContext::FromTraceparent(unsampled);
  ASSERT_TRUE(context.ok());
  EXPECT_FALSE(context->sampled());
  EXPECT_EQ(context->ToTraceparent(), unsampled);
}

TEST(TraceparentTest, KeepsUnknownFlagBitsAndReadsOnlyBitZeroAsSampled) {
  absl::StatusOr<TraceContext> context =
      TraceContext::FromTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-fe");
  ASSERT_TRUE(context.ok());
  EXPECT_EQ(context->flags(), 0xfe);
  EXPECT_FALSE(context->sampled());
}

TEST(TraceparentTest, IgnoresSurroundingWhitespace) {
  absl::StatusOr<TraceContext> context = TraceContext::FromTraceparent(absl::StrCat(" \t", kValid, "\t "));
  ASSERT_TRUE(context.ok()) << context.status();
  EXPECT_EQ(context->ToTraceparent(), kValid);
  EXPECT_TRUE(TraceContext::FromTraceparent(absl::StrCat(kValid, "\n")).ok());
}

TEST(TraceparentTest, RejectsVersionFf) {
  absl::Status status = TraceContext::FromTraceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("version ff"));
}

TEST(TraceparentTest, RejectsUpperCaseHexInEveryField) {
  EXPECT_EQ(ParseCode("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseCode("00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseCode("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseCode("0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), absl::StatusCode::kInvalidArgument);
}

TEST(TraceparentTest, RejectsNonHexCharacters) {
  EXPECT_EQ(ParseCode("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseCode("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseCode("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseCode("00-4bf92f3577b34da6 3ce929d0e0e4736-00f067aa0ba902b7-01"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseCode("0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), absl::StatusCode::kInvalidArgument);
  std::string with_nul(kValid);
  with_nul[10] = '\0';
  EXPECT_EQ(ParseCode(with_nul), absl::StatusCode::kInvalidArgument);
}

TEST(TraceparentTest, RejectsAllZeroIds) {
  absl::Status zero_trace =
      TraceContext::FromTraceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01").status();
  EXPECT_EQ(zero_trace.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(zero_trace.message(), HasSubstr("trace id is all zero"));
  absl::Status zero_span =
      TraceContext::FromTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01").status();
  EXPECT_EQ(zero_span.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(zero_span.message(), HasSubstr("parent id is all zero"));
}

TEST(TraceparentTest, RejectsWrongFieldLengths) {
  // Trace id 31 and 33 digits, span id 15 and 17, flags 1 and 3, version 1 and 3.
  for (const char* text : {
           "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e47361-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b71-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011",
           "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
           "000-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
       }) {
    EXPECT_EQ(ParseCode(text), absl::StatusCode::kInvalidArgument) << text;
  }
}

TEST(TraceparentTest, RejectsMissingExtraAndMisplacedFields) {
  for (const char* text : {
           "",
           "00",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",     // no flags
           "00-4bf92f3577b34da6a3ce929d0e0e4736-01",                   // no span id
           "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-00",  // no version
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",  // extra empty field
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-ab",
           "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7--1",
       }) {
    EXPECT_EQ(ParseCode(text), absl::StatusCode::kInvalidArgument) << "\"" << text << "\"";
  }
}

TEST(TraceparentTest, RejectsTrailingGarbageAfterAVersion00Header) {
  EXPECT_EQ(ParseCode(absl::StrCat(kValid, "x")), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseCode(absl::StrCat(kValid, " x")), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseCode(absl::StrCat(kValid, ",", kValid)), absl::StatusCode::kInvalidArgument);
}

TEST(TraceparentTest, AcceptsALaterVersionWithMoreFieldsButNotGlued) {
  absl::StatusOr<TraceContext> future =
      TraceContext::FromTraceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds");
  ASSERT_TRUE(future.ok()) << future.status();
  EXPECT_EQ(future->trace_id().ToHex(), kTraceHex);
  EXPECT_TRUE(future->sampled());
  EXPECT_TRUE(TraceContext::FromTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").ok());
  EXPECT_EQ(ParseCode("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"), absl::StatusCode::kInvalidArgument);
  // What we send is always version 00.
  EXPECT_EQ(future->ToTraceparent(), kValid);
}

TEST(TraceparentTest, RejectsAMegabyteOfJunk) {
  EXPECT_EQ(ParseCode(std::string(1 << 20, 'a')), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseCode(absl::StrCat(kValid, std::string(1 << 20, '-'))), absl::StatusCode::kInvalidArgument);
}

TEST(TraceparentTest, OrInvalidGivesTheInvalidContextOnErrors) {
  EXPECT_FALSE(TraceContext::FromTraceparentOrInvalid("garbage").IsValid());
  EXPECT_FALSE(TraceContext::FromTraceparentOrInvalid("").IsValid());
  EXPECT_EQ(TraceContext::FromTraceparentOrInvalid(kValid).ToTraceparent(), kValid);
}

TEST(TraceparentTest, InvalidContextFormatsAsEmpty) {
  EXPECT_EQ(TraceContext().ToTraceparent(), "");
  EXPECT_FALSE(TraceContext().IsValid());
  EXPECT_FALSE(TraceContext(NewTraceId(), SpanId(), 1).IsValid());
  EXPECT_FALSE(TraceContext(TraceId(), NewSpanId(), 1).IsValid());
}

TEST(TraceIdTest, HexRoundTripsAndRejectsBadText) {
  TraceId id;
  ASSERT_TRUE(TraceId::FromHex(kTraceHex, &id));
  EXPECT_EQ(id.ToHex(), kTraceHex);
  EXPECT_FALSE(TraceId::FromHex("00000000000000000000000000000000", &id));
  EXPECT_FALSE(TraceId::FromHex("4BF92F3577B34DA6A3CE929D0E0E4736", &id));
  EXPECT_FALSE(TraceId::FromHex("4bf92f3577b34da6a3ce929d0e0e473", &id));
  SpanId span;
  ASSERT_TRUE(SpanId::FromHex(kSpanHex, &span));
  EXPECT_EQ(span.ToHex(), kSpanHex);
  EXPECT_FALSE(SpanId::FromHex("0000000000000000", &span));
  EXPECT_FALSE(SpanId::FromHex("00f067aa0ba902b", &span));
}

TEST(IdGeneratorTest, NewIdsAreValidAndDistinct) {
  std::set<std::string> trace_ids;
  std::set<std::string> span_ids;
  for (int i = 0; i < 10000; ++i) {
    const TraceId trace_id = NewTraceId();
    const SpanId span_id = NewSpanId();
    ASSERT_TRUE(trace_id.IsValid());
    ASSERT_TRUE(span_id.IsValid());
    trace_ids.insert(trace_id.ToHex());
    span_ids.insert(span_id.ToHex());
  }
  EXPECT_EQ(trace_ids.size(), 10000u);
  EXPECT_EQ(span_ids.size(), 10000u);
}

TEST(IdGeneratorTest, ThreadsDrawDifferentIds) {
  std::vector<std::string> a;
  std::vector<std::string> b;
  std::thread ta([&a] {
    for (int i = 0; i < 1000; ++i) a.push_back(NewTraceId().ToHex());
  });
  std::thread tb([&b] {
    for (int i = 0; i < 1000; ++i) b.push_back(NewTraceId().ToHex());
  });
  ta.join();
  tb.join();
  std::set<std::string> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  EXPECT_EQ(all.size(), 2000u);
}

TEST(IdGeneratorTest, AForkedChildDoesNotRepeatTheParentsIds) {
  NewTraceId();  // seed this thread's generator before forking
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const TraceId child = NewTraceId();
    const ssize_t written = ::write(fds[1], child.bytes.data(), child.bytes.size());
    ::_exit(written == 16 ? 0 : 1);
  }
  ::close(fds[1]);
  const TraceId parent = NewTraceId();
  TraceId child;
  EXPECT_EQ(::read(fds[0], child.bytes.data(), child.bytes.size()), 16);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(child.IsValid());
  EXPECT_NE(child, parent);
}

// --- traceparent in gRPC metadata, over a real channel -----------------------------------------

namespace otlp = ::opentelemetry::proto::collector::trace::v1;

// Any unary service will do; this one records what ExtractTraceparent saw.
class ContextRecordingService final : public otlp::TraceService::Service {
 public:
  grpc::Status Export(grpc::ServerContext* context, const otlp::ExportTraceServiceRequest*,
                      otlp::ExportTraceServiceResponse*) override {
    absl::MutexLock lock(&mu_);
    last_ = ExtractTraceparent(*context);
    return grpc::Status::OK;
  }
  TraceContext last() {
    absl::MutexLock lock(&mu_);
    return last_;
  }

 private:
  absl::Mutex mu_;
  TraceContext last_;
};

class TraceparentMetadataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port, 0);
    stub_ = otlp::TraceService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override { server_->Shutdown(); }

  // Makes one call with `prepare` applied to the context; returns what the server extracted.
  template <typename F>
  TraceContext Call(F prepare) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    prepare(&context);
    otlp::ExportTraceServiceRequest request;
    otlp::ExportTraceServiceResponse response;
    grpc::Status status = stub_->Export(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return service_.last();
  }

  ContextRecordingService service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<otlp::TraceService::Stub> stub_;
};

TEST_F(TraceparentMetadataTest, InjectedContextArrivesIntact) {
  const TraceContext sent(NewTraceId(), NewSpanId(), kTraceFlagSampled);
  EXPECT_EQ(Call([&](grpc::ClientContext* c) { InjectTraceparent(sent, c); }), sent);
  const TraceContext unsampled(NewTraceId(), NewSpanId(), 0);
  EXPECT_EQ(Call([&](grpc::ClientContext* c) { InjectTraceparent(unsampled, c); }), unsampled);
}

TEST_F(TraceparentMetadataTest, AbsentInvalidOrMalformedMetadataExtractsAsInvalid) {
  EXPECT_FALSE(Call([](grpc::ClientContext*) {}).IsValid());
  EXPECT_FALSE(Call([](grpc::ClientContext* c) { InjectTraceparent(TraceContext(), c); }).IsValid());
  EXPECT_FALSE(Call([](grpc::ClientContext* c) { c->AddMetadata("traceparent", "garbage"); }).IsValid());
  EXPECT_FALSE(Call([](grpc::ClientContext* c) {
                 c->AddMetadata("traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01");
               }).IsValid());
}

TEST_F(TraceparentMetadataTest, TwoDifferentTraceparentsExtractAsInvalid) {
  const TraceContext a(NewTraceId(), NewSpanId(), 1);
  const TraceContext b(NewTraceId(), NewSpanId(), 1);
  EXPECT_FALSE(Call([&](grpc::ClientContext* c) {
                 InjectTraceparent(a, c);
                 InjectTraceparent(b, c);
               }).IsValid());
  EXPECT_EQ(Call([&](grpc::ClientContext* c) {
              InjectTraceparent(a, c);
              InjectTraceparent(a, c);
            }),
            a);
}

}  // namespace
}  // namespace ecomstream::tracing
