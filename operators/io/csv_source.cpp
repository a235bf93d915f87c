// ingest.csv — reads RFC 4180 CSV files (a file, a glob of files, gzip) into Frames.
#include "csv_table.hpp"
#include "io_ops.hpp"

namespace loom::ops {

class csv_source final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "ingest.csv", "0.3.0",
      "Reads CSV (RFC 4180) from a file, a glob of files or gzip files into frames, streaming "
      "(only the `infer_rows` sample and a few MiB per thread are held in memory). Quoted fields may hold "
      "delimiters, doubled quotes and line breaks; CRLF and LF line ends and a UTF-8 byte order mark "
      "are accepted; blank lines are skipped. A `path` with * ? or [...] is a glob: the matching files "
      "are read in sorted order as one table and must all have the same header (else the node fails "
      "naming the file). A file whose name ends in .gz is decompressed on the fly. Column types (i64, "
      "f64, bool, string) are inferred from the first `infer_rows` records unless given in `schema`; "
      "values listed in `null_values` are nulls. A record with the wrong number of fields, an "
      "unterminated quote, or a value that does not parse as its column's type is rejected: it goes "
      "to the `rejects` output (file, line, reason, raw text) and is counted, and the run fails only "
      "when more than `max_errors` records were rejected. After the sample, blocks of the input are "
      "parsed by `threads` threads at once; the frames and rejects are the same as with one.",
      "- id: load\n  op: ingest.csv\n  with: {path: data/iris.csv, delimiter: \",\", header: true}\n"
      "- id: logs\n  op: ingest.csv\n  with: {path: \"data/2024-*.csv.gz\", schema: {user_id: string}, max_errors: 100}\n"};
    s.outputs = {{"out", LOOM_MSG_FRAME, "the table, as frames of at most frame_rows rows"},
                 {"rejects", LOOM_MSG_FRAME, "rejected records: file, line (where the record starts), reason, raw text"}};
    s.params = {{"path", LOOM_PARAM_STRING, true, nullptr,
                 "CSV file, relative to the graph file; may be a glob (*, ?, [...]) and files ending in .gz "
                 "are gunzipped"}};
    for (auto& p : csv_params())
      s.params.push_back(p);
    for (auto& p : table_params())
      s.params.push_back(p);
    return s;
  }

  explicit csv_source(sdk::context& ctx)
    : table_(read_csv_options(ctx), file_inputs(ctx.resolve_path(ctx.param_string("path")))) {}

  bool produce(sdk::context& ctx) override { return table_.produce(ctx); }

private:
  csv_table table_;
};

const sdk::op_registration csv_source_op = sdk::registration<csv_source>;

} // namespace loom::ops
