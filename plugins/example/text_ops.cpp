// loom-example — a template plugin with two operators:
//
//   example.upper   upper-cases the named string columns
//   example.filter  keeps the rows whose numeric column is >= a minimum
//
// Copy this folder, rename the operators, and build it with find_package(Loom) +
// loom_add_plugin (see CMakeLists.txt and README.md). docs/plugins.md explains every
// piece used here.
#include <loom/frame.hpp>  // frame_view, frame_builder
#include <loom/params.hpp> // param_strings: list parameters
#include <loom/sdk.hpp>    // op, op_spec, context, error, LOOM_PLUGIN

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace example {

namespace sdk = loom::sdk;

// -- example.upper ----------------------------------------------------------------------

class upper_op final : public sdk::op {
public:
  // What the host (and `loom ops describe`) knows about the operator.
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "example.upper", "0.1.0",
      "Upper-cases the string columns named in `columns` (ASCII letters; other bytes are kept). "
      "Other columns and nulls pass through unchanged. A named column that is missing or is "
      "not a string fails the node with a message listing the columns present.",
      "- id: shout\n  op: example.upper\n  inputs: load\n  with: {columns: [species]}\n"};
    s.inputs = {{"data", LOOM_MSG_FRAME, "input table"}};
    s.outputs = {{"out", LOOM_MSG_FRAME, "the table with the named columns upper-cased"}};
    s.params = {
      {"columns", LOOM_PARAM_LIST, true, nullptr, "names of the string columns to upper-case"},
    };
    return s;
  }

  // One instance per graph node (and per attempt): read and check parameters here, so
  // that a bad parameter fails before any data flows.
  explicit upper_op(sdk::context& ctx) {
    columns_ = sdk::param_strings(ctx, "columns");
    if (columns_.empty())
      throw sdk::error("columns: name at least one column to upper-case");
  }

  // Called once per frame, in order. `msg` is borrowed: build a new frame and emit it.
  void on_input(sdk::context& ctx, uint32_t, const sdk::message& msg) override {
    auto f = sdk::frame_view::of(msg); // verifies the bytes; throws on garbage
    std::vector<bool> upper(f.num_columns(), false);
    for (auto& name : columns_) {
      size_t c = f.require(name);
      if (f.type(c) != sdk::col_type::string)
        throw sdk::error("column '" + name + "' is " + sdk::to_string(f.type(c)) +
                           ", not a string; example.upper needs string columns (columns: " +
                           f.describe_columns() + ")",
                         LOOM_ERR_BAD_DATA);
      upper[c] = true;
    }
    sdk::frame_builder out(f.schema()); // same columns, types and nullability
    std::string cell;
    for (size_t r = 0; r < f.num_rows(); ++r) {
      for (size_t c = 0; c < f.num_columns(); ++c) {
        if (!upper[c] || !f.valid(c, r)) {
          out.append_from(c, f, c, r);
          continue;
        }
        cell.assign(f.str(c, r));
        for (auto& ch : cell)
          if (ch >= 'a' && ch <= 'z')
            ch = static_cast<char>(ch - 'a' + 'A');
        out.append_string(c, cell);
      }
      out.end_row();
    }
    ctx.emit(0, out.finish(f.sequence())); // ownership of the buffer passes to the host
  }

private:
  std::vector<std::string> columns_;
};

// -- example.filter ---------------------------------------------------------------------

class filter_op final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "example.filter", "0.1.0",
      "Keeps the rows whose numeric `column` is at least `min`. Rows with a null in the column "
      "are dropped and counted as rejected; a frame whose rows all pass is forwarded without a "
      "copy. Records the metric `rows_kept`.",
      "- id: big\n  op: example.filter\n  inputs: load\n  with: {column: petal_length, min: 5.0}\n"};
    s.inputs = {{"data", LOOM_MSG_FRAME, "input table"}};
    s.outputs = {{"out", LOOM_MSG_FRAME, "the rows that passed"}};
    s.params = {
      {"column", LOOM_PARAM_STRING, true, nullptr, "numeric column (i64, f64, f32 or bool) to test"},
      {"min", LOOM_PARAM_FLOAT, true, nullptr, "smallest value kept (inclusive)"},
    };
    return s;
  }

  explicit filter_op(sdk::context& ctx)
    : column_(ctx.param_string("column")), min_(ctx.param_float("min")) {}

  void on_input(sdk::context& ctx, uint32_t, const sdk::message& msg) override {
    auto f = sdk::frame_view::of(msg);
    size_t col = f.require(column_);
    if (f.type(col) == sdk::col_type::string)
      throw sdk::error("column '" + column_ + "' is a string, not a number; example.filter needs a "
                       "numeric column (columns: " + f.describe_columns() + ")",
                       LOOM_ERR_BAD_DATA);

    std::vector<size_t> keep;
    uint64_t nulls = 0;
    for (size_t r = 0; r < f.num_rows(); ++r) {
      if (!f.valid(col, r))
        ++nulls;
      else if (f.number(col, r) >= min_)
        keep.push_back(r);
    }
    if (nulls > 0)
      ctx.add_rejected(nulls); // rows in = rows out + filtered + rejected
    kept_ += keep.size();

    if (keep.size() == f.num_rows()) {
      ctx.forward_message(0, msg); // nothing dropped: pass the same buffer on, no copy
      return;
    }
    sdk::frame_builder out(f.schema());
    for (size_t r : keep) {
      for (size_t c = 0; c < f.num_columns(); ++c)
        out.append_from(c, f, c, r);
      out.end_row();
    }
    ctx.emit(0, out.finish(f.sequence()));
  }

  // The input has ended: every frame has been seen.
  void on_input_end(sdk::context& ctx, uint32_t) override {
    ctx.metric("rows_kept", static_cast<double>(kept_));
    ctx.info("kept " + std::to_string(kept_) + " rows with " + column_ + " >= " + std::to_string(min_));
  }

private:
  std::string column_;
  double min_;
  uint64_t kept_ = 0;
};

} // namespace example

// The plugin's one exported symbol: its name, version and operators.
LOOM_PLUGIN("loom-example", "0.1.0", example::upper_op, example::filter_op)
