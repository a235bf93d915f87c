// featurize.apply — applies the state fitted by featurize.fit to a table.
#include "featurizer.hpp"

#include <deque>
#include <optional>

namespace loom::ops {

using namespace featurize;

class featurize_apply final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "featurize.apply", "0.1.0",
      "Transforms a table with a featurization fitted by featurize.fit (its `state` output), exactly as "
      "fit transformed the training rows: the same fitted means, scales, boundaries, categories and "
      "vocabularies, the same output columns and the same reject rules (see `loom ops describe "
      "featurize.fit` for every transform). It streams: each data frame becomes one output frame with the "
      "same sequence number; data frames that arrive before the state are kept (copied) until it does. "
      "Categories and terms not seen in training go to the unknown slot (one_hot), -1 (ordinal) or are "
      "ignored (tfidf). Columns of the data that no transform reads pass through unless the state says "
      "drop_input. Fails when the state is not a featurizer Model, when more than one arrives, or when a "
      "column a transform reads is missing.",
      "- id: test_features\n"
      "  op: featurize.apply\n"
      "  inputs: {state: features.state, data: split.test}\n"};
    s.inputs = {{"state", LOOM_MSG_MODEL, "the fitted featurization: featurize.fit's state (one Model)"},
                {"data", LOOM_MSG_FRAME, "the table to transform"}};
    s.outputs = {{"out", LOOM_MSG_FRAME, "the table transformed"},
                 {"rejects", LOOM_MSG_FRAME, "rejected rows: reason, then the row's values"}};
    return s;
  }

  explicit featurize_apply(sdk::context&) {}

  void on_input(sdk::context& ctx, uint32_t port, const sdk::message& msg) override {
    if (port == 0) {
      if (z_)
        throw sdk::error("state: received a second Model; featurize.apply takes exactly one", LOOM_ERR_BAD_DATA);
      z_ = featurizer::from_model(msg.bytes());
      drain(ctx, 1);
      return;
    }
    if (!z_ || !pending_.empty()) {
      auto bytes = msg.bytes();
      pending_.emplace_back(bytes.begin(), bytes.end());
      if (z_)
        drain(ctx, 2); // catch up, a bounded amount per call
      return;
    }
    transform(ctx, sdk::frame_view::of(msg));
  }

  void on_input_end(sdk::context&, uint32_t port) override {
    if (port == 0 && !z_)
      throw sdk::error("state: the input ended without a featurizer Model", LOOM_ERR_BAD_DATA);
  }

  bool produce(sdk::context& ctx) override {
    if (!z_)
      throw sdk::error("state: no featurizer Model received", LOOM_ERR_BAD_DATA);
    if (ctx.cancelled())
      throw sdk::error("cancelled", LOOM_ERR_CANCELLED);
    drain(ctx, 1);
    return pending_.empty();
  }

private:
  void drain(sdk::context& ctx, size_t n) {
    for (; n > 0 && !pending_.empty(); --n) {
      transform(ctx, sdk::frame_view::of(pending_.front()));
      pending_.pop_front();
    }
  }

  void transform(sdk::context& ctx, const sdk::frame_view& f) {
    z_->bind(f);
    auto res = z_->apply(f);
    ctx.emit(0, std::move(*res.out));
    if (res.rejects) {
      ctx.add_rejected(res.rejected);
      ctx.emit(1, std::move(*res.rejects));
    }
  }

  std::optional<featurizer> z_;
  std::deque<std::vector<uint8_t>> pending_;
};

extern const sdk::op_registration featurize_apply_op = sdk::registration<featurize_apply>;

} // namespace loom::ops
