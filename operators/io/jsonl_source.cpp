// ingest.jsonl — reads JSON Lines files (a file, a glob of files, gzip) into Frames.
#include "io_ops.hpp"
#include "jsonl_table.hpp"

namespace loom::ops {

class jsonl_source final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "ingest.jsonl", "0.1.0",
      "Reads JSON Lines (one JSON object per line) from a file, a glob of files or gzip files into "
      "frames, streaming (only the `infer_rows` sample and one frame are held in memory). Nested "
      "objects are flattened into columns with dotted names ({\"a\": {\"b\": 1}} gives column a.b); "
      "arrays are kept as their JSON text in a string column. Columns are the keys seen in the first "
      "`infer_rows` records (in order of first appearance) plus those named in `schema`; their types "
      "are inferred over that sample: only integers gives i64, integers and decimals f64, only "
      "booleans bool, anything else (strings, arrays, mixed) string, where numbers and booleans are "
      "kept as their JSON text. A key missing from a line, or null, is a null. Blank lines are "
      "skipped; CRLF and a UTF-8 byte order mark are accepted. A `path` with * ? or [...] is a glob "
      "(files read in sorted order as one table); a file ending in .gz is decompressed on the fly. A "
      "line that is not valid JSON, not an object, has a value that does not fit its column's type, "
      "or has a key that is not a column (see `unknown_keys`) is rejected to the `rejects` output "
      "(file, line, reason, raw) and counted; the run fails only when more than `max_errors` lines "
      "were rejected.",
      "- id: events\n  op: ingest.jsonl\n  with: {path: \"data/events-*.jsonl.gz\", schema: {user.id: string}, max_errors: 10}\n"};
    s.outputs = {{"out", LOOM_MSG_FRAME, "the table, as frames of at most frame_rows rows"},
                 {"rejects", LOOM_MSG_FRAME, "rejected lines: file, line, reason, raw"}};
    s.params = {{"path", LOOM_PARAM_STRING, true, nullptr,
                 "JSONL file, relative to the graph file; may be a glob (*, ?, [...]) and files ending in .gz "
                 "are gunzipped"}};
    for (auto& p : jsonl_params())
      s.params.push_back(p);
    for (auto& p : table_params())
      s.params.push_back(p);
    return s;
  }

  explicit jsonl_source(sdk::context& ctx)
    : table_(read_jsonl_options(ctx), file_inputs(ctx.resolve_path(ctx.param_string("path")))) {}

  bool produce(sdk::context& ctx) override { return table_.produce(ctx); }

private:
  jsonl_table table_;
};

const sdk::op_registration jsonl_source_op = sdk::registration<jsonl_source>;

} // namespace loom::ops
