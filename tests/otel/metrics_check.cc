#include "tests/otel/metrics_check.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/testing/process.h"
#include "tests/testing/temp_dir.h"

namespace ecomstream::testing {
namespace {

using LabelSet = std::vector<std::pair<std::string, std::string>>;

struct Sample {
  std::string name;
  LabelSet labels;
  double value = 0;
};

bool IsNameStart(char c) { return absl::ascii_isalpha(c) || c == '_' || c == ':'; }
bool IsNameChar(char c) { return absl::ascii_isalnum(c) || c == '_' || c == ':'; }

void SkipBlanks(absl::string_view* text) {
  while (!text->empty() && (text->front() == ' ' || text->front() == '\t')) text->remove_prefix(1);
}

// Prometheus floats: decimal, "NaN", "+Inf", "-Inf" (strtod takes all of them, in any case).
bool ParsePromFloat(absl::string_view token, double* out) {
  if (token.empty()) return false;
  const std::string copy(token);
  char* end = nullptr;
  *out = std::strtod(copy.c_str(), &end);
  return end == copy.c_str() + copy.size();
}

// `name{label="value",...} value [timestamp]`; false on anything else.
bool ParseSampleLine(absl::string_view line, Sample* sample) {
  if (line.empty() || !IsNameStart(line.front())) return false;
  size_t n = 0;
  while (n < line.size() && IsNameChar(line[n])) ++n;
  sample->name = std::string(line.substr(0, n));
  line.remove_prefix(n);
  SkipBlanks(&line);
  if (absl::ConsumePrefix(&line, "{")) {
    while (true) {
      SkipBlanks(&line);
      if (absl::ConsumePrefix(&line, "}")) break;
      size_t k = 0;
      while (k < line.size() && (absl::ascii_isalnum(line[k]) || line[k] == '_')) ++k;
      if (k == 0 || absl::ascii_isdigit(line[0])) return false;
      std::string label(line.substr(0, k));
      line.remove_prefix(k);
      SkipBlanks(&line);
      if (!absl::ConsumePrefix(&line, "=")) return false;
      SkipBlanks(&line);
      if (!absl::ConsumePrefix(&line, "\"")) return false;
      std::string value;
      bool closed = false;
      while (!line.empty()) {
        const char c = line.front();
        line.remove_prefix(1);
        if (c == '"') {
          closed = true;
          break;
        }
        if (c != '\\') {
          value.push_back(c);
          continue;
        }
        if (line.empty()) return false;
        const char escaped = line.front();
        line.remove_prefix(1);
        if (escaped == 'n') {
          value.push_back('\n');
        } else if (escaped == '\\' || escaped == '"') {
          value.push_back(escaped);
        } else {
          return false;
        }
      }
      if (!closed) return false;
      sample->labels.emplace_back(std::move(label), std::move(value));
      SkipBlanks(&line);
      if (absl::ConsumePrefix(&line, ",")) continue;
      if (absl::ConsumePrefix(&line, "}")) break;
      return false;
    }
  }
  SkipBlanks(&line);
  std::vector<absl::string_view> rest = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (rest.empty() || rest.size() > 2) return false;
  return ParsePromFloat(rest[0], &sample->value);
}

std::string RenderLabels(const LabelSet& labels) {
  return absl::StrCat("{", absl::StrJoin(labels, ",", [](std::string* out, const auto& label) {
                        absl::StrAppend(out, label.first, "=\"", absl::CEscape(label.second), "\"");
                      }), "}");
}

struct HistogramSeries {
  std::vector<std::pair<double, double>> buckets;  // (le, cumulative count)
  bool has_inf = false;
  double inf_value = 0;
  bool has_count = false;
  double count = 0;
};

}  // namespace

absl::Status PromtoolCheckMetrics(absl::string_view text) {
  std::string path = absl::StrCat(::ecomstream::testing::TmpRoot(), "/ecomstream-metrics-XXXXXX");
  const int fd = ::mkstemp(path.data());
  if (fd < 0) return absl::InternalError("mkstemp failed for the promtool input");
  ::close(fd);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!out) {
      ::unlink(path.c_str());
      return absl::InternalError(absl::StrCat("could not write the promtool input to ", path));
    }
  }
  std::string output;
  // promtool reads the exposition from stdin; a file avoids a pipe deadlock on large outputs.
  const int rc = RunCommand({"sh", "-c", "exec promtool check metrics < \"$1\"", "sh", path}, &output);
  ::unlink(path.c_str());
  if (rc == 0) return absl::OkStatus();
  if (rc == 127) {
    return absl::FailedPreconditionError("promtool is not on PATH (Debian package `prometheus`)");
  }
  return absl::InvalidArgumentError(
      absl::StrCat("promtool check metrics exited ", rc, ": ", absl::StripTrailingAsciiWhitespace(output)));
}

absl::Status CheckHistogramBuckets(absl::string_view text) {
  std::vector<std::string> problems;
  std::set<std::string> histograms;
  std::vector<std::pair<int, absl::string_view>> sample_lines;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    if (line.front() == '#') {
      std::vector<absl::string_view> words = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
      if (words.size() == 4 && words[1] == "TYPE" && words[3] == "histogram") histograms.emplace(words[2]);
      continue;
    }
    sample_lines.emplace_back(line_number, line);
  }

  // histogram name -> rendered label set without `le` -> series
  std::map<std::string, std::map<std::string, HistogramSeries>> series;
  for (const auto& [number, line] : sample_lines) {
    Sample sample;
    if (!ParseSampleLine(line, &sample)) {
      problems.push_back(absl::StrCat("line ", number, " is not a sample: ", line));
      continue;
    }
    std::string family;
    absl::string_view suffix;
    for (absl::string_view candidate : {"_bucket", "_sum", "_count"}) {
      absl::string_view base = sample.name;
      if (absl::ConsumeSuffix(&base, candidate) && histograms.count(std::string(base)) > 0) {
        family = std::string(base);
        suffix = candidate;
        break;
      }
    }
    if (family.empty()) continue;
    std::optional<std::string> le;
    LabelSet others;
    for (auto& label : sample.labels) {
      if (label.first == "le") {
        le = label.second;
      } else {
        others.push_back(label);
      }
    }
    std::sort(others.begin(), others.end());
    HistogramSeries& s = series[family][RenderLabels(others)];
    if (suffix == "_count") {
      s.has_count = true;
      s.count = sample.value;
    } else if (suffix == "_bucket") {
      double bound = 0;
      if (!le.has_value() || !ParsePromFloat(*le, &bound) || std::isnan(bound)) {
        problems.push_back(absl::StrCat("line ", number, ": bucket without a numeric le label: ", line));
        continue;
      }
      if (std::isinf(bound) && bound > 0) {
        s.has_inf = true;
        s.inf_value = sample.value;
      }
      s.buckets.emplace_back(bound, sample.value);
    }
  }

  for (auto& [family, by_labels] : series) {
    for (auto& [labels, s] : by_labels) {
      const std::string where = absl::StrCat("histogram ", family, labels);
      if (!s.has_inf) {
        problems.push_back(absl::StrCat(where, " has no le=\"+Inf\" bucket"));
      } else if (s.has_count && s.inf_value != s.count) {
        problems.push_back(absl::StrCat(where, ": le=\"+Inf\" bucket is ", s.inf_value, " but _count is ", s.count));
      }
      std::stable_sort(s.buckets.begin(), s.buckets.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      for (size_t i = 1; i < s.buckets.size(); ++i) {
        if (s.buckets[i].second < s.buckets[i - 1].second) {
          problems.push_back(absl::StrCat(where, ": bucket le=", s.buckets[i].first, " (", s.buckets[i].second,
                                          ") is below le=", s.buckets[i - 1].first, " (", s.buckets[i - 1].second,
                                          "); buckets must be cumulative"));
          break;
        }
      }
    }
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
}

absl::Status CheckMetricsText(absl::string_view text) {
  absl::Status status = PromtoolCheckMetrics(text);
  if (!status.ok()) return status;
  return CheckHistogramBuckets(text);
}

}  // namespace ecomstream::testing
