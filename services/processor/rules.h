// rules: the business catalogues the row validator checks against (docs/rules.md): categories,
// countries, event-type and segment synonyms, and the late / future windows.
//
// Built-in rules (common/domain.cc, with the flags' windows) apply without a file. A rules file
// (--rules_file, protobuf JSON of ecomstream.v1.Rules) extends or replaces them; a file that
// does not parse or names a bad entry is refused whole with one sentence naming the entry.
// RulesStore holds the active rules for a running processor; SIGHUP swaps them (see main.cc).
//
// A Rules object is immutable and thread-safe; lookups allocate nothing for stored spellings.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_RULES_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_RULES_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/domain.h"
#include "common/metrics.h"
#include "ecomstream/v1/ingest.pb.h"

namespace ecomstream::processor {

// The largest rules file read.
inline constexpr size_t kMaxRulesFileBytes = 1 << 20;

// The windows when the rules file gives none (the --late_after and --max_future flags).
struct RulesWindows {
  int64_t late_after_us = 3600LL * 1000000;
  int64_t max_future_us = 3600LL * 1000000;
};

class Rules {
 public:
  // The built-in rules, version "builtin".
  static std::shared_ptr<const Rules> Builtin(RulesWindows windows = {});
  // Parses protobuf JSON of a v1.Rules. kInvalidArgument naming `source` and the entry, e.g.
  // "rules file r.json: categories[1] (\"Garden Tools\"): name must be lower snake case".
  static absl::StatusOr<std::shared_ptr<const Rules>> FromJson(absl::string_view json, absl::string_view source,
                                                               RulesWindows windows);
  // Reads and parses `path` (at most kMaxRulesFileBytes). kInvalidArgument as FromJson, or for
  // a file that cannot be read (the message names the path).
  static absl::StatusOr<std::shared_ptr<const Rules>> LoadFile(const std::string& path, RulesWindows windows);

  const std::string& version() const { return version_; }
  int64_t late_after_us() const { return late_after_us_; }
  int64_t max_future_us() const { return max_future_us_; }
  const std::vector<domain::Category>& categories() const { return categories_; }

  // `folded` is a name already lower-cased and trimmed (FoldEnumName); `text` is any spelling.
  const domain::Category* FindCategoryFolded(absl::string_view folded) const;
  const domain::Category* FindCategory(absl::string_view text) const;
  const domain::Category* CategoryOfProduct(int64_t product_id) const;
  std::optional<v1::EventType> ParseEventType(absl::string_view text) const;
  std::optional<v1::UserSegment> ParseUserSegment(absl::string_view text) const;
  // `upper_code`: two upper-case letters.
  bool IsCountryCode(absl::string_view upper_code) const;

 private:
  Rules() = default;

  std::string version_ = "builtin";
  int64_t late_after_us_ = 0;
  int64_t max_future_us_ = 0;
  std::vector<std::unique_ptr<std::string>> names_;  // storage of the file's category names
  std::vector<domain::Category> categories_;
  bool builtin_countries_ = true;
  absl::flat_hash_set<std::string> countries_;  // the file's, upper case
  bool builtin_event_types_ = true;
  absl::flat_hash_map<std::string, v1::EventType> event_types_;  // normalized spelling ->
  bool builtin_segments_ = true;
  absl::flat_hash_map<std::string, v1::UserSegment> segments_;
};

// The active rules of a running processor. Thread-safe: Get() from any thread, Set() from the
// thread that reloads. Metrics: ecomstream_processor_rules_info{version} is 1 for the active
// version (0 for earlier ones), ecomstream_processor_rules_reloads_total{result="ok"|"error"}.
class RulesStore {
 public:
  // `registry` may be null (no metrics); it must outlive the store.
  RulesStore(std::shared_ptr<const Rules> rules, metrics::Registry* registry);

  std::shared_ptr<const Rules> Get() const;
  void Set(std::shared_ptr<const Rules> rules);
  // Loads `path` and makes it active; on error keeps the active rules and returns why.
  absl::Status Reload(const std::string& path, RulesWindows windows);

 private:
  metrics::Registry* registry_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const Rules> rules_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_RULES_H_
