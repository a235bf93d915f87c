#include "report.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>

namespace loom::ops::evaluate {

namespace {

// tab10: distinguishable, and readable on white
constexpr const char* palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr size_t max_points = 2000; ///< per series in a chart; longer ones are thinned

std::string exact(double v);

std::string fixed(double v, int decimals) {
  if (!std::isfinite(v))
    return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
  if (std::fabs(v) >= 1e15)
    return exact(v); // fixed notation would not fit
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
  return std::string(buf, r.ptr);
}

/// Shortest text that reads back as `v` (shown as a tooltip next to rounded values).
std::string exact(double v) {
  if (!std::isfinite(v))
    return fixed(v, 0);
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string general(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 6);
  return std::string(buf, r.ptr);
}

/// A table cell with a metric: four decimals shown, the exact value as its title.
std::string value_cell(double v) {
  return "<td class=\"num\" title=\"" + exact(v) + "\">" + fixed(v, 4) + "</td>";
}

/// 1, 2 or 5 times a power of ten, giving about `target` intervals over `range`.
double nice_step(double range, int target) {
  double raw = range / target;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

struct axis {
  double lo = 0, hi = 1, step = 0.2;
  int ticks = 5; ///< intervals between lo and hi
};

axis nice_axis(double lo, double hi) {
  if (!(hi > lo)) {
    double pad = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  axis a;
  a.lo = lo;
  a.hi = hi;
  if (!std::isfinite(hi - lo)) { // values near the limits of double: no ticks
    a.ticks = 0;
    return a;
  }
  a.step = nice_step(hi - lo, 5);
  a.lo = std::floor(lo / a.step) * a.step;
  a.hi = std::ceil(hi / a.step) * a.step;
  a.ticks = static_cast<int>(std::clamp(std::round((a.hi - a.lo) / a.step), 0.0, 50.0));
  return a;
}

} // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string svg(const chart& c) {
  constexpr double W = 440, H = 300, ml = 58, mr = 16, mt = 30, mb = 46;
  axis ax, ay;
  if (!c.unit_square) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (auto& s : c.lines)
      for (size_t i = 0; i < s.x.size(); ++i)
        if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
          x0 = std::min(x0, s.x[i]);
          x1 = std::max(x1, s.x[i]);
          y0 = std::min(y0, s.y[i]);
          y1 = std::max(y1, s.y[i]);
        }
    if (!std::isfinite(x0))
      x0 = y0 = 0, x1 = y1 = 1;
    if (c.diagonal) // one scale for both axes, so y = x is the diagonal
      x0 = y0 = std::min(x0, y0), x1 = y1 = std::max(x1, y1);
    ax = nice_axis(x0, x1);
    ay = nice_axis(y0, y1);
    if (c.integer_x && ax.step < 1 && ax.ticks > 0) {
      ax.step = 1;
      ax.ticks = static_cast<int>(std::round(ax.hi - ax.lo));
    }
  }
  auto px = [&](double x) { return ml + (x - ax.lo) / (ax.hi - ax.lo) * (W - ml - mr); };
  auto py = [&](double y) { return H - mb - (y - ay.lo) / (ay.hi - ay.lo) * (H - mt - mb); };
  auto p1 = [](double v) { return fixed(v, 1); };

  // styled with presentation attributes, not the page's CSS: an SVG copied out of the
  // page looks the same
  std::string out = "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 440 300\" width=\"440\" "
                    "height=\"300\" role=\"img\" aria-label=\"" + html_escape(c.title) +
                    "\" font-family=\"sans-serif\" font-size=\"11\" fill=\"#1f2328\">";
  out += "<rect width=\"440\" height=\"300\" fill=\"#fff\"/>";
  out += "<text x=\"220\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"600\">" +
         html_escape(c.title) + "</text>";
  // grid and ticks
  for (int i = 0; i <= ax.ticks; ++i) {
    double v = std::round((ax.lo + i * ax.step) / ax.step) * ax.step;
    out += "<line stroke=\"#eaeef2\" x1=\"" + p1(px(v)) + "\" y1=\"" + p1(py(ay.lo)) + "\" x2=\"" + p1(px(v)) +
           "\" y2=\"" + p1(py(ay.hi)) + "\"/>";
    out += "<text x=\"" + p1(px(v)) + "\" y=\"" + p1(H - mb + 15) + "\" text-anchor=\"middle\">" +
           general(v) + "</text>";
  }
  for (int i = 0; i <= ay.ticks; ++i) {
    double v = std::round((ay.lo + i * ay.step) / ay.step) * ay.step;
    out += "<line stroke=\"#eaeef2\" x1=\"" + p1(px(ax.lo)) + "\" y1=\"" + p1(py(v)) + "\" x2=\"" + p1(px(ax.hi)) +
           "\" y2=\"" + p1(py(v)) + "\"/>";
    out += "<text x=\"" + p1(ml - 6) + "\" y=\"" + p1(py(v) + 4) + "\" text-anchor=\"end\">" +
           general(v) + "</text>";
  }
  out += "<rect fill=\"none\" stroke=\"#8c959f\" x=\"" + p1(ml) + "\" y=\"" + p1(mt) + "\" width=\"" + p1(W - ml - mr) +
         "\" height=\"" + p1(H - mt - mb) + "\"/>";
  out += "<text font-size=\"12\" x=\"" + p1(ml + (W - ml - mr) / 2) + "\" y=\"" + p1(H - 8) +
         "\" text-anchor=\"middle\">" + html_escape(c.x_label) + "</text>";
  out += "<text font-size=\"12\" transform=\"translate(14 " + p1(mt + (H - mt - mb) / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">" + html_escape(c.y_label) + "</text>";
  if (c.diagonal) {
    double lo = std::max(ax.lo, ay.lo), hi = std::min(ax.hi, ay.hi);
    out += "<line stroke=\"#8c959f\" stroke-dasharray=\"4 4\" x1=\"" + p1(px(lo)) + "\" y1=\"" + p1(py(lo)) + "\" x2=\"" + p1(px(hi)) +
           "\" y2=\"" + p1(py(hi)) + "\"/>";
  }
  for (size_t s = 0; s < c.lines.size(); ++s) {
    auto& line = c.lines[s];
    const char* color = palette[s % std::size(palette)];
    const size_t n = std::min(line.x.size(), line.y.size());
    const size_t stride = n > max_points ? (n + max_points - 1) / max_points : 1;
    std::string pts;
    for (size_t i = 0; i < n; i += stride) {
      size_t j = (i + stride >= n) ? n - 1 : i; // always end on the last point
      if (!std::isfinite(line.x[j]) || !std::isfinite(line.y[j]))
        continue;
      if (c.dots)
        out += "<circle cx=\"" + p1(px(line.x[j])) + "\" cy=\"" + p1(py(line.y[j])) + "\" r=\"2\" fill=\"" +
               color + "\" fill-opacity=\"0.5\"/>";
      else
        pts += p1(px(line.x[j])) + "," + p1(py(line.y[j])) + " ";
    }
    if (!c.dots && !pts.empty())
      out += "<polyline fill=\"none\" stroke=\"" + std::string(color) + "\" stroke-width=\"2\" points=\"" + pts +
             "\"><title>" + html_escape(line.name) + "</title></polyline>";
  }
  out += "</svg>";
  if (c.lines.size() > 1 || (!c.lines.empty() && !c.lines[0].name.empty())) {
    out += "<figcaption>";
    for (size_t s = 0; s < c.lines.size(); ++s)
      out += "<span class=\"key\"><span class=\"swatch\" style=\"background:" +
             std::string(palette[s % std::size(palette)]) + "\"></span>" + html_escape(c.lines[s].name) +
             "</span> ";
    out += "</figcaption>";
  }
  out += "</figure>\n";
  return out;
}

namespace {

constexpr const char* style = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1000px;color:#1f2328;padding:0 16px}
h1{font-size:1.5em;margin-bottom:4px}h2{font-size:1.15em;margin-top:28px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.meta{color:#57606a;margin-top:0}code{background:#f6f8fa;padding:1px 4px;border-radius:4px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #d0d7de;padding:4px 10px;text-align:left}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
table.cm td{text-align:center;min-width:44px}table.cm th.corner{font-weight:normal;color:#57606a;font-size:.85em}
.charts{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0}
figcaption{font-size:.85em;max-width:440px}.key{white-space:nowrap;margin-right:10px}
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
ul.notes{color:#57606a}
)";

std::string row(std::initializer_list<std::string> cells) {
  std::string out = "<tr>";
  for (auto& c : cells)
    out += c;
  return out + "</tr>\n";
}

std::string td(const std::string& text) { return "<td>" + html_escape(text) + "</td>"; }
std::string td_count(uint64_t n) { return "<td class=\"num\">" + std::to_string(n) + "</td>"; }

void confusion_table(std::string& out, const evaluation& ev) {
  const size_t k = ev.labels.size();
  out += "<h2>Confusion matrix</h2>\n<p class=\"meta\">Rows: true class; columns: predicted class. "
         "Shading: the share of the row's rows.</p>\n<table class=\"cm\"><tr><th class=\"corner\">true \\ "
         "predicted</th>";
  for (auto& l : ev.labels)
    out += "<th>" + html_escape(l) + "</th>";
  out += "<th>total</th></tr>\n";
  for (size_t t = 0; t < k; ++t) {
    int64_t total = 0;
    for (size_t p = 0; p < k; ++p)
      total += ev.confusion[t * k + p];
    out += "<tr><th>" + html_escape(ev.labels[t]) + "</th>";
    for (size_t p = 0; p < k; ++p) {
      int64_t n = ev.confusion[t * k + p];
      double share = total > 0 ? static_cast<double>(n) / static_cast<double>(total) : 0.0;
      // diagonal in blue, errors in red
      const char* rgb = t == p ? "31,119,180" : "214,39,40";
      out += "<td style=\"background:rgba(" + std::string(rgb) + "," + fixed(share * 0.85, 3) + ")" +
             (share > 0.5 ? ";color:#fff" : "") + "\" title=\"" + fixed(share * 100, 1) + "% of the row\">" +
             std::to_string(n) + "</td>";
    }
    out += "<td class=\"num\">" + std::to_string(total) + "</td></tr>\n";
  }
  out += "</table>\n";
}

void per_class_table(std::string& out, const evaluation& ev) {
  bool scores = false;
  for (auto& m : ev.classes)
    scores = scores || m.roc_auc || m.pr_auc;
  out += "<h2>Per class</h2>\n<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th>"
         "<th>support</th><th>predicted</th>";
  if (scores)
    out += "<th>ROC AUC</th><th>PR AUC</th>";
  out += "</tr>\n";
  for (size_t c = 0; c < ev.classes.size(); ++c) {
    auto& m = ev.classes[c];
    std::string name = html_escape(m.label);
    if (static_cast<int>(c) == ev.positive)
      name += " <small>(positive)</small>";
    out += "<tr><td>" + name + "</td>" + value_cell(m.precision) + value_cell(m.recall) + value_cell(m.f1) +
           td_count(m.support) + td_count(m.predicted);
    if (scores)
      out += (m.roc_auc ? value_cell(*m.roc_auc) : td("–")) + (m.pr_auc ? value_cell(*m.pr_auc) : td("–"));
    out += "</tr>\n";
  }
  out += "</table>\n";
}

void score_charts(std::string& out, const evaluation& ev) {
  chart roc{"ROC curve", "false positive rate", "true positive rate", {}, true, true, false};
  chart pr{"Precision-recall curve", "recall", "precision", {}, true, false, false};
  for (auto& c : ev.curves) {
    bool is_roc = c.name.rfind("roc", 0) == 0;
    std::string label = c.name.size() > (is_roc ? 4u : 3u) ? c.name.substr(is_roc ? 4 : 3) : "";
    auto& m = ev.classes;
    // binary curves are of the positive class; name them so
    if (label.empty() && ev.positive >= 0)
      label = m[static_cast<size_t>(ev.positive)].label;
    (is_roc ? roc : pr).lines.push_back({label, c.x, c.y});
  }
  if (roc.lines.empty() && pr.lines.empty())
    return;
  out += "<h2>ROC and precision-recall curves</h2>\n<div class=\"charts\">\n";
  if (!roc.lines.empty())
    out += svg(roc);
  if (!pr.lines.empty())
    out += svg(pr);
  out += "</div>\n";
}

void training_charts(std::string& out, const model_summary& m) {
  if (m.history.empty())
    return;
  // one chart per quantity: train_loss and val_loss share "loss"
  std::map<std::string, std::map<std::string, chart::series>> groups;
  std::vector<std::string> order;
  for (auto& p : m.history) {
    std::string stem = p.name;
    for (const char* prefix : {"train_", "val_"})
      if (stem.rfind(prefix, 0) == 0 && stem.size() > std::string_view(prefix).size())
        stem = stem.substr(std::string_view(prefix).size());
    if (!groups.count(stem))
      order.push_back(stem);
    auto& s = groups[stem][p.name];
    s.name = p.name;
    s.x.push_back(p.epoch);
    s.y.push_back(p.value);
  }
  out += "<h2>Training</h2>\n<div class=\"charts\">\n";
  for (auto& stem : order) {
    chart c{stem, "epoch", stem, {}, false, false, false, true};
    for (auto& [name, s] : groups[stem])
      c.lines.push_back(s);
    out += svg(c);
  }
  out += "</div>\n";
}

} // namespace

std::string render_report(const report_input& in) {
  const evaluation& ev = *in.ev;
  std::string out;
  out.reserve(64 * 1024);
  out += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>Evaluation: " +
         html_escape(in.node_id) + "</title>\n<style>" + style + "</style></head><body>\n";
  out += "<h1>Evaluation: <code>" + html_escape(in.node_id) + "</code></h1>\n";
  out += "<p class=\"meta\">run " + html_escape(in.run_id) + " · " + html_escape(ev.task) + " · target <code>" +
         html_escape(in.target) + "</code> · prediction <code>" + html_escape(in.prediction) + "</code> · " +
         std::to_string(in.rows_in) + " rows in, " + std::to_string(in.rows_evaluated) + " evaluated, " +
         std::to_string(in.rows_rejected) + " rejected</p>\n";

  out += "<h2>Metrics</h2>\n<table><tr><th>metric</th><th>value</th></tr>\n";
  for (size_t i = 0; i < ev.headline && i < ev.values.size(); ++i)
    out += row({td(ev.values[i].first), value_cell(ev.values[i].second)});
  out += row({td("rows evaluated"), td_count(in.rows_evaluated)});
  out += row({td("rows rejected"), td_count(in.rows_rejected)});
  out += "</table>\n";

  if (ev.task == "classification" && !ev.labels.empty()) {
    per_class_table(out, ev);
    confusion_table(out, ev);
    score_charts(out, ev);
  }
  if (ev.task == "regression" && !in.scatter.empty()) {
    chart c{"Predicted against true", "true " + in.target, "predicted", {{"", {}, {}}}, false, true, true};
    for (auto& [t, p] : in.scatter) {
      c.lines[0].x.push_back(t);
      c.lines[0].y.push_back(p);
    }
    out += "<h2>Predictions</h2>\n<p class=\"meta\">" + std::to_string(in.scatter.size()) +
           " rows; the dashed line is a perfect prediction.</p>\n<div class=\"charts\">\n" + svg(c) + "</div>\n";
  }

  if (in.model != nullptr) {
    auto& m = *in.model;
    training_charts(out, m);
    out += "<h2>Model</h2>\n<table>\n" + row({td("kind"), td(m.kind)});
    if (!m.version.empty())
      out += row({td("version"), td(m.version)});
    if (!m.target.empty())
      out += row({td("target"), td(m.target)});
    if (!m.classes.empty()) {
      std::string all;
      for (auto& c : m.classes)
        all += (all.empty() ? "" : ", ") + c;
      out += row({td("classes"), td(all)});
    }
    for (auto& [k, v] : m.hyperparameters)
      out += row({td(k), "<td><code>" + html_escape(v) + "</code></td>"});
    out += "</table>\n";
  }

  if (!in.reject_reasons.empty()) {
    out += "<h2>Rejected rows</h2>\n<table><tr><th>reason</th><th>rows</th></tr>\n";
    for (auto& [reason, n] : in.reject_reasons)
      out += row({td(reason), td_count(n)});
    out += "</table>\n";
  }
  if (!ev.notes.empty()) {
    out += "<h2>Notes</h2>\n<ul class=\"notes\">\n";
    for (auto& n : ev.notes)
      out += "<li>" + html_escape(n) + "</li>\n";
    out += "</ul>\n";
  }
  out += "</body></html>\n";
  return out;
}

} // namespace loom::ops::evaluate
