// union — stacks two tables, aligning columns by name, with type promotion.
#include "integrate.hpp"

#include <loom/frame.hpp>
#include <loom/sdk.hpp>

#include <deque>

namespace loom::ops::integrate {

class union_op final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "union", "0.1.0",
      "Stacks the rows of two tables, aligning columns by name. Streams: frames are passed on as "
      "they arrive (rows of `a` and `b` may interleave). Only at the start are frames held back: "
      "the output's columns must be fixed before the first frame goes out, so the frames of one "
      "input are kept until the first frame (or the end) of the other input has arrived. "
      "Output columns: `a`'s columns in order, then `b`'s columns that `a` lacks; a column missing "
      "on one side is null in that side's rows. Types are promoted: equal types stay, i64 with f64 "
      "(or f32) gives f64, bool with i64 gives i64, bool with f64 gives f64, anything with string "
      "gives string (the other side's values as text, as CSV writes them). For more than two "
      "tables, chain unions: union(union(x, y), z). Every frame of one input must have the same "
      "columns as its first.",
      "- id: all\n  op: union\n  inputs: {a: january.out, b: february.out}\n"};
    s.inputs = {{"a", LOOM_MSG_FRAME, "first table: its columns come first"},
                {"b", LOOM_MSG_FRAME, "second table"}};
    s.outputs = {{"out", LOOM_MSG_FRAME, "the rows of both tables, columns aligned by name"}};
    return s;
  }

  explicit union_op(sdk::context&) {}

  void on_input(sdk::context& ctx, uint32_t port, const sdk::message& msg) override {
    auto f = sdk::frame_view::of(msg);
    guards_[port].check(f);
    if (!ready_) {
      auto bytes = msg.bytes();
      held_[port].emplace_back(bytes.begin(), bytes.end());
      seen_[port] = true;
      try_start(ctx);
      return;
    }
    convert(ctx, port, f);
  }

  void on_input_end(sdk::context& ctx, uint32_t port) override {
    ended_[port] = true;
    if (!ready_)
      try_start(ctx);
  }

private:
  void try_start(sdk::context& ctx) {
    if (!(seen_[0] || ended_[0]) || !(seen_[1] || ended_[1]))
      return;
    ready_ = true;
    if (!seen_[0] && !seen_[1])
      return; // both inputs were empty: nothing to emit
    // the output schema from both sides
    std::vector<sdk::field> out;
    if (seen_[0])
      for (auto f : guards_[0].schema()) {
        f.nullable = f.nullable || !seen_[1];
        out.push_back(f);
      }
    if (seen_[1]) {
      for (auto& bf : guards_[1].schema()) {
        bool found = false;
        for (auto& of : out)
          if (of.name == bf.name) {
            of.type = promote(of.type, bf.type);
            of.nullable = of.nullable || bf.nullable;
            found = true;
          }
        if (!found)
          out.push_back({bf.name, bf.type, true});
      }
      if (seen_[0])
        for (auto& of : out) {
          bool in_b = false;
          for (auto& bf : guards_[1].schema())
            in_b = in_b || bf.name == of.name;
          of.nullable = of.nullable || !in_b;
        }
    }
    out_ = sdk::frame_builder(out);
    for (uint32_t p = 0; p < 2; ++p)
      for (auto& bytes : held_[p])
        convert(ctx, p, sdk::frame_view::of(bytes));
    held_[0].clear();
    held_[1].clear();
  }

  void convert(sdk::context& ctx, uint32_t port, const sdk::frame_view& f) {
    std::vector<int> src(out_.num_columns(), -1);
    for (size_t c = 0; c < out_.num_columns(); ++c)
      src[c] = f.index(out_.column(c).name);
    for (size_t r = 0; r < f.num_rows(); ++r) {
      for (size_t c = 0; c < src.size(); ++c)
        if (src[c] < 0)
          out_.append_null(c);
        else
          append_converted(out_, c, f, static_cast<size_t>(src[c]), r);
      out_.end_row();
    }
    (void)port;
    ctx.emit(0, out_.finish(seq_++));
  }

  schema_guard guards_[2] = {schema_guard("union: input a"), schema_guard("union: input b")};
  std::deque<std::vector<uint8_t>> held_[2];
  bool seen_[2] = {false, false}, ended_[2] = {false, false}, ready_ = false;
  sdk::frame_builder out_;
  uint64_t seq_ = 0;
};

const sdk::op_registration union_registration = sdk::registration<union_op>;

} // namespace loom::ops::integrate
