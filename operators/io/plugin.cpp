// loom-io: reading and writing tables.
#include "io_ops.hpp"

LOOM_PLUGIN_OPERATORS("loom-io", "0.3.0", loom::ops::csv_source_op, loom::ops::jsonl_source_op,
                      loom::ops::text_source_op, loom::ops::http_source_op, loom::ops::idx_source_op,
                      loom::ops::csv_sink_op, loom::ops::jsonl_sink_op)
