// The operators of the loom-io plugin.
#pragma once

#include <loom/sdk.hpp>

namespace loom::ops {
extern const sdk::op_registration csv_source_op; ///< ingest.csv
extern const sdk::op_registration csv_sink_op;   ///< sink.csv
} // namespace loom::ops
