#include "services/processor/tap.h"

#include <httplib.h>

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/domain.h"
#include "common/time_util.h"
#include "common/uuid.h"
#include "services/processor/field_parsers.h"

namespace ecomstream::processor {
namespace {

constexpr int kMaxRate = 1000;
constexpr size_t kMaxParamBytes = 64;

// Appends `text` as a JSON string. Bytes that are not UTF-8 become U+FFFD.
void AppendJsonString(absl::string_view text, std::string* out) {
  out->push_back('"');
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      switch (c) {
        case '"': out->append("\\\""); break;
        case '\\': out->append("\\\\"); break;
        case '\n': out->append("\\n"); break;
        case '\r': out->append("\\r"); break;
        case '\t': out->append("\\t"); break;
        default:
          if (c < 0x20 || c == 0x7f) {
            absl::StrAppend(out, "\\u00", absl::Hex(c, absl::kZeroPad2));
          } else {
            out->push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    bool incomplete = false;
    const size_t len = Utf8SequenceLength(p + i, n - i, &incomplete);
    if (len == 0 || incomplete) {
      out->append("\\ufffd");
      ++i;
    } else {
      out->append(text.data() + i, len);
      i += len;
    }
  }
  out->push_back('"');
}

absl::string_view OutcomeName(RowOutcome outcome) {
  switch (outcome) {
    case RowOutcome::kEvent: return "event";
    case RowOutcome::kDeadLetter: return "dead_letter";
    case RowOutcome::kDuplicate: return "duplicate";
  }
  return "";
}

std::string Line(absl::string_view file_name, int64_t row, const CsvRecord& record, RowOutcome outcome,
                 const RowValidator& validator) {
  std::string line = "{\"time\":";
  AppendJsonString(FormatTimestampMicros(NowMicros()), &line);
  line += ",\"file\":";
  AppendJsonString(file_name, &line);
  absl::StrAppend(&line, ",\"row\":", row, ",\"line\":", record.line, ",\"outcome\":\"", OutcomeName(outcome), "\"");
  if (outcome == RowOutcome::kDeadLetter) {
    v1::DeadLetter dead_letter;
    validator.FillDeadLetter(&dead_letter);
    line += ",\"reasons\":[";
    for (int i = 0; i < dead_letter.reasons_size(); ++i) {
      if (i > 0) line.push_back(',');
      AppendJsonString(domain::RejectReasonName(static_cast<RejectReason>(dead_letter.reasons(i))), &line);
    }
    line += "],\"detail\":";
    AppendJsonString(dead_letter.detail(), &line);
  } else if (outcome == RowOutcome::kEvent) {
    v1::Event event;
    validator.FillEvent(&event);
    std::string id;
    AppendUuid(event.event_id(), &id);
    line += ",\"event_id\":";
    AppendJsonString(id, &line);
    line += ",\"event_type\":";
    AppendJsonString(domain::EventTypeName(event.event_type()), &line);
    if (!event.category().empty()) {
      line += ",\"category\":";
      AppendJsonString(event.category(), &line);
    }
    if (event.late_arrival()) line += ",\"late_arrival\":true";
  }
  line += ",\"raw\":";
  AppendJsonString(record.raw, &line);
  line += "}\n";
  return line;
}

bool Passes(const TapFilter& filter, RowOutcome outcome, const RowValidator& validator) {
  switch (outcome) {
    case RowOutcome::kEvent: return filter.events;
    case RowOutcome::kDuplicate: return filter.duplicates;
    case RowOutcome::kDeadLetter:
      if (!filter.dead_letters) return false;
      if (filter.reasons.empty()) return true;
      for (RejectReason reason : validator.reasons()) {
        if (std::find(filter.reasons.begin(), filter.reasons.end(), reason) != filter.reasons.end()) return true;
      }
      return false;
  }
  return false;
}

std::string Shown(absl::string_view value) {
  return absl::StrCat("\"", value.substr(0, kMaxParamBytes), value.size() > kMaxParamBytes ? "...\"" : "\"");
}

}  // namespace

absl::StatusOr<TapFilter> ParseTapFilter(const std::multimap<std::string, std::string>& params) {
  TapFilter filter;
  bool outcome_given = false;
  bool any_outcome[3] = {false, false, false};  // event, dead_letter, duplicate
  for (const auto& [name, value] : params) {
    if (name == "outcome") {
      outcome_given = true;
      for (absl::string_view item : absl::StrSplit(value, ',')) {
        if (item == "event") {
          any_outcome[0] = true;
        } else if (item == "dead_letter") {
          any_outcome[1] = true;
        } else if (item == "duplicate") {
          any_outcome[2] = true;
        } else {
          return absl::InvalidArgumentError(
              absl::StrCat("outcome ", Shown(item), " is not event, dead_letter or duplicate"));
        }
      }
    } else if (name == "reason") {
      for (absl::string_view item : absl::StrSplit(value, ',')) {
        bool found = false;
        for (int r = 1; r < kNumRejectReasons && !found; ++r) {
          if (v1::RejectReason_IsValid(r) && domain::RejectReasonName(static_cast<RejectReason>(r)) == item) {
            filter.reasons.push_back(static_cast<RejectReason>(r));
            found = true;
          }
        }
        if (!found) {
          return absl::InvalidArgumentError(
              absl::StrCat("reason ", Shown(item), " is not a reason code (see docs/rows.md)"));
        }
      }
    } else if (name == "rate") {
      int rate = 0;
      if (!absl::SimpleAtoi(value, &rate) || rate < 1 || rate > kMaxRate) {
        return absl::InvalidArgumentError(absl::StrCat("rate ", Shown(value), " is not a whole number in 1..", kMaxRate));
      }
      filter.rows_per_second = rate;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown parameter ", Shown(name), " (outcome, reason and rate are known)"));
    }
  }
  if (outcome_given) {
    filter.events = any_outcome[0];
    filter.dead_letters = any_outcome[1];
    filter.duplicates = any_outcome[2];
  }
  if (!filter.reasons.empty()) {
    if (outcome_given && !filter.dead_letters) {
      return absl::InvalidArgumentError("reason= selects dead letters, but outcome= leaves them out");
    }
    filter.events = false;
    filter.duplicates = false;
    filter.dead_letters = true;
  }
  return filter;
}

Tap::Tap(TapOptions options, metrics::Registry* registry) : options_(options) {
  if (registry != nullptr) {
    constexpr char kHelp[] = "Rows offered to GET /tap watchers by result (per watcher).";
    sent_ = &registry->GetCounter("ecomstream_processor_tap_rows_total", kHelp, {{"result", "sent"}});
    rate_limited_ = &registry->GetCounter("ecomstream_processor_tap_rows_total", kHelp, {{"result", "rate_limited"}});
    dropped_ = &registry->GetCounter("ecomstream_processor_tap_rows_total", kHelp, {{"result", "dropped"}});
  }
}

Tap::~Tap() { Close(); }

void Tap::Offer(absl::string_view file_name, int64_t row, const CsvRecord& record, RowOutcome outcome,
                const RowValidator& validator) {
  std::string line;  // built once, for the first subscriber that takes it
  const int64_t now_us = MonotonicMicros();
  absl::MutexLock lock(&mu_);
  for (Subscription* s : subscriptions_) {
    if (!Passes(s->filter_, outcome, validator)) continue;
    const double rate = s->filter_.rows_per_second;
    s->tokens_ = std::min(rate, s->tokens_ + static_cast<double>(now_us - s->refilled_us_) * rate / 1e6);
    s->refilled_us_ = now_us;
    if (s->tokens_ < 1) {
      if (rate_limited_ != nullptr) rate_limited_->Increment();
      continue;
    }
    if (s->lines_.size() >= options_.buffer_lines) {
      if (dropped_ != nullptr) dropped_->Increment();
      continue;
    }
    s->tokens_ -= 1;
    if (line.empty()) line = Line(file_name, row, record, outcome, validator);
    s->lines_.push_back(line);
    if (sent_ != nullptr) sent_->Increment();
  }
  changed_.SignalAll();
}

absl::StatusOr<std::unique_ptr<Tap::Subscription>> Tap::Subscribe(TapFilter filter) {
  absl::MutexLock lock(&mu_);
  if (closed_) return absl::UnavailableError("the processor is stopping");
  if (static_cast<int>(subscriptions_.size()) >= options_.max_subscribers) {
    return absl::ResourceExhaustedError(
        absl::StrCat("already ", options_.max_subscribers, " watchers of /tap; try again later"));
  }
  std::unique_ptr<Subscription> subscription(new Subscription(this, std::move(filter)));
  subscription->tokens_ = subscription->filter_.rows_per_second;  // a burst of one second
  subscription->refilled_us_ = MonotonicMicros();
  subscriptions_.push_back(subscription.get());
  subscribers_.store(static_cast<int>(subscriptions_.size()), std::memory_order_relaxed);
  return subscription;
}

Tap::Subscription::~Subscription() {
  absl::MutexLock lock(&tap_->mu_);
  auto& all = tap_->subscriptions_;
  all.erase(std::remove(all.begin(), all.end(), this), all.end());
  tap_->subscribers_.store(static_cast<int>(all.size()), std::memory_order_relaxed);
  tap_->changed_.SignalAll();
}

bool Tap::Subscription::Next(std::string* out, absl::Duration timeout) {
  absl::MutexLock lock(&tap_->mu_);
  const absl::Time deadline = absl::Now() + timeout;
  while (lines_.empty() && !tap_->closed_) {
    if (tap_->changed_.WaitWithDeadline(&tap_->mu_, deadline)) break;
  }
  while (!lines_.empty()) {
    out->append(lines_.front());
    lines_.pop_front();
  }
  return !tap_->closed_;
}

void Tap::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  changed_.SignalAll();
}

void Tap::Serve(StatusServer* server) {
  server->AddGet("/tap", [this](const httplib::Request& request, httplib::Response& response) {
    absl::StatusOr<TapFilter> filter = ParseTapFilter(request.params);
    if (!filter.ok()) {
      response.status = 400;
      response.set_content(absl::StrCat(filter.status().message(), "\n"), "text/plain");
      return;
    }
    absl::StatusOr<std::unique_ptr<Subscription>> subscribed = Subscribe(*std::move(filter));
    if (!subscribed.ok()) {
      response.status = 503;
      response.set_content(absl::StrCat(subscribed.status().message(), "\n"), "text/plain");
      return;
    }
    std::shared_ptr<Subscription> subscription = *std::move(subscribed);
    response.set_chunked_content_provider(
        "application/x-ndjson", [subscription](size_t, httplib::DataSink& sink) {
          std::string lines;
          // Wakes at least every 500 ms, so a watcher that went away is noticed.
          if (!subscription->Next(&lines, absl::Milliseconds(500))) {
            sink.done();
            return true;
          }
          if (!sink.is_writable()) return false;
          if (lines.empty()) return true;
          return sink.write(lines.data(), lines.size());
        });
  });
}

}  // namespace ecomstream::processor
