// predict — scores raw rows with a Model from train: the bundled featurizer, then the
// network on oneDNN; adds the prediction (and class probabilities) to each row.
#include "frame_rows.hpp"
#include "model_bundle.hpp"
#include "parallel.hpp"
#include "trained_model.hpp"

#include <loom/params.hpp>

#include <deque>
#include <set>

namespace loom::ops {

namespace tr = train;

class predict_op final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "predict", "0.1.0",
      "Scores a table with a Model made by train (batch scoring): applies the featurizer bundled in the model "
      "to each raw row (as featurize.apply would), reads the model's feature columns and runs the network "
      "forward on oneDNN in batches of `batch_size` rows. Each output row is the input row (its columns, or "
      "only those named in `keep`) followed by, for classification, `prediction` (string: the most probable "
      "class label as text, the first on ties) and one f64 column `prob_<label>` per class in the model's "
      "class order (binary logistic: both classes, summing to 1); for regression, `prediction` (f64). The "
      "target column is not needed, and when present it is passed through untouched (a class that training "
      "never saw is not an error here: evaluate reports it). Frames stream: one output frame per input frame, "
      "with its sequence number; data frames that arrive before the model are kept (copied) until it does. A "
      "row that cannot be scored — the featurizer rejects it, a feature is null, NaN or infinite after "
      "featurization, or a feature column holds text that is not a number — goes to `rejects` (a `reason` "
      "column, then the row's values) and is counted, so rows in = rows out + rows rejected. A missing "
      "feature column, a model that is not train's, or an output column name that an input column already "
      "has fails the node with a message that names it.",
      "- id: predict\n"
      "  op: predict\n"
      "  inputs: {model: train.model, data: split.test}\n"
      "- id: scored\n"
      "  op: predict\n"
      "  inputs: {model: train.model, data: images.out}\n"
      "  with: {keep: [label], batch_size: 4096}\n"};
    s.inputs = {{"model", LOOM_MSG_MODEL, "the Model from train (exactly one)"},
                {"data", LOOM_MSG_FRAME, "raw rows to score (the columns the model's featurizer reads)"}};
    s.outputs = {{"predictions", LOOM_MSG_FRAME, "the input rows with the prediction columns added"},
                 {"rejects", LOOM_MSG_FRAME, "rows that could not be scored: reason, then the row's values"}};
    s.params = {
      {"keep", LOOM_PARAM_LIST, false, nullptr,
       "input columns to copy to the output, in this order; default: all of them"},
      {"prediction", LOOM_PARAM_STRING, false, "\"prediction\"", "name of the prediction column"},
      {"probability_prefix", LOOM_PARAM_STRING, false, "\"prob_\"",
       "classification: the probability columns are named this prefix + the class label"},
      {"batch_size", LOOM_PARAM_INT, false, "1024", "rows per forward pass (>= 1)"},
      {"threads", LOOM_PARAM_INT, false, "0",
       "threads scoring each batch's rows in parallel (one network replica each, oneDNN single-threaded in "
       "each); 0: one per core, fewer for small models (one per 10 MFLOP of a batch's work)"},
    };
    return s;
  }

  explicit predict_op(sdk::context& ctx)
    : prediction_(ctx.param_string("prediction")), prefix_(ctx.param_string("probability_prefix")),
      batch_(ctx.param_int("batch_size")), threads_(ctx.param_int("threads")) {
    if (ctx.has_param("keep")) {
      keep_ = sdk::param_strings(ctx, "keep");
      std::set<std::string> seen;
      for (auto& k : keep_)
        if (!seen.insert(k).second)
          throw sdk::error("keep: column '" + k + "' is named twice");
    }
    if (prediction_.empty())
      throw sdk::error("prediction: name the prediction column");
    if (batch_ < 1 || batch_ > (1 << 20))
      throw sdk::error("batch_size: expected 1 to 1048576 rows, found " + std::to_string(batch_));
    if (threads_ < 0)
      throw sdk::error("threads: expected 0 (all cores) or a thread count, found " + std::to_string(threads_));
  }

  void on_input(sdk::context& ctx, uint32_t port, const sdk::message& msg) override {
    if (port == 0) {
      if (net_)
        throw sdk::error("model: received a second Model; predict takes exactly one", LOOM_ERR_BAD_DATA);
      load(ctx, msg.bytes());
      drain(ctx, 1);
      return;
    }
    if (!net_ || !pending_.empty()) {
      auto bytes = msg.bytes();
      pending_.emplace_back(bytes.begin(), bytes.end());
      if (net_)
        drain(ctx, 2); // catch up, a bounded amount per call
      return;
    }
    score(ctx, sdk::frame_view::of(msg));
  }

  void on_input_end(sdk::context&, uint32_t port) override {
    if (port == 0 && !net_)
      throw sdk::error("model: the input ended without a Model", LOOM_ERR_BAD_DATA);
  }

  bool produce(sdk::context& ctx) override {
    if (!net_)
      throw sdk::error("model: no Model received", LOOM_ERR_BAD_DATA);
    if (ctx.cancelled())
      throw sdk::error("cancelled", LOOM_ERR_CANCELLED);
    drain(ctx, 1);
    return pending_.empty();
  }

private:
  void load(sdk::context& ctx, std::span<const uint8_t> bytes) {
    model_ = tr::model_bundle::parse(bytes);
    layout_ = tr::read_layout(model_);
    if (!model_.preprocessing.empty())
      fz_ = featurize::featurizer::from_state(model_.preprocessing);
    reader_.emplace(layout_.features);
    try {
      int threads = threads_ > 0 ? static_cast<int>(threads_) : tr::auto_threads(layout_.spec, batch_, 1);
      net_.emplace(layout_.spec, batch_, false, threads);
    } catch (const std::invalid_argument& e) {
      throw sdk::error(std::string("model: ") + e.what(), LOOM_ERR_BAD_DATA);
    }
    tr::load_weights(net_->primary(), model_);
    ctx.info(model_.kind + " model for '" + model_.target + "' with " +
             std::to_string(layout_.features.size()) + " features" +
             (fz_ ? " and a featurizer of " + std::to_string(fz_->transforms.size()) + " transforms" : std::string()) +
             (layout_.classification ? ", " + std::to_string(model_.classes.size()) + " classes" : std::string()));
  }

  void drain(sdk::context& ctx, size_t n) {
    for (; n > 0 && !pending_.empty(); --n) {
      score(ctx, sdk::frame_view::of(pending_.front()));
      pending_.pop_front();
    }
  }

  /// The output and rejects builders, from the first data frame's columns.
  void plan(const sdk::frame_view& raw) {
    schema_ = raw.schema();
    std::vector<size_t> cols;
    if (keep_.empty()) {
      for (size_t c = 0; c < raw.num_columns(); ++c)
        cols.push_back(c);
    } else {
      for (auto& k : keep_) {
        int c = raw.index(k);
        if (c < 0)
          throw sdk::error("keep: no column '" + k + "' in the input (columns: " + raw.describe_columns() + ")",
                           LOOM_ERR_BAD_DATA);
        cols.push_back(static_cast<size_t>(c));
      }
    }
    std::set<std::string> names;
    for (auto c : cols) {
      out_.add_column(schema_[c].name, schema_[c].type, schema_[c].nullable);
      names.insert(schema_[c].name);
    }
    keep_cols_ = cols;
    auto add = [&](const std::string& name, sdk::col_type type) {
      if (names.count(name))
        throw sdk::error("output column '" + name + "' is already an input column; leave it out with `keep`, or " +
                           "rename the output with `prediction` / `probability_prefix`",
                         LOOM_ERR_BAD_DATA);
      names.insert(name);
      return out_.add_column(name, type, false);
    };
    if (layout_.classification) {
      pred_col_ = add(prediction_, sdk::col_type::string);
      for (auto& c : model_.classes)
        add(prefix_ + c, sdk::col_type::f64);
    } else {
      pred_col_ = add(prediction_, sdk::col_type::f64);
    }
    rejects_.add_column("reason", sdk::col_type::string, false);
    for (auto& f : schema_)
      rejects_.add_column(f.name, f.type, true);
  }

  void score(sdk::context& ctx, const sdk::frame_view& raw) {
    if (guard_.check(raw))
      plan(raw);
    auto p = tr::prepare(fz_ ? &*fz_ : nullptr, raw);
    const auto& f = *p.view;
    reader_->bind(f, true, "");
    const size_t rows = f.num_rows(), width = layout_.features.size();
    features_.resize(rows * width);
    reader_->read(f, features_.data(), reasons_);

    // the raw rows' fates: why each is rejected ("" = scored) and its row in the scored set
    std::vector<std::string> why(raw.num_rows());
    for (auto& [r, reason] : p.rejected)
      why[r] = reason;
    std::vector<int64_t> scored_at(raw.num_rows(), -1);
    std::vector<size_t> good; // featurized rows to score
    for (size_t r = 0; r < rows; ++r) {
      if (!reasons_[r].empty()) {
        why[p.raw_row[r]] = reasons_[r];
        continue;
      }
      scored_at[p.raw_row[r]] = static_cast<int64_t>(good.size());
      good.push_back(r);
    }

    const size_t k = static_cast<size_t>(layout_.spec.outputs);
    // the rows to score, packed, then scored in batches spread over the threads
    const float* rows_in = features_.data();
    if (good.size() != rows) {
      packed_.resize(good.size() * width);
      for (size_t i = 0; i < good.size(); ++i)
        std::copy_n(features_.data() + good[i] * width, width, packed_.data() + i * width);
      rows_in = packed_.data();
    }
    outputs_.resize(good.size() * k);
    net_->predict(rows_in, good.size(), outputs_.data());

    uint64_t rejected = 0;
    const auto& classes = model_.classes;
    for (size_t r = 0; r < raw.num_rows(); ++r) {
      if (scored_at[r] < 0) {
        rejects_.append_string(0, why[r]);
        for (size_t c = 0; c < raw.num_columns(); ++c)
          rejects_.append_from(c + 1, raw, c, r);
        rejects_.end_row();
        ++rejected;
        continue;
      }
      for (size_t i = 0; i < keep_cols_.size(); ++i)
        out_.append_from(i, raw, keep_cols_[i], r);
      const float* o = outputs_.data() + static_cast<size_t>(scored_at[r]) * k;
      if (!layout_.classification) {
        out_.append_f64(pred_col_, o[0]);
      } else if (layout_.spec.loss == tr::loss_kind::sigmoid_bce) {
        double p1 = o[0];
        out_.append_string(pred_col_, classes[p1 >= 0.5 ? 1 : 0]);
        out_.append_f64(pred_col_ + 1, 1.0 - p1);
        out_.append_f64(pred_col_ + 2, p1);
      } else {
        size_t best = 0;
        for (size_t c = 1; c < k; ++c)
          if (o[c] > o[best])
            best = c;
        out_.append_string(pred_col_, classes[best]);
        for (size_t c = 0; c < k; ++c)
          out_.append_f64(pred_col_ + 1 + c, o[c]);
      }
      out_.end_row();
    }
    ctx.emit(0, out_.finish(raw.sequence()));
    if (rejected > 0) {
      ctx.add_rejected(rejected);
      ctx.emit(1, rejects_.finish(raw.sequence()));
    }
  }

  // parameters
  std::vector<std::string> keep_;
  std::string prediction_, prefix_;
  int64_t batch_ = 1024, threads_ = 0;

  // the model
  tr::model_bundle model_;
  tr::model_layout layout_;
  std::optional<featurize::featurizer> fz_;
  std::optional<tr::feature_reader> reader_;
  std::optional<tr::parallel_network> net_;

  // data
  std::deque<std::vector<uint8_t>> pending_;
  std::vector<sdk::field> schema_;
  sdk::schema_guard guard_{"predict: data"};
  std::vector<size_t> keep_cols_;
  size_t pred_col_ = 0;
  sdk::frame_builder out_, rejects_;
  std::vector<float> features_, packed_, outputs_;
  std::vector<std::string> reasons_;
};

extern const sdk::op_registration predict_op_registration = sdk::registration<predict_op>;

} // namespace loom::ops
