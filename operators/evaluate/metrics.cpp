#include "metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace loom::ops::evaluate {

std::optional<double> evaluation::value(const std::string& name) const {
  for (auto& [n, v] : values)
    if (n == name)
      return v;
  return std::nullopt;
}

// ---- rankings -----------------------------------------------------------------------

ranking rank(const std::vector<double>& scores, size_t stride, size_t offset,
             const std::vector<uint8_t>& is_positive) {
  const size_t n = is_positive.size();
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  auto score = [&](uint32_t row) { return scores[row * stride + offset]; };
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return score(a) > score(b); });
  ranking r;
  double tp = 0, fp = 0;
  for (size_t i = 0; i < n; ++i) {
    if (is_positive[order[i]])
      tp += 1;
    else
      fp += 1;
    // one point per distinct score: the last row of each run of ties
    if (i + 1 == n || score(order[i]) != score(order[i + 1])) {
      r.tps.push_back(tp);
      r.fps.push_back(fp);
    }
  }
  r.positives = tp;
  r.negatives = fp;
  return r;
}

std::optional<double> roc_auc(const ranking& r) {
  if (r.positives == 0 || r.negatives == 0)
    return std::nullopt;
  // trapezoids over the integer counts, normalized once: exact for up to 2^53 rows
  double area = 0, fp0 = 0, tp0 = 0;
  for (size_t i = 0; i < r.fps.size(); ++i) {
    area += (r.fps[i] - fp0) * (r.tps[i] + tp0);
    fp0 = r.fps[i];
    tp0 = r.tps[i];
  }
  return area / 2 / (r.positives * r.negatives);
}

std::optional<double> average_precision(const ranking& r) {
  if (r.positives == 0)
    return std::nullopt;
  double ap = 0, recall0 = 0;
  for (size_t i = 0; i < r.tps.size(); ++i) {
    double recall = r.tps[i] / r.positives;
    ap += (recall - recall0) * (r.tps[i] / (r.tps[i] + r.fps[i]));
    recall0 = recall;
  }
  return ap;
}

curve roc_curve(const ranking& r, std::string name) {
  curve c{std::move(name), {0.0}, {0.0}};
  const size_t m = r.fps.size();
  for (size_t i = 0; i < m; ++i) {
    // a point between two others on one straight line adds nothing (drop_intermediate)
    if (m > 2 && i > 0 && i + 1 < m && r.fps[i - 1] - 2 * r.fps[i] + r.fps[i + 1] == 0 &&
        r.tps[i - 1] - 2 * r.tps[i] + r.tps[i + 1] == 0)
      continue;
    c.x.push_back(r.fps[i] / r.negatives);
    c.y.push_back(r.tps[i] / r.positives);
  }
  return c;
}

curve pr_curve(const ranking& r, std::string name) {
  curve c{std::move(name), {}, {}};
  for (size_t i = r.tps.size(); i-- > 0;) {
    c.x.push_back(r.tps[i] / r.positives);
    c.y.push_back(r.tps[i] / (r.tps[i] + r.fps[i]));
  }
  c.x.push_back(0.0);
  c.y.push_back(1.0);
  return c;
}

// ---- classification ------------------------------------------------------------------

namespace {

double ratio(double num, double den) { return den > 0 ? num / den : 0.0; }

/// log_loss as scikit-learn 1.2: scores clipped to [eps, 1 - eps] (eps of double),
/// each row renormalized to sum 1, then the mean of -log(score of the true class).
double log_loss(const classification_rows& rows) {
  constexpr double eps = std::numeric_limits<double>::epsilon();
  const size_t k = rows.classes.size(), n = rows.truth.size();
  double sum = 0;
  for (size_t r = 0; r < n; ++r) {
    const double* s = &rows.scores[r * k];
    double total = 0;
    for (size_t c = 0; c < k; ++c)
      total += std::clamp(s[c], eps, 1 - eps);
    sum -= std::log(std::clamp(s[rows.truth[r]], eps, 1 - eps) / total);
  }
  return sum / static_cast<double>(n);
}

} // namespace

evaluation classify(const classification_rows& rows) {
  evaluation ev;
  ev.task = "classification";
  ev.labels = rows.classes;
  ev.positive = rows.positive;
  const size_t k = rows.classes.size(), n = rows.truth.size();
  ev.confusion.assign(k * k, 0);
  for (size_t r = 0; r < n; ++r)
    ++ev.confusion[rows.truth[r] * k + rows.pred[r]];

  int64_t correct = 0;
  for (size_t c = 0; c < k; ++c)
    correct += ev.confusion[c * k + c];
  ev.add("accuracy", ratio(static_cast<double>(correct), static_cast<double>(n)));

  // one-vs-rest counts; precision, recall and F1 are 0 where undefined (0 / 0)
  for (size_t c = 0; c < k; ++c) {
    class_metrics m;
    m.label = rows.classes[c];
    double tp = static_cast<double>(ev.confusion[c * k + c]), support = 0, predicted = 0;
    for (size_t o = 0; o < k; ++o) {
      support += static_cast<double>(ev.confusion[c * k + o]);
      predicted += static_cast<double>(ev.confusion[o * k + c]);
    }
    m.support = static_cast<uint64_t>(support);
    m.predicted = static_cast<uint64_t>(predicted);
    m.precision = ratio(tp, predicted);
    m.recall = ratio(tp, support);
    m.f1 = ratio(2 * tp, support + predicted);
    ev.classes.push_back(std::move(m));
  }

  if (k == 2 && rows.positive >= 0) {
    auto& p = ev.classes[static_cast<size_t>(rows.positive)];
    ev.add("precision", p.precision);
    ev.add("recall", p.recall);
    ev.add("f1", p.f1);
  }
  // averages over the classes that occur in the truth or the predictions, as
  // scikit-learn's default labels (unique_labels(y_true, y_pred))
  double present = 0;
  double macro[3] = {0, 0, 0}, weighted[3] = {0, 0, 0};
  for (auto& m : ev.classes) {
    if (m.support == 0 && m.predicted == 0)
      continue;
    present += 1;
    double w = static_cast<double>(m.support);
    double v[3] = {m.precision, m.recall, m.f1};
    for (int i = 0; i < 3; ++i) {
      macro[i] += v[i];
      weighted[i] += v[i] * w;
    }
  }
  const char* names[3] = {"precision", "recall", "f1"};
  for (int i = 0; i < 3; ++i)
    ev.add(std::string(names[i]) + "_macro", ratio(macro[i], present));
  for (int i = 0; i < 3; ++i)
    ev.add(std::string(names[i]) + "_weighted", ratio(weighted[i], static_cast<double>(n)));

  if (!rows.scores.empty() && k >= 2) {
    // one-vs-rest ranking of each class by its own score column
    std::vector<uint8_t> is_positive(n);
    double auc_sum = 0, auc_count = 0, ap_sum = 0, ap_count = 0;
    for (size_t c = 0; c < k; ++c) {
      for (size_t r = 0; r < n; ++r)
        is_positive[r] = rows.truth[r] == c ? 1 : 0;
      auto rk = rank(rows.scores, k, c, is_positive);
      auto& m = ev.classes[c];
      m.roc_auc = evaluate::roc_auc(rk);
      m.pr_auc = average_precision(rk);
      const bool binary = k == 2;
      if (binary && static_cast<int>(c) != rows.positive)
        continue;
      if (m.roc_auc) {
        auc_sum += *m.roc_auc;
        auc_count += 1;
      }
      if (m.pr_auc) {
        ap_sum += *m.pr_auc;
        ap_count += 1;
      }
      std::string suffix = binary ? "" : "_" + m.label;
      if (rk.positives > 0 && rk.negatives > 0)
        ev.curves.push_back(roc_curve(rk, "roc" + suffix));
      if (rk.positives > 0)
        ev.curves.push_back(pr_curve(rk, "pr" + suffix));
    }
    if (k == 2 && rows.positive < 0)
      ev.notes.push_back("roc_auc and pr_auc need a positive class");
    if (auc_count > 0)
      ev.add("roc_auc", auc_sum / auc_count);
    else
      ev.notes.push_back("roc_auc is undefined: no class has both positive and negative rows");
    if (ap_count > 0)
      ev.add("pr_auc", ap_sum / ap_count);
    else
      ev.notes.push_back("pr_auc is undefined: no class has a positive row");
    if (k > 2 && auc_count < static_cast<double>(k))
      ev.notes.push_back("roc_auc is the mean over the " + std::to_string(static_cast<int>(auc_count)) + " of " +
                         std::to_string(k) + " classes that have both positive and negative rows");
    if (n > 0)
      ev.add("log_loss", log_loss(rows));
  } else if (!rows.scores.empty()) {
    ev.notes.push_back("roc_auc, pr_auc and log_loss are undefined with fewer than two classes");
  } else {
    ev.notes.push_back("no probability columns: roc_auc, pr_auc and log_loss are not computed");
  }

  ev.headline = ev.values.size();
  for (auto& m : ev.classes) {
    ev.add("precision_" + m.label, m.precision);
    ev.add("recall_" + m.label, m.recall);
    ev.add("f1_" + m.label, m.f1);
    ev.add("support_" + m.label, static_cast<double>(m.support));
    if (k > 2 && m.roc_auc)
      ev.add("roc_auc_" + m.label, *m.roc_auc);
    if (k > 2 && m.pr_auc)
      ev.add("pr_auc_" + m.label, *m.pr_auc);
  }
  return ev;
}

// ---- regression ------------------------------------------------------------------------

evaluation regress(const std::vector<double>& truth, const std::vector<double>& pred) {
  evaluation ev;
  ev.task = "regression";
  const size_t n = truth.size();
  if (n == 0)
    return ev;
  double sq = 0, abs = 0, mean = 0;
  for (size_t i = 0; i < n; ++i) {
    double e = truth[i] - pred[i];
    sq += e * e;
    abs += std::fabs(e);
    mean += truth[i];
  }
  mean /= static_cast<double>(n);
  double total = 0;
  for (double t : truth)
    total += (t - mean) * (t - mean);
  const double mse = sq / static_cast<double>(n);
  ev.add("mse", mse);
  ev.add("rmse", std::sqrt(mse));
  ev.add("mae", abs / static_cast<double>(n));
  double r2 = sq == 0 ? 1.0 : total == 0 ? 0.0 : 1.0 - sq / total;
  ev.add("r2", r2);
  ev.headline = ev.values.size();
  if (total == 0)
    ev.notes.push_back("r2: the target is constant, so r2 is 1 for exact predictions and 0 otherwise");
  return ev;
}

} // namespace loom::ops::evaluate
