// The evaluation report: one self-contained HTML page (inline CSS, inline SVG charts,
// no scripts, no external resources) that opens in a browser with no network.
#pragma once

#include "metrics.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace loom::ops::evaluate {

/// What the report shows of the connected Model.
struct model_summary {
  std::string kind, version, target;
  std::vector<std::string> classes;
  std::vector<std::pair<std::string, std::string>> hyperparameters; ///< key, JSON text
  struct point {
    uint32_t epoch;
    std::string name;
    double value;
  };
  std::vector<point> history;
};

struct report_input {
  std::string node_id, run_id, target, prediction;
  uint64_t rows_in = 0, rows_evaluated = 0, rows_rejected = 0;
  std::vector<std::pair<std::string, uint64_t>> reject_reasons; ///< reason, rows
  const evaluation* ev = nullptr;
  const model_summary* model = nullptr; ///< null when no Model is connected
  /// Regression: a sample of (truth, prediction) pairs for the scatter plot.
  std::vector<std::pair<double, double>> scatter;
};

/// The report page.
std::string render_report(const report_input& in);

/// `s` with & < > " ' replaced by character references.
std::string html_escape(std::string_view s);

/// A line chart as an inline <svg> element.
struct chart {
  struct series {
    std::string name;
    std::vector<double> x, y;
  };
  std::string title, x_label, y_label;
  std::vector<series> lines;
  bool unit_square = false; ///< both axes 0..1 (ROC, PR)
  bool diagonal = false;    ///< dashed y = x line (ROC: chance; scatter: perfect)
  bool dots = false;        ///< draw points instead of lines (scatter)
  bool integer_x = false;   ///< x ticks on whole numbers (epochs)
};
std::string svg(const chart& c);

} // namespace loom::ops::evaluate
