// evaluate — classification and regression metrics of scored rows, a Metrics message
// and a self-contained HTML report.
#include "columns.hpp"
#include "metrics.hpp"
#include "report.hpp"

#include <loom/fb/metrics_generated.h>
#include <loom/fb/model_generated.h>
#include <loom/frame.hpp>
#include <loom/parse.hpp>
#include <loom/sdk.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <unordered_map>

namespace loom::ops {

using namespace evaluate;

namespace {

constexpr size_t reject_frame_rows = 4096;
constexpr size_t scatter_points = 2000;

std::string join(const std::vector<std::string>& v, size_t limit = 20) {
  std::string out;
  for (size_t i = 0; i < v.size() && i < limit; ++i)
    out += (i ? ", " : "") + v[i];
  if (v.size() > limit)
    out += ", ... (" + std::to_string(v.size()) + " in all)";
  return out;
}

/// Labels without a model's order: numerically when every label is a number, else by
/// their bytes.
void sort_labels(std::vector<std::string>& labels) {
  std::vector<std::pair<double, std::string>> nums;
  for (auto& l : labels) {
    double d;
    if (!sdk::parse_f64(l, d) || std::isnan(d)) {
      std::sort(labels.begin(), labels.end());
      return;
    }
    nums.emplace_back(d, l);
  }
  std::sort(nums.begin(), nums.end());
  for (size_t i = 0; i < labels.size(); ++i)
    labels[i] = nums[i].second;
}

model_summary read_model(std::span<const uint8_t> bytes) {
  flatbuffers::Verifier v(bytes.data(), bytes.size());
  if (bytes.size() < 8 || !fb::ModelBufferHasIdentifier(bytes.data()) || !fb::VerifyModelBuffer(v))
    throw sdk::error("model: the message is not a valid Model", LOOM_ERR_BAD_DATA);
  auto* m = fb::GetModel(bytes.data());
  model_summary s;
  s.kind = m->kind()->str();
  if (s.kind == "featurizer")
    throw sdk::error("model: this is a featurizer state (featurize.fit's output); connect the `model` output "
                     "of train",
                     LOOM_ERR_BAD_DATA);
  if (m->version())
    s.version = m->version()->str();
  if (m->target())
    s.target = m->target()->str();
  if (m->classes())
    for (auto* c : *m->classes())
      s.classes.push_back(c ? c->str() : "");
  if (m->hyperparameters())
    for (auto* p : *m->hyperparameters())
      s.hyperparameters.emplace_back(p->key()->str(), p->value() ? p->value()->str() : "");
  if (m->history())
    for (auto* h : *m->history())
      s.history.push_back({h->epoch(), h->name() ? h->name()->str() : "", h->value()});
  std::vector<std::string> seen = s.classes;
  std::sort(seen.begin(), seen.end());
  if (auto d = std::adjacent_find(seen.begin(), seen.end()); d != seen.end())
    throw sdk::error("model: class '" + *d + "' appears twice in the Model's classes", LOOM_ERR_BAD_DATA);
  return s;
}

flatbuffers::DetachedBuffer metrics_message(const std::vector<std::pair<std::string, double>>& values,
                                            const evaluation& ev) {
  flatbuffers::FlatBufferBuilder b(4096);
  std::vector<flatbuffers::Offset<fb::Metric>> ms;
  for (auto& [n, v] : values)
    ms.push_back(fb::CreateMetric(b, b.CreateString(n), v));
  flatbuffers::Offset<fb::ConfusionMatrix> cm;
  if (!ev.labels.empty())
    cm = fb::CreateConfusionMatrix(b, b.CreateVectorOfStrings(ev.labels), b.CreateVector(ev.confusion));
  std::vector<flatbuffers::Offset<fb::Curve>> cs;
  for (auto& c : ev.curves)
    cs.push_back(fb::CreateCurve(b, b.CreateString(c.name), b.CreateVector(c.x), b.CreateVector(c.y)));
  auto root = fb::CreateMetrics(b, b.CreateVector(ms), cm, b.CreateVector(cs));
  fb::FinishMetricsBuffer(b, root);
  return b.Release();
}

} // namespace

class evaluate_op final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "evaluate", "0.1.0",
      "Scores predictions against the truth: classification or regression metrics, one Metrics message, "
      "node metrics and a self-contained HTML report. The `predictions` input is a table with the true "
      "value in column `target` and the prediction in column `prediction` (predict's output, which keeps "
      "the target column); for classification also one score column `<probability_prefix><class>` per "
      "class (prob_a, prob_b, ...). The task comes from `task`, else from the Model (classes: "
      "classification, none: regression), else from the prediction column's type (string or bool: "
      "classification, number: regression). "
      "CLASSIFICATION: labels are compared as text (an i64 target 3 matches the prediction \"3\"). The "
      "classes are the Model's, in its order; a true or predicted label that is not one of them fails the "
      "node, naming the column and the label. Without a Model they are every label seen in the target, the "
      "prediction and the probability column names, sorted (numerically when all are numbers). Metrics: "
      "accuracy; per class precision_<class>, recall_<class>, f1_<class> and support_<class>; their "
      "macro (plain mean) and weighted (by support) averages precision_macro, recall_macro, f1_macro, "
      "precision_weighted, recall_weighted, f1_weighted, over the classes that occur in the target or the "
      "predictions (as scikit-learn's default), a 0/0 ratio counting as 0; for two classes also "
      "precision, recall and f1 of the `positive` class. With probability columns: roc_auc (area under the "
      "ROC curve, ties counted half; two classes: of the positive class's score; more: the one-vs-rest "
      "mean over the classes that have positive and negative rows, each class also as roc_auc_<class>), "
      "pr_auc (average precision, the sum over thresholds of (R_n - R_n-1) P_n, as scikit-learn's "
      "average_precision_score; one-vs-rest mean for more than two classes, also pr_auc_<class>) and "
      "log_loss (scores clipped to [eps, 1-eps], each row renormalized to sum 1, mean of -ln p(true "
      "class), as scikit-learn's log_loss). When the predictions have some probability columns, every class "
      "needs one (the node fails naming the missing column; with a Model, columns named after no class are "
      "ignored); with none at all the score metrics are left out with a warning. The Metrics message carries the confusion matrix (rows: truth, in class order) "
      "and the curves \"roc\" (x: false positive rate, y: true positive rate; collinear points dropped, "
      "starting at 0,0) and \"pr\" (x: recall, y: precision, decreasing recall, ending at 0,1) — "
      "\"roc_<class>\" and \"pr_<class>\" one-vs-rest for more than two classes. "
      "REGRESSION: target and prediction must be numeric; mse, rmse, mae and r2 (1 - SS_res / SS_tot; "
      "for a constant target 1 when exact, else 0). "
      "Every run also records rows, rows_evaluated and rows_rejected, and each value as a node metric. "
      "A row whose target or prediction is null, or (classification) whose score is null or not finite, "
      "or (regression) whose target or prediction is not finite, is rejected: counted, emitted on "
      "`rejects` with the reason and summed up in the report, so rows in = rows evaluated + rows rejected. "
      "MEMORY: the ROC and PR curves rank every score, so evaluate holds the target, prediction and score "
      "columns of every row until the input ends (about 8 bytes per number, 4 per string label, plus each "
      "distinct label once): rows x (classes + 2) x 8 bytes. It emits everything once both inputs have "
      "ended. REPORT (report: true): an HTML page with no scripts and no external resources (inline CSS, "
      "inline SVG) that opens offline: the metrics, a per-class table, the confusion matrix as a shaded "
      "table, the ROC and precision-recall curves, a predicted-against-true scatter plot (regression), the "
      "training curves from the Model's history and its hyperparameters, and the reject reasons; stored "
      "with the run as the artifact \"<node id>.report.html\" (text/html): `loom runs show RUN --artifact "
      "NODE.report.html -o report.html`. The `model` input (optional: leave it unconnected to evaluate predictions "
      "from elsewhere) gives the class order, the task and the training history.",
      "- id: score\n"
      "  op: evaluate\n"
      "  inputs: {predictions: predict.predictions, model: train.model}\n"
      "  with: {target: species}\n"
      "- id: churn_eval\n"
      "  op: evaluate\n"
      "  inputs: {predictions: scored}       # no model: classes from the data\n"
      "  with: {target: churned, positive: \"yes\", report: true}\n"};
    s.inputs = {{"predictions", LOOM_MSG_FRAME,
                 "scored rows: the target column, the prediction column and (classification) one "
                 "probability column per class"},
                {"model", LOOM_MSG_MODEL,
                 "the Model that made the predictions (at most one message): class order, task, training "
                 "history for the report",
                 true}};
    s.outputs = {{"metrics", LOOM_MSG_METRICS,
                  "one Metrics message: every value, the confusion matrix (classification) and the ROC and PR "
                  "curves"},
                 {"rejects", LOOM_MSG_FRAME,
                  "rows left out: row (1-based position in the input), reason, target and prediction as text"}};
    s.params = {
      {"target", LOOM_PARAM_STRING, true, nullptr, "the column with the true value (label or number)"},
      {"task", LOOM_PARAM_STRING, false, "\"auto\"",
       "classification, regression, or auto: from the Model (classes or not), else from the prediction "
       "column's type (string/bool: classification, number: regression)"},
      {"prediction", LOOM_PARAM_STRING, false, "\"prediction\"",
       "the column with the predicted label (classification) or value (regression)"},
      {"probability_prefix", LOOM_PARAM_STRING, false, "\"prob_\"",
       "score columns are named this prefix + the class label; every column starting with it (other than "
       "target and prediction) is one"},
      {"positive", LOOM_PARAM_STRING, false, nullptr,
       "binary classification: the positive class for precision, recall, f1, roc_auc and pr_auc (a string: "
       "quote numbers, positive: \"1\"); default: the last class (the Model's last, else the greatest)"},
      {"report", LOOM_PARAM_BOOL, false, "true",
       "store the HTML report as the run artifact \"<node id>.report.html\""},
    };
    return s;
  }

  explicit evaluate_op(sdk::context& ctx)
    : target_(ctx.param_string("target")), prediction_(ctx.param_string("prediction")),
      prefix_(ctx.param_string("probability_prefix")), task_(ctx.param_string("task")),
      report_(ctx.param_bool("report")) {
    if (target_.empty())
      throw sdk::error("target: name the column with the true values");
    if (prediction_.empty())
      throw sdk::error("prediction: name the column with the predictions");
    if (target_ == prediction_)
      throw sdk::error("target and prediction are both '" + target_ + "'; they must be different columns");
    if (prefix_.empty())
      throw sdk::error("probability_prefix: must not be empty");
    if (task_ != "auto" && task_ != "classification" && task_ != "regression")
      throw sdk::error("task: expected auto, classification or regression, got '" + task_ + "'");
    if (ctx.has_param("positive"))
      positive_ = ctx.param_string("positive");
  }

  void on_input(sdk::context&, uint32_t port, const sdk::message& msg) override {
    if (port == 1) {
      if (model_)
        throw sdk::error("model: received a second Model; evaluate takes at most one", LOOM_ERR_BAD_DATA);
      model_ = read_model(msg.bytes());
      return;
    }
    auto f = sdk::frame_view::of(msg);
    if (!truth_)
      bind(f);
    truth_->append(f, require(f, target_, "target"));
    pred_->append(f, require(f, prediction_, "prediction"));
    for (auto& p : probs_)
      p.append(f, require(f, p.name(), "probability_prefix"));
    rows_in_ += f.num_rows();
  }

  bool produce(sdk::context& ctx) override {
    if (!done_) {
      done_ = true;
      finish(ctx);
    }
    if (ctx.cancelled())
      throw sdk::error("cancelled", LOOM_ERR_CANCELLED);
    // the rejected rows, a frame per call
    if (next_reject_ < rejects_.size()) {
      sdk::frame_builder b;
      auto row = b.add_column("row", sdk::col_type::i64, false);
      auto reason = b.add_column("reason", sdk::col_type::string, false);
      auto target = b.add_column("target", sdk::col_type::string);
      auto prediction = b.add_column("prediction", sdk::col_type::string);
      size_t end = std::min(rejects_.size(), next_reject_ + reject_frame_rows);
      for (; next_reject_ < end; ++next_reject_) {
        auto& x = rejects_[next_reject_];
        b.append_i64(row, static_cast<int64_t>(x.row + 1));
        b.append_string(reason, reasons_[x.reason].first);
        for (auto [col, out] : {std::pair{&*truth_, target}, std::pair{&*pred_, prediction}})
          if (col->valid(x.row))
            b.append_string(out, col->text(x.row));
          else
            b.append_null(out);
        b.end_row();
      }
      ctx.emit(1, b.finish(reject_frames_++));
    }
    return next_reject_ >= rejects_.size();
  }

private:
  struct reject {
    size_t row;
    uint32_t reason;
  };

  /// On the first frame: the columns to gather.
  void bind(const sdk::frame_view& f) {
    size_t t = require(f, target_, "target"), p = require(f, prediction_, "prediction");
    truth_.emplace(target_, f.type(t));
    pred_.emplace(prediction_, f.type(p));
    for (size_t c = 0; c < f.num_columns(); ++c) {
      std::string name(f.name(c));
      if (name == target_ || name == prediction_ || name.size() <= prefix_.size() ||
          name.compare(0, prefix_.size(), prefix_) != 0)
        continue;
      if (f.type(c) == sdk::col_type::string || f.type(c) == sdk::col_type::boolean)
        throw sdk::error("probability column '" + name + "' is " + sdk::to_string(f.type(c)) +
                           "; scores must be numbers (columns named " + prefix_ +
                           "<class> are scores; change probability_prefix if this is another column)",
                         LOOM_ERR_BAD_DATA);
      probs_.emplace_back(name, f.type(c));
    }
  }

  static size_t require(const sdk::frame_view& f, const std::string& column, const char* param) {
    int i = f.index(column);
    if (i < 0)
      throw sdk::error(std::string(param) + ": no column '" + column + "' in the predictions (columns: " +
                         f.describe_columns() + ")",
                       LOOM_ERR_BAD_DATA);
    return static_cast<size_t>(i);
  }

  /// Whether row r has a target and a prediction; if not, the row is rejected.
  bool both_present(size_t r) {
    if (!truth_->valid(r)) {
      reject_row(r, "null target '" + target_ + "'");
      return false;
    }
    if (!pred_->valid(r)) {
      reject_row(r, "null prediction '" + prediction_ + "'");
      return false;
    }
    return true;
  }

  void reject_row(size_t row, const std::string& reason) {
    auto it = reason_index_.find(reason);
    if (it == reason_index_.end()) {
      it = reason_index_.emplace(reason, static_cast<uint32_t>(reasons_.size())).first;
      reasons_.emplace_back(reason, 0);
    }
    ++reasons_[it->second].second;
    rejects_.push_back({row, it->second});
  }

  std::string resolve_task() const {
    if (task_ != "auto")
      return task_;
    if (model_)
      return model_->classes.empty() ? "regression" : "classification";
    if (!pred_)
      return "classification";
    return pred_->numeric() ? "regression" : "classification";
  }

  void finish(sdk::context& ctx) {
    const std::string task = resolve_task();
    if (positive_ && task == "regression")
      ctx.warn("positive: ignored for regression");
    evaluation ev;
    std::vector<std::pair<double, double>> scatter;
    size_t evaluated = 0;
    if (!truth_) {
      ev.task = task;
      ev.notes.push_back("the predictions input had no frames");
    } else if (task == "regression") {
      std::vector<double> t, p;
      regression_rows(t, p);
      evaluated = t.size();
      ev = regress(t, p);
      size_t stride = std::max<size_t>(1, (t.size() + scatter_points - 1) / scatter_points);
      for (size_t i = 0; i < t.size(); i += stride)
        scatter.emplace_back(t[i], p[i]);
    } else {
      auto rows = classification_rows_();
      evaluated = rows.truth.size();
      ev = classify(rows);
    }
    if (evaluated == 0) {
      ev.values.clear();
      ev.headline = 0;
      ev.curves.clear();
      ev.notes.push_back("no rows to evaluate: every metric is left out");
    }

    std::vector<std::pair<std::string, double>> values = {
      {"rows", static_cast<double>(rows_in_)},
      {"rows_evaluated", static_cast<double>(evaluated)},
      {"rows_rejected", static_cast<double>(rejects_.size())}};
    values.insert(values.end(), ev.values.begin(), ev.values.end());
    for (auto& [n, v] : values)
      ctx.metric(n, v);
    if (!rejects_.empty())
      ctx.add_rejected(rejects_.size());
    for (auto& n : ev.notes)
      ctx.warn(n);
    for (auto& [reason, n] : reasons_)
      ctx.warn("rejected " + std::to_string(n) + " rows: " + reason);
    ctx.emit(0, metrics_message(values, ev));

    std::string summary = "evaluated " + std::to_string(evaluated) + " of " + std::to_string(rows_in_) + " rows (" +
                          task + ")";
    for (const char* key : {"accuracy", "f1_macro", "roc_auc", "rmse", "r2"})
      if (auto v = ev.value(key))
        summary += ", " + std::string(key) + " " + std::to_string(*v);
    ctx.info(summary);

    if (report_) {
      report_input in;
      in.node_id = ctx.node_id();
      in.run_id = ctx.run_id();
      in.target = target_;
      in.prediction = prediction_;
      in.rows_in = rows_in_;
      in.rows_evaluated = evaluated;
      in.rows_rejected = rejects_.size();
      in.reject_reasons = reasons_;
      in.ev = &ev;
      in.model = model_ ? &*model_ : nullptr;
      in.scatter = std::move(scatter);
      ctx.artifact(in.node_id + ".report.html", "text/html", render_report(in));
    }
  }

  void regression_rows(std::vector<double>& t, std::vector<double>& p) {
    for (auto* c : {&*truth_, &*pred_})
      if (!c->numeric())
        throw sdk::error(std::string(c == &*truth_ ? "target" : "prediction") + " column '" + c->name() + "' is " +
                           sdk::to_string(c->type()) + "; regression needs numbers" +
                           (task_ == "auto" && model_ ? " (the task is regression because the Model has no classes)"
                                                      : ""),
                         LOOM_ERR_BAD_DATA);
    const size_t n = truth_->size();
    t.reserve(n);
    p.reserve(n);
    for (size_t r = 0; r < n; ++r) {
      if (!both_present(r))
        continue;
      double tv = truth_->number(r), pv = pred_->number(r);
      if (!std::isfinite(tv)) {
        reject_row(r, "target '" + target_ + "' is not finite");
        continue;
      }
      if (!std::isfinite(pv)) {
        reject_row(r, "prediction '" + prediction_ + "' is not finite");
        continue;
      }
      t.push_back(tv);
      p.push_back(pv);
    }
  }

  classification_rows classification_rows_() {
    classification_rows out;
    const size_t n = truth_->size();
    // the rows kept: nothing null, every score finite
    std::vector<size_t> kept;
    kept.reserve(n);
    for (size_t r = 0; r < n; ++r) {
      if (!both_present(r))
        continue;
      bool ok = true;
      for (auto& p : probs_) {
        if (!p.valid(r)) {
          reject_row(r, "null score '" + p.name() + "'");
          ok = false;
          break;
        }
        if (!std::isfinite(p.number(r))) {
          reject_row(r, "score '" + p.name() + "' is not finite");
          ok = false;
          break;
        }
      }
      if (ok)
        kept.push_back(r);
    }

    // labels as text, each distinct text once
    std::vector<std::string> texts;
    std::unordered_map<std::string, uint32_t> text_index;
    auto label_ids = [&](const column_buffer& col) {
      std::vector<uint32_t> ids(kept.size());
      std::vector<int64_t> dict_map(col.type() == sdk::col_type::string ? col.dictionary().size() : 0, -1);
      for (size_t i = 0; i < kept.size(); ++i) {
        size_t r = kept[i];
        if (col.type() == sdk::col_type::string && dict_map[col.id(r)] >= 0) {
          ids[i] = static_cast<uint32_t>(dict_map[col.id(r)]);
          continue;
        }
        auto [it, fresh] = text_index.emplace(col.text(r), static_cast<uint32_t>(texts.size()));
        if (fresh)
          texts.push_back(it->first);
        ids[i] = it->second;
        if (col.type() == sdk::col_type::string)
          dict_map[col.id(r)] = it->second;
      }
      return ids;
    };
    auto truth_ids = label_ids(*truth_);
    auto pred_ids = label_ids(*pred_);

    // the classes, and each text's class
    std::vector<std::string> prob_labels;
    for (auto& p : probs_)
      prob_labels.push_back(p.name().substr(prefix_.size()));
    if (model_ && !model_->classes.empty()) {
      out.classes = model_->classes;
    } else {
      std::vector<std::string> all = texts;
      all.insert(all.end(), prob_labels.begin(), prob_labels.end());
      std::sort(all.begin(), all.end());
      all.erase(std::unique(all.begin(), all.end()), all.end());
      sort_labels(all);
      out.classes = std::move(all);
    }
    std::unordered_map<std::string, uint32_t> class_index;
    for (size_t c = 0; c < out.classes.size(); ++c)
      class_index.emplace(out.classes[c], static_cast<uint32_t>(c));
    std::vector<int64_t> text_class(texts.size(), -1);
    for (size_t i = 0; i < texts.size(); ++i)
      if (auto it = class_index.find(texts[i]); it != class_index.end())
        text_class[i] = it->second;
    auto to_classes = [&](const std::vector<uint32_t>& ids, const char* what, const std::string& column) {
      std::vector<uint32_t> cls(ids.size());
      for (size_t i = 0; i < ids.size(); ++i) {
        if (text_class[ids[i]] < 0)
          throw sdk::error(std::string(what) + " column '" + column + "': label '" + texts[ids[i]] + "' in row " +
                             std::to_string(kept[i] + 1) + " is not one of the model's classes (" +
                             join(out.classes) + ")",
                           LOOM_ERR_BAD_DATA);
        cls[i] = static_cast<uint32_t>(text_class[ids[i]]);
      }
      return cls;
    };
    out.truth = to_classes(truth_ids, "target", target_);
    out.pred = to_classes(pred_ids, "prediction", prediction_);

    // the positive class
    const size_t k = out.classes.size();
    if (positive_) {
      auto it = class_index.find(*positive_);
      if (it == class_index.end())
        throw sdk::error("positive: '" + *positive_ + "' is not one of the classes (" + join(out.classes) + ")");
      if (k != 2)
        throw sdk::error("positive: only for two classes, but there are " + std::to_string(k) + " (" +
                         join(out.classes) + ")");
      out.positive = static_cast<int>(it->second);
    } else if (k == 2) {
      out.positive = 1;
    }

    // one score column per class, in class order
    if (!probs_.empty()) {
      std::vector<const column_buffer*> cols(k, nullptr);
      for (size_t i = 0; i < probs_.size(); ++i)
        if (auto it = class_index.find(prob_labels[i]); it != class_index.end())
          cols[it->second] = &probs_[i];
      for (size_t c = 0; c < k; ++c)
        if (cols[c] == nullptr) {
          std::vector<std::string> names;
          for (auto& p : probs_)
            names.push_back(p.name());
          throw sdk::error("no probability column '" + prefix_ + out.classes[c] + "' for class '" + out.classes[c] +
                             "' (probability columns: " + join(names) + ")",
                           LOOM_ERR_BAD_DATA);
        }
      out.scores.resize(kept.size() * k);
      for (size_t i = 0; i < kept.size(); ++i)
        for (size_t c = 0; c < k; ++c)
          out.scores[i * k + c] = cols[c]->number(kept[i]);
    }
    return out;
  }

  // parameters
  std::string target_, prediction_, prefix_, task_;
  std::optional<std::string> positive_;
  bool report_;
  // inputs
  std::optional<model_summary> model_;
  std::optional<column_buffer> truth_, pred_;
  std::vector<column_buffer> probs_;
  uint64_t rows_in_ = 0;
  // results
  bool done_ = false;
  std::vector<reject> rejects_;
  std::vector<std::pair<std::string, uint64_t>> reasons_;
  std::unordered_map<std::string, uint32_t> reason_index_;
  size_t next_reject_ = 0;
  uint64_t reject_frames_ = 0;
};

} // namespace loom::ops

LOOM_PLUGIN("loom-evaluate", "0.1.0", loom::ops::evaluate_op)
