// train — fits a linear, logistic, softmax or MLP model with oneDNN and emits it as a
// Model that bundles the featurizer, so predict needs nothing but the raw rows.
#include "frame_rows.hpp"
#include "model_bundle.hpp"
#include "trained_model.hpp"
#include "trainer.hpp"

#include <loom/atomic_file.hpp>
#include <loom/fb/metrics_generated.h>
#include <loom/params.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <set>
#include <unordered_map>

namespace loom::ops {

namespace tr = train;
using json = nlohmann::json;

namespace {

constexpr const char* metric_names[] = {"train_loss", "train_accuracy", "train_rmse", "train_mae",
                                        "val_loss",   "val_accuracy",   "val_rmse",   "val_mae"};

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

/// Reads a float parameter and checks lo <= v (< hi when `open_hi`, else <= hi).
double float_param(sdk::context& ctx, const char* name, double lo, double hi, bool open_hi, const char* what) {
  double v = ctx.param_float(name);
  if (!std::isfinite(v) || v < lo || (open_hi ? v >= hi : v > hi))
    throw sdk::error(std::string(name) + ": expected " + what + ", found " + fmt(v));
  return v;
}

int64_t int_param(sdk::context& ctx, const char* name, int64_t lo) {
  int64_t v = ctx.param_int(name);
  if (v < lo)
    throw sdk::error(std::string(name) + ": expected an integer >= " + std::to_string(lo) + ", found " +
                     std::to_string(v));
  return v;
}

std::string choice(sdk::context& ctx, const char* name, std::initializer_list<const char*> allowed) {
  auto v = ctx.param_string(name);
  std::string list;
  for (auto* a : allowed) {
    if (v == a)
      return v;
    list += (list.empty() ? "" : ", ") + std::string(a);
  }
  throw sdk::error(std::string(name) + ": expected one of " + list + ", found '" + v + "'");
}

} // namespace

class train_op final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "train", "0.1.0",
      "Trains a model on a table and emits it as a Model message: linear regression (`model: linear`, "
      "squared error, optional l1/l2 penalties), logistic regression (`logistic`, two classes, sigmoid + "
      "binary cross-entropy), softmax regression (`softmax`, two or more classes, softmax + cross-entropy) or a "
      "multi-layer perceptron (`mlp`: `layers` hidden layers with `activation` and `dropout`; classification "
      "with softmax + cross-entropy, or regression with squared error). Forward and backward passes run on "
      "oneDNN primitives (inner product forward with the activation fused as a post-op, inner product backward "
      "data and weights, eltwise backward, softmax) created once for `batch_size` rows and reused for every "
      "batch, with all buffers allocated before the first epoch; the last, shorter batch of an epoch runs "
      "through the same primitives with the missing rows masked out. Optimizers: adam (PyTorch's Adam) or sgd with momentum "
      "(PyTorch's SGD); learning rate constant, step (lr * gamma^floor(epoch / step_size)) or cosine "
      "(lr * (1 + cos(pi * epoch / epochs)) / 2), per epoch.\n"
      "\n"
      "DATA: all rows of `train` (and `validation`) are held in memory as 4-byte floats: rows x features x 4 "
      "bytes. Features are `features`, or by default every column except `target`; they must be numbers "
      "(f32, f64, i64, bool): a string column is an error that names it; encode it with featurize.fit and "
      "connect its `state` to the `featurizer` input. When `featurizer` is connected, it is applied to every "
      "train and validation frame (exactly as featurize.apply would) and bundled into the model. A row whose "
      "feature is null, NaN or infinite, or whose target is null (or not finite, regression), is left out: "
      "counted as rejected and listed on `rejects` (input, row, reason). The task: linear is regression, "
      "logistic and softmax classification; mlp follows `task` (auto: a string or bool target means "
      "classification, a number regression). Classes are the target's distinct values as text (frame_view "
      "text: 3, 2.5, true, or the string), sorted numerically for a number column and by bytes otherwise; "
      "they are the Model's `classes` in class-index order (logistic predicts the probability of the second). "
      "A validation row whose class is not among the training classes is rejected.\n"
      "\n"
      "TRAINING: `epochs` passes over the rows in batches of `batch_size`, shuffled every epoch with a "
      "portable generator seeded by `seed` (xoshiro256**), which also draws the initial weights (MLP: uniform "
      "He for relu layers, Glorot otherwise; linear models start at zero) and the dropout masks. The same "
      "inputs, parameters and `threads` give the same model bit for bit. After each epoch the metrics "
      "(train_loss, train_accuracy or train_rmse/train_mae, val_loss, val_accuracy or val_rmse/val_mae, lr) "
      "are recorded as node metrics (visible while the run goes) and logged in one info line, and appended to "
      "the Model's history. Losses are data losses (mean cross-entropy or mean squared error, without the "
      "penalty); train_ values are averaged over the epoch's batches as they were trained (dropout on). With "
      "a validation input, `monitor` picks the best epoch (accuracy: highest; losses and errors: lowest, by "
      "more than `min_delta`) and the emitted model holds that epoch's weights (unless restore_best: false); "
      "`patience` > 0 stops after that many epochs without improvement. Penalties: l1 * sum|w| + l2 / 2 * "
      "sum w^2 over the weights (not the biases), added to the mean batch loss.\n"
      "\n"
      "THREADS: data parallel. `threads` replicas of the network (0: one per core) share the weights; each "
      "runs oneDNN single-threaded on its own thread on an equal share of every batch's rows, and the threads "
      "meet twice per batch (gradients summed in replica order, then the update split by parameter ranges). "
      "So a busy machine slows training down only by the share of the cores it takes, not many times over as "
      "with threads that synchronise inside every primitive; and a given `threads` gives the same model bit "
      "for bit (another thread count sums in another order, and dropout masks come per replica).\n"
      "\n"
      "MODEL: kind = `model`; target; classes; input_schema = the raw columns the model reads (the "
      "featurizer's input schema when bundled, else the feature columns); preprocessing = the featurizer's "
      "state JSON (empty without); hyperparameters (JSON values): model, task, target, features, loss, layers, "
      "activation, dropout, optimizer, lr, momentum, l1, l2, schedule, step_size, gamma, epochs, batch_size, "
      "seed, shuffle, patience, monitor, min_delta, restore_best, threads, and the outcome epochs_run, "
      "best_epoch, stopped_early, train_rows, validation_rows; tensors dense<i>.weight [outputs, inputs] and "
      "dense<i>.bias [outputs] per layer; history: every epoch's metrics. `metrics` gets one Metrics message "
      "with the best epoch's values and best_epoch, epochs_run, train_rows, validation_rows, rejected_rows.",
      "- id: train\n"
      "  op: train\n"
      "  inputs: {train: split.train, validation: split.validation, featurizer: features.state}\n"
      "  with: {model: softmax, target: species, lr: 0.05, epochs: 50, patience: 5}\n"
      "- id: mlp\n"
      "  op: train\n"
      "  inputs: {train: images.out}\n"
      "  with:\n"
      "    model: mlp\n"
      "    task: classification\n"
      "    target: label\n"
      "    layers: [256, 128]\n"
      "    activation: relu\n"
      "    dropout: 0.1\n"
      "    optimizer: adam\n"
      "    lr: 0.001\n"
      "    schedule: cosine\n"
      "    epochs: 5\n"
      "    batch_size: 128\n"
      "    seed: 42\n"};
    s.inputs = {
      {"train", LOOM_MSG_FRAME, "the training rows (held in memory)"},
      {"validation", LOOM_MSG_FRAME, "rows scored after every epoch (val_ metrics, best epoch, early stopping)",
       true},
      {"featurizer", LOOM_MSG_MODEL,
       "the state output of featurize.fit (at most one Model), applied to both inputs and bundled", true},
    };
    s.outputs = {
      {"model", LOOM_MSG_MODEL, "the trained Model (one message)"},
      {"metrics", LOOM_MSG_METRICS, "the best epoch's metrics and the training's counts (one message)"},
      {"rejects", LOOM_MSG_FRAME, "rows left out: input (train or validation), row (1-based), reason"},
    };
    s.params = {
      {"model", LOOM_PARAM_STRING, true, nullptr, "linear, logistic, softmax or mlp"},
      {"target", LOOM_PARAM_STRING, true, nullptr, "the column to predict"},
      {"task", LOOM_PARAM_STRING, false, "\"auto\"",
       "auto, classification or regression (mlp; auto: string or bool target = classification)"},
      {"features", LOOM_PARAM_LIST, false, nullptr,
       "feature columns (after the featurizer), in order; default: every column but the target"},
      {"layers", LOOM_PARAM_LIST, false, "[64]", "mlp: sizes of the hidden layers"},
      {"activation", LOOM_PARAM_STRING, false, "\"relu\"", "mlp: relu, tanh or sigmoid"},
      {"dropout", LOOM_PARAM_FLOAT, false, "0", "mlp: dropout rate after each hidden layer, in [0, 1)"},
      {"optimizer", LOOM_PARAM_STRING, false, "\"adam\"", "adam or sgd (with momentum)"},
      {"lr", LOOM_PARAM_FLOAT, false, nullptr, "learning rate; default 0.001 (adam) or 0.01 (sgd)"},
      {"momentum", LOOM_PARAM_FLOAT, false, "0.9", "sgd: momentum in [0, 1)"},
      {"l1", LOOM_PARAM_FLOAT, false, "0", "l1 penalty on the weights (>= 0)"},
      {"l2", LOOM_PARAM_FLOAT, false, "0", "l2 penalty on the weights (>= 0): l2 / 2 * sum w^2"},
      {"schedule", LOOM_PARAM_STRING, false, "\"none\"", "learning-rate schedule: none, step or cosine"},
      {"step_size", LOOM_PARAM_INT, false, "10", "step: epochs between decays (>= 1)"},
      {"gamma", LOOM_PARAM_FLOAT, false, "0.1", "step: decay factor in (0, 1]"},
      {"epochs", LOOM_PARAM_INT, false, "10", "passes over the training rows (>= 1)"},
      {"batch_size", LOOM_PARAM_INT, false, "128", "rows per gradient step (>= 1)"},
      {"seed", LOOM_PARAM_INT, false, "42", "seeds the initial weights, the shuffling and the dropout masks"},
      {"shuffle", LOOM_PARAM_BOOL, false, "true", "shuffle the rows every epoch"},
      {"patience", LOOM_PARAM_INT, false, "0",
       "stop after this many epochs without improvement of `monitor`; 0: never stop early"},
      {"monitor", LOOM_PARAM_STRING, false, "\"val_loss\"",
       "metric for the best epoch and early stopping: val_loss, val_accuracy, val_rmse, val_mae or a train_ one"},
      {"min_delta", LOOM_PARAM_FLOAT, false, "0", "smallest change of `monitor` that counts as an improvement"},
      {"restore_best", LOOM_PARAM_BOOL, false, "true",
       "with validation: emit the best epoch's weights (false: the last epoch's)"},
      {"threads", LOOM_PARAM_INT, false, "0",
       "threads training data-parallel replicas (see THREADS); 0: one per core, but one per 10 MFLOP of a "
       "batch's work for small models (the count used is in the model's hyperparameters)"},
      {"save", LOOM_PARAM_STRING, false, nullptr,
       "also write the Model message (FlatBuffers bytes) to this file, relative to the graph file (written under a temporary name, then renamed); default: no file"},
    };
    s.resources = {1.0, 0, 0};
    return s;
  }

  explicit train_op(sdk::context& ctx) {
    kind_ = choice(ctx, "model", {"linear", "logistic", "softmax", "mlp"});
    target_ = ctx.param_string("target");
    if (target_.empty())
      throw sdk::error("target: name the column to predict");
    task_ = choice(ctx, "task", {"auto", "classification", "regression"});
    if (kind_ == "linear" && task_ == "classification")
      throw sdk::error("task: linear is a regression model; use logistic or softmax for classes");
    if ((kind_ == "logistic" || kind_ == "softmax") && task_ == "regression")
      throw sdk::error("task: " + kind_ + " is a classification model; use linear or mlp for regression");
    if (kind_ == "linear")
      task_ = "regression";
    else if (kind_ != "mlp")
      task_ = "classification";
    if (ctx.has_param("features")) {
      features_ = sdk::param_strings(ctx, "features");
      if (features_.empty())
        throw sdk::error("features: name at least one column (or leave it out: every column but the target)");
      std::set<std::string> seen;
      for (auto& f : features_) {
        if (f == target_)
          throw sdk::error("features: '" + f + "' is the target");
        if (!seen.insert(f).second)
          throw sdk::error("features: '" + f + "' is named twice");
      }
    }
    auto all = sdk::params(ctx);
    if (kind_ == "mlp") {
      auto& layers = all["layers"];
      if (!layers.is_array() || layers.empty())
        throw sdk::error("layers: expected a non-empty list of hidden layer sizes, e.g. [256, 128]");
      for (auto& l : layers) {
        if (!l.is_number_integer() || l.get<int64_t>() < 1 || l.get<int64_t>() > (1 << 20))
          throw sdk::error("layers: every size must be an integer from 1 to 1048576, found " + l.dump());
        layers_.push_back(l.get<int64_t>());
      }
    }
    activation_ = choice(ctx, "activation", {"relu", "tanh", "sigmoid"});
    dropout_ = float_param(ctx, "dropout", 0, 1, true, "a rate in [0, 1)");
    auto& o = options_;
    o.opt.kind = choice(ctx, "optimizer", {"adam", "sgd"}) == "adam" ? tr::optimizer_kind::adam
                                                                    : tr::optimizer_kind::sgd;
    o.opt.lr = o.opt.kind == tr::optimizer_kind::adam ? 0.001 : 0.01;
    if (ctx.has_param("lr")) {
      o.opt.lr = ctx.param_float("lr");
      if (!(o.opt.lr > 0) || !std::isfinite(o.opt.lr))
        throw sdk::error("lr: expected a learning rate > 0, found " + fmt(o.opt.lr));
    }
    o.opt.momentum = float_param(ctx, "momentum", 0, 1, true, "a momentum in [0, 1)");
    l1_ = float_param(ctx, "l1", 0, 1e30, false, "a penalty >= 0");
    l2_ = float_param(ctx, "l2", 0, 1e30, false, "a penalty >= 0");
    auto schedule = choice(ctx, "schedule", {"none", "step", "cosine"});
    o.opt.schedule = schedule == "step"     ? tr::schedule_kind::step
                     : schedule == "cosine" ? tr::schedule_kind::cosine
                                            : tr::schedule_kind::none;
    o.opt.step_size = int_param(ctx, "step_size", 1);
    o.opt.gamma = ctx.param_float("gamma");
    if (!(o.opt.gamma > 0 && o.opt.gamma <= 1))
      throw sdk::error("gamma: expected a decay factor in (0, 1], found " + fmt(o.opt.gamma));
    o.epochs = int_param(ctx, "epochs", 1);
    o.batch_size = int_param(ctx, "batch_size", 1);
    if (o.batch_size > (1 << 20))
      throw sdk::error("batch_size: at most 1048576 rows, found " + std::to_string(o.batch_size));
    o.seed = static_cast<uint64_t>(ctx.param_int("seed"));
    o.shuffle = ctx.param_bool("shuffle");
    o.patience = int_param(ctx, "patience", 0);
    o.monitor = ctx.param_string("monitor");
    if (std::find(std::begin(metric_names), std::end(metric_names), o.monitor) == std::end(metric_names))
      throw sdk::error("monitor: expected one of val_loss, val_accuracy, val_rmse, val_mae, train_loss, "
                       "train_accuracy, train_rmse, train_mae; found '" +
                       o.monitor + "'");
    if (task_ == "regression" && o.monitor.find("accuracy") != std::string::npos)
      throw sdk::error("monitor: " + o.monitor + " needs a classification model; this one is regression");
    if (task_ == "classification" && (o.monitor.ends_with("rmse") || o.monitor.ends_with("mae")))
      throw sdk::error("monitor: " + o.monitor + " needs a regression model; this one is classification");
    o.min_delta = float_param(ctx, "min_delta", 0, 1e30, false, "a change >= 0");
    o.restore_best = ctx.param_bool("restore_best");
    threads_ = int_param(ctx, "threads", 0);
    if (ctx.has_param("save")) {
      if (ctx.param_string("save").empty())
        throw sdk::error("save: expected a file name");
      save_ = ctx.resolve_path(ctx.param_string("save"));
      save_tag_ = ctx.run_id() + "-" + std::to_string(ctx.attempt());
    }
    inputs_[0].name = "train";
    inputs_[1].name = "validation";
    rejects_.add_column("input", sdk::col_type::string, false);
    rejects_.add_column("row", sdk::col_type::i64, false);
    rejects_.add_column("reason", sdk::col_type::string, false);
  }

  void on_input(sdk::context& ctx, uint32_t port, const sdk::message& msg) override {
    if (port == 2) {
      if (featurizer_state_)
        throw sdk::error("featurizer: received a second Model; train takes at most one", LOOM_ERR_BAD_DATA);
      auto bytes = msg.bytes();
      // twice: train and validation frames bind their own copy (each fixes its schema)
      try {
        inputs_[0].fz = featurize::featurizer::from_model(bytes);
        inputs_[1].fz = featurize::featurizer::from_model(bytes);
      } catch (const sdk::error& e) {
        throw sdk::error(std::string("featurizer input: ") + e.what(), e.code());
      }
      auto* m = fb::GetModel(bytes.data());
      featurizer_state_ = m->preprocessing()->str();
      if (m->input_schema())
        for (auto* f : *m->input_schema()) {
          auto type = static_cast<int>(f->type());
          if (type < 0 || type > static_cast<int>(sdk::col_type::string))
            throw sdk::error("featurizer input: column '" + f->name()->str() + "' has an unknown type",
                             LOOM_ERR_BAD_DATA);
          featurizer_schema_.push_back({f->name()->str(), static_cast<sdk::col_type>(type), f->nullable()});
        }
      featurizer_resolved_ = true;
      drain(ctx);
      return;
    }
    auto& in = inputs_[port];
    if (featurizer_resolved_ && in.pending.empty() && (port == 0 || layout_decided_)) {
      take(ctx, in, sdk::frame_view::of(msg));
      return;
    }
    auto bytes = msg.bytes();
    in.pending.emplace_back(bytes.begin(), bytes.end());
  }

  void on_input_end(sdk::context& ctx, uint32_t port) override {
    if (port == 2) {
      featurizer_resolved_ = true;
      drain(ctx);
    }
  }

  bool produce(sdk::context& ctx) override {
    if (ctx.cancelled())
      throw sdk::error("cancelled", LOOM_ERR_CANCELLED);
    featurizer_resolved_ = true;
    drain(ctx);
    if (!layout_decided_ || inputs_[0].data.size() == 0)
      throw sdk::error("train: no usable training rows" +
                         (inputs_[0].rows_seen > 0
                            ? " (all " + std::to_string(inputs_[0].rows_seen) + " were rejected; see rejects)"
                            : std::string(" (the train input was empty)")),
                       LOOM_ERR_BAD_DATA);
    finish_labels(ctx);
    flush_rejects(ctx);
    run(ctx);
    return true;
  }

private:
  struct input_state {
    std::string name;
    uint64_t rows_seen = 0;
    tr::dataset data;
    std::vector<uint64_t> row_no; ///< input row (1-based) of each kept row (validation only)
    std::unordered_map<std::string, uint32_t> label_id; ///< classification: label -> first-seen id
    std::vector<std::string> labels;
    std::optional<featurize::featurizer> fz;
    std::deque<std::vector<uint8_t>> pending;
  };

  /// Takes the frames held back: every train frame once the featurizer is known, the
  /// validation frames once the first train frame decided the columns.
  void drain(sdk::context& ctx) {
    if (!featurizer_resolved_)
      return;
    for (int port : {0, 1}) {
      auto& in = inputs_[port];
      while (!in.pending.empty() && (port == 0 || layout_decided_)) {
        auto bytes = std::move(in.pending.front());
        in.pending.pop_front();
        take(ctx, in, sdk::frame_view::of(bytes));
      }
    }
  }

  void reject(input_state& in, uint64_t row, const std::string& reason) {
    rejects_.append_string(0, in.name);
    rejects_.append_i64(1, static_cast<int64_t>(row));
    rejects_.append_string(2, reason);
    rejects_.end_row();
    ++rejected_;
    ++rejected_pending_;
  }

  void flush_rejects(sdk::context& ctx) {
    if (rejects_.num_rows() == 0)
      return;
    ctx.add_rejected(rejected_pending_);
    rejected_pending_ = 0;
    ctx.emit(2, rejects_.finish(rejects_sequence_++));
  }

  /// The first training frame (after the featurizer) fixes the features and the task.
  void decide_layout(const sdk::frame_view& f) {
    int t = f.index(target_);
    if (t < 0)
      throw sdk::error("target column '" + target_ + "' is not in the training data (columns: " +
                         f.describe_columns() + ")",
                       LOOM_ERR_BAD_DATA);
    auto ttype = f.type(static_cast<size_t>(t));
    if (task_ == "auto")
      task_ = ttype == sdk::col_type::string || ttype == sdk::col_type::boolean ? "classification" : "regression";
    if (task_ == "regression" && ttype == sdk::col_type::string)
      throw sdk::error("target column '" + target_ + "' is a string column; " + kind_ +
                         " regression needs numbers" + (kind_ == "mlp" ? " (or task: classification)" : ""),
                       LOOM_ERR_BAD_DATA);
    if (task_ == "regression" && options_.monitor.find("accuracy") != std::string::npos)
      throw sdk::error("monitor: " + options_.monitor + " needs classification; target column '" + target_ +
                       "' makes this a regression (set task: classification for classes)");
    if (task_ == "classification" && (options_.monitor.ends_with("rmse") || options_.monitor.ends_with("mae")))
      throw sdk::error("monitor: " + options_.monitor + " needs regression; this model classifies '" + target_ +
                       "'");
    numeric_labels_ = ttype != sdk::col_type::string && ttype != sdk::col_type::boolean;
    const std::string encode =
      inputs_[0].fz ? "the featurizer leaves it as text: add a transform for it (one_hot, ordinal, hash, tfidf) "
                      "to featurize.fit, or leave it out with `features`"
                    : "train needs numbers: encode it with a featurize.fit node (one_hot, ordinal, hash, tfidf) "
                      "and connect its state to train's featurizer input, or leave it out with `features`";
    if (features_.empty()) {
      for (size_t c = 0; c < f.num_columns(); ++c) {
        if (static_cast<int>(c) == t)
          continue;
        if (f.type(c) == sdk::col_type::string)
          throw sdk::error("column '" + std::string(f.name(c)) + "' is a string column; " + encode,
                           LOOM_ERR_BAD_DATA);
        features_.emplace_back(f.name(c));
      }
      if (features_.empty())
        throw sdk::error("the training data has no column besides the target '" + target_ + "' (columns: " +
                           f.describe_columns() + ")",
                         LOOM_ERR_BAD_DATA);
    }
    reader_.emplace(features_);
    reader_->bind(f, false, encode);
    for (auto& n : features_) {
      size_t c = f.require(n);
      feature_schema_.push_back({n, f.type(c), f.nullable(c)});
    }
    for (auto& in : inputs_)
      in.data.cols = features_.size();
    hint_ = encode;
    layout_decided_ = true;
  }

  /// One frame of an input: featurized, features and target read, good rows kept.
  void take(sdk::context& ctx, input_state& in, const sdk::frame_view& raw) {
    auto p = tr::prepare(in.fz ? &*in.fz : nullptr, raw);
    const uint64_t base = in.rows_seen;
    in.rows_seen += raw.num_rows();
    for (auto& [r, why] : p.rejected)
      reject(in, base + r + 1, why);
    auto& f = *p.view;
    if (!layout_decided_)
      decide_layout(f);
    reader_->bind(f, false, hint_);
    int t = f.index(target_);
    if (t < 0)
      throw sdk::error("target column '" + target_ + "' is not in the " + in.name + " input (columns: " +
                         f.describe_columns() + ")",
                       LOOM_ERR_BAD_DATA);
    const size_t tc = static_cast<size_t>(t);
    const bool classify = task_ == "classification";
    if (!classify && f.type(tc) == sdk::col_type::string)
      throw sdk::error("target column '" + target_ + "' is a string column in the " + in.name +
                         " input; regression needs numbers",
                       LOOM_ERR_BAD_DATA);
    const size_t rows = f.num_rows(), width = features_.size();
    std::vector<float> block(rows * width);
    reader_->read(f, block.data(), reasons_);
    size_t kept = 0;
    for (size_t r = 0; r < rows; ++r) {
      std::string why = std::move(reasons_[r]);
      double y = 0;
      if (why.empty() && !f.valid(tc, r))
        why = "target column '" + target_ + "' is null";
      if (why.empty() && !classify) {
        y = f.number(tc, r);
        if (!std::isfinite(y))
          why = "target column '" + target_ + "' is " + f.text(tc, r);
      }
      if (!why.empty()) {
        reject(in, base + p.raw_row[r] + 1, why);
        continue;
      }
      if (classify) {
        auto label = f.text(tc, r);
        auto it = in.label_id.find(label);
        if (it == in.label_id.end()) {
          it = in.label_id.emplace(label, static_cast<uint32_t>(in.labels.size())).first;
          in.labels.push_back(label);
        }
        y = it->second;
      }
      if (kept != r)
        std::memcpy(block.data() + kept * width, block.data() + r * width, width * sizeof(float));
      in.data.y.push_back(static_cast<float>(y));
      if (&in == &inputs_[1])
        in.row_no.push_back(base + p.raw_row[r] + 1);
      ++kept;
    }
    block.resize(kept * width);
    in.data.add_block(std::move(block), kept);
    if (rejects_.num_rows() >= 4096)
      flush_rejects(ctx);
  }

  /// Classification: the sorted classes, and every label id mapped to its class index.
  void finish_labels(sdk::context& ctx) {
    if (task_ != "classification")
      return;
    auto& train = inputs_[0];
    classes_ = train.labels;
    if (numeric_labels_) {
      std::stable_sort(classes_.begin(), classes_.end(), [](const std::string& a, const std::string& b) {
        double x = 0, y = 0;
        std::from_chars(a.data(), a.data() + a.size(), x);
        std::from_chars(b.data(), b.data() + b.size(), y);
        return x < y;
      });
    } else {
      std::sort(classes_.begin(), classes_.end());
    }
    auto list = [&] {
      std::string s;
      for (size_t i = 0; i < classes_.size() && i < 10; ++i)
        s += (i ? ", " : "") + classes_[i];
      return s + (classes_.size() > 10 ? ", ..." : "");
    };
    if (classes_.size() < 2)
      throw sdk::error("target column '" + target_ + "' has a single class (" + list() +
                         ") in the training rows; classification needs at least two",
                       LOOM_ERR_BAD_DATA);
    if (kind_ == "logistic" && classes_.size() != 2)
      throw sdk::error("target column '" + target_ + "' has " + std::to_string(classes_.size()) + " classes (" +
                         list() + "); logistic regression is binary: use model: softmax (or mlp)",
                       LOOM_ERR_BAD_DATA);
    std::unordered_map<std::string, float> index;
    for (size_t i = 0; i < classes_.size(); ++i)
      index[classes_[i]] = static_cast<float>(i);
    for (auto& y : train.data.y)
      y = index.at(train.labels[static_cast<size_t>(y)]);
    // validation: rows of a class training never saw cannot be scored
    auto& val = inputs_[1];
    tr::dataset kept;
    kept.cols = val.data.cols;
    std::vector<float> block;
    uint64_t unseen = 0;
    for (size_t i = 0; i < val.data.size(); ++i) {
      auto& label = val.labels[static_cast<size_t>(val.data.y[i])];
      auto it = index.find(label);
      if (it == index.end()) {
        reject(val, val.row_no[i], "class '" + label + "' of target column '" + target_ +
                                     "' is not among the training classes");
        ++unseen;
        continue;
      }
      block.insert(block.end(), val.data.rows[i], val.data.rows[i] + val.data.cols);
      kept.y.push_back(it->second);
    }
    if (unseen > 0) {
      ctx.warn("train: " + std::to_string(unseen) + " validation rows have a class of '" + target_ +
               "' that the training rows do not have; they are rejected");
      size_t n = kept.y.size();
      kept.add_block(std::move(block), n);
      val.data = std::move(kept);
    } else {
      for (auto& y : val.data.y)
        y = index.at(val.labels[static_cast<size_t>(y)]);
    }
  }

  tr::net_spec net_spec() const {
    tr::net_spec s;
    s.inputs = static_cast<int64_t>(features_.size());
    if (kind_ == "mlp") {
      s.hidden = layers_;
      s.act = activation_ == "tanh" ? tr::activation::tanh
              : activation_ == "sigmoid" ? tr::activation::sigmoid
                                         : tr::activation::relu;
      s.dropout = static_cast<float>(dropout_);
    }
    if (task_ == "regression") {
      s.loss = tr::loss_kind::mse;
      s.outputs = 1;
    } else if (kind_ == "logistic") {
      s.loss = tr::loss_kind::sigmoid_bce;
      s.outputs = 1;
    } else {
      s.loss = tr::loss_kind::softmax_ce;
      s.outputs = static_cast<int64_t>(classes_.size());
    }
    s.l1 = static_cast<float>(l1_);
    s.l2 = static_cast<float>(l2_);
    return s;
  }

  std::string shape(const tr::net_spec& s) const {
    std::string out = std::to_string(s.inputs);
    for (auto h : s.hidden)
      out += "-" + std::to_string(h);
    return out + "-" + std::to_string(s.outputs);
  }

  void run(sdk::context& ctx) {
    auto& train = inputs_[0].data;
    auto& val = inputs_[1].data;
    const bool has_val = val.size() > 0;
    if (inputs_[1].rows_seen > 0 && !has_val)
      ctx.warn("train: every validation row was rejected; training without validation");
    auto& o = options_;
    if (!has_val && o.patience > 0 && o.monitor.starts_with("val_"))
      throw sdk::error("patience: early stopping watches " + o.monitor +
                       ", which needs validation rows (connect the validation input, or monitor a train_ metric)");
    auto spec = net_spec();
    const int threads = threads_ > 0 ? static_cast<int>(threads_) : tr::auto_threads(spec, o.batch_size, 3);

    std::optional<tr::parallel_network> net;
    try {
      net.emplace(spec, o.batch_size, true, threads);
    } catch (const std::invalid_argument& e) {
      throw sdk::error(std::string("train: ") + e.what());
    }
    net->primary().init(o.seed);
    ctx.info(kind_ + " " + shape(spec) + " (" + std::to_string(net->primary().num_params()) +
             " parameters, " + task_ + ") on " + std::to_string(train.size()) + " rows" +
             (has_val ? ", validation " + std::to_string(val.size()) + " rows" : std::string()) + "; batch " +
             std::to_string(o.batch_size) + ", " + (o.opt.kind == tr::optimizer_kind::adam ? "adam" : "sgd") +
             " lr " + fmt(o.opt.lr) + ", " + std::to_string(net->threads()) + " threads; oneDNN " +
             net->primary().implementation());

    tr::train_callbacks cb;
    cb.cancelled = [&] { return ctx.cancelled(); };
    cb.on_epoch = [&](const tr::epoch_report& r) {
      std::string line = "epoch " + std::to_string(r.epoch) + "/" + std::to_string(o.epochs) + ":";
      for (auto& [k, v] : r.values) {
        ctx.metric(k, v);
        line += " " + k + " " + fmt(v);
      }
      double rate = static_cast<double>(train.size()) / std::max(r.train_seconds, 1e-9);
      ctx.metric("epoch", static_cast<double>(r.epoch));
      ctx.metric("epoch_seconds", r.train_seconds);
      ctx.metric("samples_per_second", rate);
      line += " (" + fmt(r.seconds) + " s, " + std::to_string(static_cast<int64_t>(rate)) + " rows/s)";
      if (r.best && has_val)
        line += " *";
      ctx.info(line);
    };
    tr::train_result result;
    try {
      result = tr::fit(*net, train, has_val ? &val : nullptr, o, cb);
    } catch (const tr::cancelled_error&) {
      throw sdk::error("cancelled", LOOM_ERR_CANCELLED);
    } catch (const std::invalid_argument& e) {
      throw sdk::error(std::string("train: ") + e.what());
    } catch (const std::runtime_error& e) {
      throw sdk::error(std::string("train: ") + e.what(), LOOM_ERR_BAD_DATA);
    }
    if (result.stopped_early)
      ctx.info("stopped early after epoch " + std::to_string(result.epochs.size()) + ": " + o.monitor +
               " did not improve for " + std::to_string(o.patience) + " epochs; best epoch " +
               std::to_string(result.best_epoch));
    else if (has_val && o.restore_best)
      ctx.info("the model holds the weights of epoch " + std::to_string(result.best_epoch) +
               " (best " + o.monitor + ")");

    auto bundle = make_bundle(net->primary(), spec, result, net->threads());
    auto bytes = bundle.serialize();
    if (!save_.empty())
      save(bytes);
    ctx.emit(0, std::move(bytes));
    ctx.emit(1, metrics(result));
    flush_rejects(ctx);
  }

  tr::model_bundle make_bundle(const tr::network& net, const tr::net_spec& spec, const tr::train_result& result,
                               int threads) const {
    tr::model_bundle m;
    m.kind = kind_;
    m.version = "1";
    auto& o = options_;
    auto h = [&](const char* key, const json& v) { m.hyperparameters.emplace_back(key, v.dump()); };
    h("model", kind_);
    h("task", task_);
    h("target", target_);
    h("features", features_);
    h("loss", tr::to_string(spec.loss));
    if (kind_ == "mlp") {
      h("layers", layers_);
      h("activation", activation_);
      h("dropout", dropout_);
    }
    h("optimizer", o.opt.kind == tr::optimizer_kind::adam ? "adam" : "sgd");
    h("lr", o.opt.lr);
    if (o.opt.kind == tr::optimizer_kind::sgd)
      h("momentum", o.opt.momentum);
    h("l1", l1_);
    h("l2", l2_);
    h("schedule", o.opt.schedule == tr::schedule_kind::step     ? "step"
                  : o.opt.schedule == tr::schedule_kind::cosine ? "cosine"
                                                                : "none");
    if (o.opt.schedule == tr::schedule_kind::step) {
      h("step_size", o.opt.step_size);
      h("gamma", o.opt.gamma);
    }
    h("epochs", o.epochs);
    h("batch_size", o.batch_size);
    h("seed", o.seed);
    h("shuffle", o.shuffle);
    h("patience", o.patience);
    h("monitor", o.monitor);
    h("min_delta", o.min_delta);
    h("restore_best", o.restore_best);
    h("threads", threads);
    h("epochs_run", result.epochs.size());
    h("best_epoch", result.best_epoch);
    h("stopped_early", result.stopped_early);
    h("train_rows", inputs_[0].data.size());
    h("validation_rows", inputs_[1].data.size());
    m.input_schema = featurizer_state_ ? featurizer_schema_ : feature_schema_;
    m.target = target_;
    m.classes = classes_;
    m.preprocessing = featurizer_state_.value_or("");
    tr::store_weights(net, m);
    for (auto& e : result.epochs)
      for (auto& [k, v] : e.values)
        m.history.push_back({static_cast<uint32_t>(e.epoch), k, v});
    return m;
  }

  flatbuffers::DetachedBuffer metrics(const tr::train_result& result) const {
    flatbuffers::FlatBufferBuilder b;
    std::vector<flatbuffers::Offset<fb::Metric>> values;
    auto add = [&](const std::string& k, double v) { values.push_back(fb::CreateMetricDirect(b, k.c_str(), v)); };
    for (auto& e : result.epochs)
      if (e.epoch == result.best_epoch)
        for (auto& [k, v] : e.values)
          add(k, v);
    add("best_epoch", static_cast<double>(result.best_epoch));
    add("epochs_run", static_cast<double>(result.epochs.size()));
    add("train_rows", static_cast<double>(inputs_[0].data.size()));
    add("validation_rows", static_cast<double>(inputs_[1].data.size()));
    add("rejected_rows", static_cast<double>(rejected_));
    auto m = fb::CreateMetricsDirect(b, &values);
    fb::FinishMetricsBuffer(b, m);
    return b.Release();
  }

  void save(const std::vector<uint8_t>& bytes) {
    sdk::atomic_file file(save_, save_tag_);
    file.write({reinterpret_cast<const char*>(bytes.data()), bytes.size()});
    file.commit();
  }

  // parameters
  std::string kind_, target_, task_, activation_;
  std::vector<std::string> features_;
  std::vector<int64_t> layers_;
  double dropout_ = 0, l1_ = 0, l2_ = 0;
  int64_t threads_ = 0;
  tr::train_options options_;
  std::string save_, save_tag_;

  // inputs
  input_state inputs_[2];
  bool featurizer_resolved_ = false;
  std::optional<std::string> featurizer_state_;
  std::vector<sdk::field> featurizer_schema_;
  bool layout_decided_ = false;
  std::optional<tr::feature_reader> reader_;
  std::vector<sdk::field> feature_schema_;
  std::string hint_;
  std::vector<std::string> reasons_;
  bool numeric_labels_ = false;
  std::vector<std::string> classes_;

  // rejects
  sdk::frame_builder rejects_;
  uint64_t rejects_sequence_ = 0, rejected_ = 0, rejected_pending_ = 0;
};

extern const sdk::op_registration train_op_registration = sdk::registration<train_op>;

} // namespace loom::ops
