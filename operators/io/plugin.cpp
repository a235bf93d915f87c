// loom-io: reading and writing tables.
#include "io_ops.hpp"

LOOM_PLUGIN_OPERATORS("loom-io", "0.1.0", loom::ops::csv_source_op, loom::ops::csv_sink_op)
