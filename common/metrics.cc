#include "common/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

#ifndef ECOMSTREAM_VERSION
#define ECOMSTREAM_VERSION "0.1.0"
#endif

namespace ecomstream::metrics {
namespace {

void AtomicAdd(std::atomic<double>& target, double delta) {
  double current = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(current, current + delta, std::memory_order_relaxed)) {
  }
}

// Integers print exactly (no exponent below 2^53); other values round-trip exactly.
std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  // The shortest form that reads back as the same double (0.00025, not 0.00025000000000000001).
  char buf[32];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, value);
    if (std::strtod(buf, nullptr) == value) break;
  }
  return buf;
}

std::string RenderLabels(const Labels& labels) {
  std::string out;
  for (const auto& [key, value] : labels) {
    if (!out.empty()) out.push_back(',');
    absl::StrAppend(&out, key, "=\"", EscapeLabelValue(value), "\"");
  }
  return out;
}

// HELP text escaped for the text format (\\, \n).
std::string EscapeHelp(absl::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out.append("\\\\");
    } else if (c == '\n') {
      out.append("\\n");
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string Braced(absl::string_view labels, absl::string_view extra = "") {
  if (labels.empty() && extra.empty()) return "";
  if (labels.empty()) return absl::StrCat("{", extra, "}");
  if (extra.empty()) return absl::StrCat("{", labels, "}");
  return absl::StrCat("{", labels, ",", extra, "}");
}

}  // namespace

std::string EscapeLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out.append("\\\\");
    } else if (c == '"') {
      out.append("\\\"");
    } else if (c == '\n') {
      out.append("\\n");
    } else {
      out.push_back(c);
    }
  }
  return out;
}

void Counter::Increment(double value) {
  if (value > 0) AtomicAdd(value_, value);
}

void Gauge::Add(double delta) { AtomicAdd(value_, delta); }

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), buckets_(new std::atomic<uint64_t>[upper_bounds_.size() + 1]) {
  std::sort(upper_bounds_.begin(), upper_bounds_.end());
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(double value) {
  const size_t index =
      static_cast<size_t>(std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin());
  buckets_[index].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(sum_, value);
}

uint64_t Histogram::Count() const {
  uint64_t count = 0;
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) count += BucketCount(i);
  return count;
}

std::vector<double> LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

std::vector<double> SizeBuckets() {
  std::vector<double> out;
  for (double b = 1; b <= 1048576; b *= 4) out.push_back(b);
  return out;
}

Registry& Registry::Default() {
  static Registry* registry = new Registry();
  return *registry;
}

Registry::Family& Registry::GetFamily(absl::string_view name, absl::string_view help, Type type) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{type, EscapeHelp(help), {}, {}, {}}).first;
  }
  return it->second;
}

Counter& Registry::GetCounter(absl::string_view name, absl::string_view help, const Labels& labels) {
  absl::MutexLock lock(&mu_);
  auto& slot = GetFamily(name, help, Type::kCounter).counters[RenderLabels(labels)];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& Registry::GetGauge(absl::string_view name, absl::string_view help, const Labels& labels) {
  absl::MutexLock lock(&mu_);
  auto& slot = GetFamily(name, help, Type::kGauge).gauges[RenderLabels(labels)];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& Registry::GetHistogram(absl::string_view name, absl::string_view help,
                                  const std::vector<double>& upper_bounds, const Labels& labels) {
  absl::MutexLock lock(&mu_);
  auto& slot = GetFamily(name, help, Type::kHistogram).histograms[RenderLabels(labels)];
  if (!slot) slot = std::make_unique<Histogram>(upper_bounds);
  return *slot;
}

int Registry::AddCollectHook(std::function<void()> hook) {
  absl::MutexLock lock(&hooks_mu_);
  hooks_.emplace(next_hook_id_, std::move(hook));
  return next_hook_id_++;
}

void Registry::RemoveCollectHook(int id) {
  absl::MutexLock lock(&hooks_mu_);
  hooks_.erase(id);
}

std::string Registry::ExportText() const {
  {
    absl::MutexLock hooks_lock(&hooks_mu_);
    for (const auto& [id, hook] : hooks_) hook();
  }
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const auto& [name, family] : families_) {
    const char* type = family.type == Type::kCounter ? "counter" : family.type == Type::kGauge ? "gauge" : "histogram";
    absl::StrAppend(&out, "# HELP ", name, " ", family.escaped_help, "\n# TYPE ", name, " ", type, "\n");
    for (const auto& [labels, counter] : family.counters) {
      absl::StrAppend(&out, name, Braced(labels), " ", FormatValue(counter->Value()), "\n");
    }
    for (const auto& [labels, gauge] : family.gauges) {
      absl::StrAppend(&out, name, Braced(labels), " ", FormatValue(gauge->Value()), "\n");
    }
    for (const auto& [labels, histogram] : family.histograms) {
      uint64_t cumulative = 0;
      const auto& bounds = histogram->upper_bounds();
      for (size_t i = 0; i <= bounds.size(); ++i) {
        cumulative += histogram->BucketCount(i);
        const std::string le = i < bounds.size() ? FormatValue(bounds[i]) : "+Inf";
        absl::StrAppend(&out, name, "_bucket", Braced(labels, absl::StrCat("le=\"", le, "\"")), " ", cumulative, "\n");
      }
      absl::StrAppend(&out, name, "_sum", Braced(labels), " ", FormatValue(histogram->Sum()), "\n");
      absl::StrAppend(&out, name, "_count", Braced(labels), " ", cumulative, "\n");
    }
  }
  return out;
}

void RegisterBuildInfo(Registry& registry, absl::string_view service) {
  registry
      .GetGauge("ecomstream_build_info", "Build information; the value is always 1.",
                {{"service", std::string(service)}, {"version", ECOMSTREAM_VERSION}})
      .Set(1);
}

}  // namespace ecomstream::metrics
