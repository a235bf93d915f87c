// sink.csv — writes the frames it receives to a CSV file.
#include "csv.hpp"
#include "io_common.hpp"
#include "io_ops.hpp"

#include <loom/frame.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace loom::ops {

class csv_sink final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "sink.csv", "0.1.0",
      "Writes a table to a CSV file (RFC 4180: fields holding the delimiter, a quote or a line "
      "break are quoted, quotes doubled; nulls are empty fields). The file is written under a "
      "temporary name and renamed when the input ends, so a failed or cancelled run never leaves "
      "a half-written file under the final name. Parent directories are created.",
      "- id: keep\n  op: sink.csv\n  inputs: load\n  with: {path: out/copy.csv}\n"};
    s.inputs = {{"data", LOOM_MSG_FRAME, "the table to write"}};
    s.params = {
      {"path", LOOM_PARAM_STRING, true, nullptr, "output file, relative to the graph file"},
      {"delimiter", LOOM_PARAM_STRING, false, "\",\"", "field delimiter: one character, or \"tab\""},
      {"header", LOOM_PARAM_BOOL, false, "true", "write the column names first"},
    };
    return s;
  }

  explicit csv_sink(sdk::context& ctx)
    : file_(ctx.resolve_path(ctx.param_string("path")), ctx.run_id() + "-" + std::to_string(ctx.attempt())) {
    delim_ = csv_delimiter(ctx.param_string("delimiter"));
    header_ = ctx.param_bool("header");
  }

  void on_input(sdk::context&, uint32_t, const sdk::message& msg) override {
    auto f = sdk::frame_view::of(msg);
    if (guard_.check(f)) {
      const auto& schema = guard_.schema();
      if (header_) {
        line_.clear();
        for (size_t c = 0; c < schema.size(); ++c) {
          if (c)
            line_.push_back(delim_);
          csv_append_field(line_, schema[c].name, delim_);
        }
        line_.push_back('\n');
        write(line_);
      }
    }
    for (size_t r = 0; r < f.num_rows(); ++r) {
      line_.clear();
      for (size_t c = 0; c < f.num_columns(); ++c) {
        if (c)
          line_.push_back(delim_);
        csv_append_field(line_, f.text(c, r), delim_);
      }
      line_.push_back('\n');
      write(line_);
    }
  }

  bool produce(sdk::context&) override {
    file_.commit();
    return true;
  }

private:
  void write(const std::string& text) { file_.write(text); }

  atomic_file file_;
  std::string line_;
  char delim_ = ',';
  bool header_ = true;
  sdk::schema_guard guard_{"sink.csv"};
};

const sdk::op_registration csv_sink_op = sdk::registration<csv_sink>;

} // namespace loom::ops
