#include "services/processor/file_span.h"

#include "absl/strings/str_cat.h"

namespace ecomstream::processor {

tracing::Span StartFileSpan(const tracing::Tracer& tracer, const FileFacts& facts, absl::Time picked_up) {
  tracing::StartSpanOptions start;
  start.start_time = picked_up;
  tracing::Span span = tracer.StartSpan("file.process", tracing::SpanKind::kConsumer, facts.parent_trace, start);
  span.SetAttribute("file.name", facts.name);
  span.SetAttribute("file.id", facts.file_id);
  span.SetAttribute("file.size_bytes", facts.size_bytes);
  span.SetAttribute("file.has_manifest", facts.has_manifest);
  if (facts.schema.version > 0) span.SetAttribute("schema_version", absl::StrCat("v", facts.schema.version));
  if (facts.rows != kRowsUnknown) span.SetAttribute("rows", facts.rows);  // else set when committed
  return span;
}

void SetCommittedAttributes(InFlightFile& file) {
  const RowCounts& c = file.counts;
  tracing::Span& span = file.span;
  span.SetAttribute("events", c.events);
  span.SetAttribute("dead_letters", c.dead_letters);
  span.SetAttribute("duplicates", c.duplicates);
  span.SetAttribute("late", c.late);
  span.SetAttribute("batches", file.batches_acked);
  span.SetAttribute("rows.inserted", file.inserted);
  span.SetAttribute("rows.updated", file.updated);
  span.SetAttribute("rows.unchanged", file.unchanged);
}

}  // namespace ecomstream::processor
