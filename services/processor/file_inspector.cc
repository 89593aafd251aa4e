#include "services/processor/file_inspector.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/atomic_file.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "common/status.h"
#include "google/protobuf/util/json_util.h"
#include "services/processor/field_parsers.h"
#include "services/processor/file_lifecycle.h"

namespace ecomstream::processor {
namespace {

void HashBytes(void* hasher, absl::string_view bytes) { static_cast<Sha256*>(hasher)->Update(bytes); }

// Hashes what is left of `source`; returns how many bytes that was. The reads are small enough
// to stay in the CPU cache between the copy and the hash, and to come from reused heap memory:
// a fresh 1 MiB buffer per file cost a page fault per 4 KiB page on top of the copy.
absl::StatusOr<uint64_t> HashRest(ByteSource& source, Sha256* hasher) {
  constexpr size_t kReadBytes = 64 * 1024;
  std::unique_ptr<char[]> buffer(new char[kReadBytes]);
  uint64_t total = 0;
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, source.Read(buffer.get(), kReadBytes));
    if (n == 0) return total;
    hasher->Update(absl::string_view(buffer.get(), n));
    total += n;
  }
}

// The data rows of the file at `path` (the records after its header), by the CSV reader's rules.
absl::StatusOr<int64_t> CountRows(const std::string& path, const CsvReaderOptions& csv_options) {
  ASSIGN_OR_RETURN(std::unique_ptr<FileByteSource> source, FileByteSource::Open(path));
  CsvReader reader(source.get(), csv_options);
  CsvRecord record;
  int64_t records = 0;
  for (;;) {
    ASSIGN_OR_RETURN(bool more, reader.Next(&record));
    if (!more) break;
    ++records;
  }
  return records > 0 ? records - 1 : 0;
}

std::string HeaderProblem(const CsvRecord& header) {
  std::vector<std::string> problems;
  if (header.flags & kCsvMalformedQuoting) problems.push_back("malformed quoting");
  if (header.flags & kCsvTooLarge) problems.push_back("over --max_row_bytes");
  if (header.flags & kCsvInvalidUtf8) problems.push_back("bytes that are not UTF-8");
  if (header.flags & kCsvNulByte) problems.push_back("a NUL byte");
  return absl::StrCat("header row has ", absl::StrJoin(problems, " and "));
}

// Loads the manifest if present. Returns a quarantine reason, or "" when fine or absent.
absl::StatusOr<std::string> LoadManifest(const std::string& path, FileFacts* facts) {
  absl::StatusOr<std::string> text = ReadSmallFile(path, kMaxManifestBytes);
  if (absl::IsNotFound(text.status())) return std::string();
  if (absl::IsOutOfRange(text.status())) return absl::StrCat("manifest is larger than ", kMaxManifestBytes, " bytes");
  if (!text.ok()) return text.status();
  facts->has_manifest = true;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // a newer generator may say more
  const auto parsed = google::protobuf::util::JsonStringToMessage(*text, &facts->manifest, options);
  if (!parsed.ok()) return absl::StrCat("manifest is not a valid FileManifest: ", parsed.message().as_string());
  return std::string();
}

// `rows`: the file's data rows, counted only when the bytes are not the manifest's (else unknown).
std::string ManifestMismatch(const FileFacts& facts, const std::string& sha256_hex, int64_t rows) {
  const v1::FileManifest& m = facts.manifest;
  std::vector<std::string> problems;
  if (absl::AsciiStrToLower(m.sha256()) != sha256_hex) {
    problems.push_back(absl::StrCat("sha256 is ", sha256_hex, ", manifest says \"", m.sha256().substr(0, 80), "\""));
  }
  if (rows != kRowsUnknown && m.rows() != rows) {
    problems.push_back(absl::StrCat("rows are ", rows, ", manifest says ", m.rows()));
  }
  if (m.size_bytes() != 0 && m.size_bytes() != facts.size_bytes) {
    problems.push_back(absl::StrCat("size is ", facts.size_bytes, " bytes, manifest says ", m.size_bytes()));
  }
  const std::string version = absl::AsciiStrToLower(m.schema_version());
  if (!version.empty() && version != absl::StrCat("v", facts.schema.version) &&
      version != absl::StrCat(facts.schema.version)) {
    problems.push_back(absl::StrCat("schema is v", facts.schema.version, ", manifest says \"",
                                    m.schema_version().substr(0, 16), "\""));
  }
  if (problems.empty()) return "";
  return absl::StrCat("file does not match its manifest (truncated or altered): ", absl::StrJoin(problems, "; "));
}

}  // namespace

absl::StatusOr<FileFacts> InspectFile(const std::string& dir, const std::string& name,
                                      const CsvReaderOptions& csv_options) {
  FileFacts facts;
  facts.name = name;
  facts.path = absl::StrCat(dir, "/", name);
  struct stat st;
  if (::stat(facts.path.c_str(), &st) != 0) return ErrnoToStatus(errno, absl::StrCat("stat ", facts.path));
  if (!S_ISREG(st.st_mode)) return absl::NotFoundError(absl::StrCat(facts.path, " is not a regular file"));
  facts.size_bytes = st.st_size;
  facts.mtime_us = MtimeMicros(st);
  facts.reference_time_us = facts.mtime_us;

  if (!IsValidUtf8(name)) {
    facts.quarantine_reason = "file name is not valid UTF-8";
    return facts;
  }
  ASSIGN_OR_RETURN(std::string manifest_problem, LoadManifest(absl::StrCat(facts.path, kManifestSuffix), &facts));
  if (!manifest_problem.empty()) {
    facts.quarantine_reason = std::move(manifest_problem);
    return facts;
  }
  if (facts.has_manifest) {
    if (facts.manifest.created_time_us() > 0) facts.reference_time_us = facts.manifest.created_time_us();
    facts.parent_trace = tracing::TraceContext::FromTraceparentOrInvalid(facts.manifest.traceparent());
  }

  ASSIGN_OR_RETURN(std::unique_ptr<FileByteSource> source, FileByteSource::Open(facts.path));
  Sha256 hasher;
  CsvReader reader(source.get(), csv_options);
  reader.set_byte_observer(&HashBytes, &hasher);
  CsvRecord record;
  ASSIGN_OR_RETURN(bool has_header, reader.Next(&record));
  if (!has_header) {
    facts.quarantine_reason = "file has no header row";
    return facts;
  }
  if (record.flags != 0) {
    facts.quarantine_reason = HeaderProblem(record);
    return facts;
  }
  absl::StatusOr<Schema> schema = SchemaRegistry::Detect(record.fields);
  if (!schema.ok()) {
    facts.quarantine_reason = std::string(schema.status().message());
    return facts;
  }
  facts.schema = *schema;
  // The rest is hashed in large reads, not scanned: the load splits it into records.
  ASSIGN_OR_RETURN(const uint64_t rest, HashRest(*source, &hasher));
  const uint64_t bytes_read = reader.bytes_read() + rest;
  const std::string sha256_hex = hasher.HexDigest();
  facts.file_id = absl::StrCat("sha256:", sha256_hex);
  if (bytes_read != static_cast<uint64_t>(facts.size_bytes)) {
    // The file grew or shrank while we read it: not the immutable drop the contract promises.
    return absl::UnavailableError(absl::StrCat(facts.path, " changed while it was read (", facts.size_bytes,
                                               " bytes at stat, ", bytes_read, " read)"));
  }
  facts.rows = kRowsUnknown;
  if (!facts.has_manifest) return facts;
  if (absl::AsciiStrToLower(facts.manifest.sha256()) == sha256_hex) {
    // The generator's bytes, so its count: the load still checks it.
    facts.rows = facts.manifest.rows();
    facts.quarantine_reason = ManifestMismatch(facts, sha256_hex, facts.rows);
    return facts;
  }
  // Quarantined either way; the row count makes the reason say how much is missing.
  ASSIGN_OR_RETURN(const int64_t rows, CountRows(facts.path, csv_options));
  facts.quarantine_reason = ManifestMismatch(facts, sha256_hex, rows);
  return facts;
}

void WarmUpInspector() {
  v1::FileManifest manifest;
  (void)google::protobuf::util::JsonStringToMessage("{}", &manifest);
  (void)Sha256Hex("");
}

}  // namespace ecomstream::processor
