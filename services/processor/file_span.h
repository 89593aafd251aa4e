// file_span: the file.process span of an attempt at a file (docs/design.md, "Tracing"). It is a
// CONSUMER span, a child of the manifest's traceparent (a new trace without one), from the moment
// Run() picks the file up (before its inspection) until its last batch's ack has been handled and
// the file archived. It ends with an error status when the file is quarantined, refused, rejected
// or abandoned, and carries file.name, file.id, file.size_bytes, schema_version, rows and, when
// committed, events, dead_letters, duplicates, late, batches and the writer's row outcomes. Its
// context goes to ClaimFile's metadata; each batch's `batch.send` span (CLIENT) is its child (see
// batcher.h). A file that vanished or could not be read at all gets no span.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_FILE_SPAN_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_FILE_SPAN_H_

#include "absl/time/time.h"
#include "common/tracer.h"
#include "services/processor/file_inspector.h"
#include "services/processor/in_flight_files.h"

namespace ecomstream::processor {

// The span of an attempt at `facts`' file that began at `picked_up`.
tracing::Span StartFileSpan(const tracing::Tracer& tracer, const FileFacts& facts, absl::Time picked_up);

// Sets the figures of a committed file on its span.
void SetCommittedAttributes(InFlightFile& file);

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_FILE_SPAN_H_
