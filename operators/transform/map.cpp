// map — passes a table through, optionally selecting, renaming and filtering columns.
#include <loom/frame.hpp>
#include <loom/params.hpp>
#include <loom/sdk.hpp>

#include <map>

namespace loom::ops {

class map_op final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "map", "0.1.0",
      "Passes frames through, optionally keeping only some columns (`select`, in that order), "
      "renaming columns (`rename`), and dropping rows with a null in any of `drop_nulls`. "
      "Dropped rows are counted as rejected. With no parameters the frames are forwarded "
      "unchanged, without a copy.",
      "- id: tidy\n  op: map\n  inputs: load\n  with: {select: [sepal_length, species], rename: {species: label}}\n"};
    s.inputs = {{"data", LOOM_MSG_FRAME, "input table"}};
    s.outputs = {{"out", LOOM_MSG_FRAME, "output table"}};
    s.params = {
      {"select", LOOM_PARAM_LIST, false, nullptr, "columns to keep, in this order (default: all)"},
      {"rename", LOOM_PARAM_MAP, false, nullptr, "old name -> new name"},
      {"drop_nulls", LOOM_PARAM_LIST, false, nullptr, "drop rows with a null in any of these columns"},
    };
    return s;
  }

  explicit map_op(sdk::context& ctx)
    : has_select_(ctx.has_param("select")), select_(sdk::param_strings(ctx, "select")),
      drop_nulls_(sdk::param_strings(ctx, "drop_nulls")), rename_(sdk::param_string_map(ctx, "rename")) {}

  void on_input(sdk::context& ctx, uint32_t, const sdk::message& msg) override {
    if (!has_select_ && rename_.empty() && drop_nulls_.empty()) {
      ctx.forward_message(0, msg);
      return;
    }
    auto f = sdk::frame_view::of(msg);
    std::vector<size_t> cols;
    if (has_select_)
      for (auto& n : select_)
        cols.push_back(f.require(n));
    else
      for (size_t c = 0; c < f.num_columns(); ++c)
        cols.push_back(c);
    for (auto& [from, to] : rename_)
      f.require(from);
    std::vector<size_t> null_checks;
    for (auto& n : drop_nulls_)
      null_checks.push_back(f.require(n));
    sdk::frame_builder b;
    for (auto c : cols) {
      std::string name(f.name(c));
      if (auto it = rename_.find(name); it != rename_.end())
        name = it->second;
      b.add_column(name, f.type(c), f.nullable(c));
    }
    uint64_t dropped = 0;
    for (size_t r = 0; r < f.num_rows(); ++r) {
      bool keep = true;
      for (auto c : null_checks)
        keep = keep && f.valid(c, r);
      if (!keep) {
        ++dropped;
        continue;
      }
      for (size_t k = 0; k < cols.size(); ++k)
        b.append_from(k, f, cols[k], r);
      b.end_row();
    }
    if (dropped)
      ctx.add_rejected(dropped);
    ctx.emit(0, b.finish(f.sequence()));
  }

private:
  bool has_select_ = false;
  std::vector<std::string> select_, drop_nulls_;
  std::map<std::string, std::string> rename_;
};

const sdk::op_registration map_op_registration = sdk::registration<map_op>;

} // namespace loom::ops

LOOM_PLUGIN_OPERATORS("loom-transform", "0.1.0", loom::ops::map_op_registration)
