// The metrics of the loom-evaluate plugin: classification (confusion matrix, accuracy,
// precision / recall / F1 per class, macro and weighted, ROC AUC and average precision,
// binary and one-vs-rest, log loss, ROC and PR curves) and regression (MSE, RMSE, MAE,
// R²). Plain data in, plain data out: no SDK, no FlatBuffers. Each definition follows
// scikit-learn 1.2 (named at each function), which the tests check it against.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace loom::ops::evaluate {

/// A curve as scikit-learn returns it (ROC: x = false positive rate, y = true positive
/// rate; PR: x = recall, y = precision).
struct curve {
  std::string name;
  std::vector<double> x, y;
};

/// The metrics of one class (one-vs-rest).
struct class_metrics {
  std::string label;
  double precision = 0, recall = 0, f1 = 0;
  uint64_t support = 0;              ///< rows whose truth is this class
  uint64_t predicted = 0;            ///< rows predicted as this class
  std::optional<double> roc_auc;     ///< absent without scores, or with no positive or no negative row
  std::optional<double> pr_auc;      ///< absent without scores, or with no positive row
};

/// What an evaluation found: scalar values in a fixed order (the names recorded as
/// node metrics and in the Metrics message), the confusion matrix, per-class
/// metrics, curves, and notes on metrics left out because they are undefined.
struct evaluation {
  std::string task; ///< "classification" or "regression"
  std::vector<std::pair<std::string, double>> values;
  size_t headline = 0;              ///< values[0, headline) are the overall metrics, the rest per class
  std::vector<std::string> labels;  ///< confusion matrix labels (classification)
  std::vector<int64_t> confusion;   ///< labels² counts, row-major, row = truth
  std::vector<class_metrics> classes;
  std::vector<curve> curves;
  std::vector<std::string> notes;
  int positive = -1; ///< binary classification: index of the positive class

  void add(std::string name, double v) { values.emplace_back(std::move(name), v); }
  /// The value called `name`, if there is one.
  std::optional<double> value(const std::string& name) const;
};

/// Rows of a classification, every label already an index into `classes`.
struct classification_rows {
  std::vector<std::string> classes;
  std::vector<uint32_t> truth, pred;
  /// Row-major rows x classes scores (the prob_<class> columns), or empty when the
  /// predictions carry no probability columns; finite values only.
  std::vector<double> scores;
  /// Binary tasks: the index of the positive class (ROC, PR, precision, recall, F1).
  int positive = -1;
};

/// Every classification metric of `rows` (see the evaluate operator's description).
evaluation classify(const classification_rows& rows);

/// MSE, RMSE, MAE and R² of finite `truth` / `pred` pairs, as scikit-learn's
/// mean_squared_error, mean_absolute_error and r2_score (R² = 1 when the truth is
/// constant and the predictions exact, 0 when the truth is constant and they are not).
evaluation regress(const std::vector<double>& truth, const std::vector<double>& pred);

// ---- the pieces, for the tests and the report ----------------------------------------

/// One binary ranking: true/false positive counts at each distinct score, from the
/// highest score down (scikit-learn's _binary_clf_curve, unweighted).
struct ranking {
  std::vector<double> fps, tps;
  double positives = 0, negatives = 0;
};

/// Ranks `scores` (one per row, `stride` apart starting at `offset`) against
/// is_positive(row).
ranking rank(const std::vector<double>& scores, size_t stride, size_t offset,
             const std::vector<uint8_t>& is_positive);

/// Area under the ROC curve of a ranking (trapezoids; ties count half), as
/// roc_auc_score; nullopt without positives or negatives.
std::optional<double> roc_auc(const ranking& r);

/// Average precision, sum over thresholds of (R_n - R_{n-1}) P_n, as
/// average_precision_score; nullopt without positives.
std::optional<double> average_precision(const ranking& r);

/// roc_curve(drop_intermediate=True): collinear points dropped, (0, 0) prepended.
curve roc_curve(const ranking& r, std::string name);

/// precision_recall_curve: decreasing recall, ending at (recall 0, precision 1).
curve pr_curve(const ranking& r, std::string name);

} // namespace loom::ops::evaluate
