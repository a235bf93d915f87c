// The operators of the loom-io plugin.
#pragma once

#include <loom/sdk.hpp>

namespace loom::ops {
extern const sdk::op_registration csv_source_op;   ///< ingest.csv
extern const sdk::op_registration jsonl_source_op; ///< ingest.jsonl
extern const sdk::op_registration text_source_op;  ///< ingest.text
extern const sdk::op_registration http_source_op;  ///< ingest.http
extern const sdk::op_registration idx_source_op;   ///< ingest.idx
extern const sdk::op_registration csv_sink_op;     ///< sink.csv
extern const sdk::op_registration jsonl_sink_op;   ///< sink.jsonl
} // namespace loom::ops
