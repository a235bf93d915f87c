// split — train/validation/test splits (by fractions, stratified, by time) and k-fold,
// seeded and reproducible: a row's draw is a portable hash of the seed and the row's
// global index (or its key's value), never a std:: distribution.
#include <loom/parse.hpp>
#include <loom/frame.hpp>
#include <loom/params.hpp>
#include <loom/sdk.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

namespace loom::ops {

namespace {

using nlohmann::json;

enum dest : uint8_t { to_train = 0, to_validation = 1, to_test = 2, to_rejects = 3 };
constexpr const char* port_names[4] = {"train", "validation", "test", "rejects"};

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// FNV-1a 64 of the bytes: a key's identity.
uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

/// The draw of a row: the same on every machine, whatever the frame boundaries.
uint64_t row_hash(uint64_t seed, uint64_t identity) {
  return splitmix64(splitmix64(seed) ^ identity);
}

/// A hash as a uniform double in [0, 1).
double unit(uint64_t h) {
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

/// Splits n into three integer counts proportional to `frac` (largest remainder;
/// ties go to the earlier split).
std::array<size_t, 3> allocate(size_t n, const std::array<double, 3>& frac) {
  std::array<size_t, 3> c{};
  std::array<double, 3> rem{};
  size_t sum = 0;
  for (int i = 0; i < 3; ++i) {
    double exact = static_cast<double>(n) * frac[i];
    c[i] = static_cast<size_t>(std::floor(exact + 1e-9));
    rem[i] = frac[i] > 0 ? exact - static_cast<double>(c[i]) : -2;
    sum += c[i];
  }
  while (sum > n) { // rounding noise only
    int i = static_cast<int>(std::max_element(c.begin(), c.end()) - c.begin());
    --c[i];
    --sum;
  }
  while (sum < n) {
    int best = 0;
    for (int i = 1; i < 3; ++i)
      if (rem[i] > rem[best])
        best = i;
    ++c[best];
    rem[best] = -1;
    ++sum;
  }
  return c;
}

} // namespace

class split_op final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "split", "0.1.0",
      "Splits a table into train, validation and test outputs, by seeded fractions, "
      "stratified by a class column, by a time column, or as one fold of a k-fold split. "
      "Every input row goes to exactly one output (rows whose time value is null or NaN go to "
      "`rejects` with a reason), and rows keep their input order within each output. "
      "Reproducible: a row's draw is splitmix64 of `seed` and the row's global index in the "
      "input (or the FNV-1a hash of its `key` column's text, so that rows with the same key "
      "land in the same split), so the same seed gives the same rows on any machine and with "
      "any frame size.\n"
      "Modes:\n"
      "- fractions (default; streams): each row goes to train when its draw u in [0,1) is below "
      "`train`, to validation when below train + validation, else to test. Counts are close to, "
      "not exactly, the fractions. `train`/`validation`/`test` default to 0.8/0.1/0.1 when none "
      "is given; when some are given the others are 0; they must be in [0,1] and sum to 1.\n"
      "- exact counts (`exact: true`, or `stratify: COLUMN`; holds the whole table in memory): "
      "rows are ranked by their draw and the first round(n * train) go to train, the next "
      "round(n * validation) to validation, the rest to test (largest-remainder rounding). "
      "With `stratify` this is done per class (value of the column; null is a class of its "
      "own), so each output's class proportions match the input's as closely as integer counts "
      "allow.\n"
      "- time with cutoffs (`time_column` + `cutoffs: {validation: V, test: T}`; streams): rows "
      "with time < V go to train, V <= time < T to validation, time >= T to test. A numeric "
      "column compares numbers; a string column compares bytes (ISO 8601 dates and times sort "
      "correctly). Either cutoff may be left out (no validation, or no test, rows).\n"
      "- time by fractions (`time_column` without `cutoffs`; holds the whole table): rows are "
      "ordered by time (stable for ties) and the earliest round(n * train) go to train, the "
      "next round(n * validation) to validation, the rest to test; rows whose time equals the "
      "last time of an earlier split join that split, so no time value is in two splits.\n"
      "- k-fold (`folds: k`, `fold: i`): train = every row not in fold i, validation = fold i, "
      "test is empty. A row's fold is floor(u * k) (streams); with `exact: true` or "
      "`stratify` rows are ranked by their draw (per class) and rank r goes to fold r mod k, "
      "so folds differ in size by at most one (per class; holds the table). Running "
      "fold = 0..k-1 with the same seed puts every row in validation exactly once.\n"
      "Metrics: `train`, `validation`, `test`, `rejected` (rows in each output).",
      "- id: split\n  op: split\n  inputs: clean\n  with: {train: 0.7, validation: 0.15, test: 0.15, seed: 42}\n"
      "- id: strat\n  op: split\n  inputs: clean\n  with: {train: 0.8, test: 0.2, stratify: species, seed: 7}\n"
      "- id: by_time\n  op: split\n  inputs: clean\n"
      "  with: {time_column: day, cutoffs: {validation: \"2024-03-01\", test: \"2024-04-01\"}}\n"
      "- id: fold2\n  op: split\n  inputs: clean\n  with: {folds: 5, fold: 2, seed: 1}\n"};
    s.inputs = {{"data", LOOM_MSG_FRAME, "the table to split"}};
    s.outputs = {{"train", LOOM_MSG_FRAME, "training rows (k-fold: every fold but `fold`)"},
                 {"validation", LOOM_MSG_FRAME, "validation rows (k-fold: fold `fold`)"},
                 {"test", LOOM_MSG_FRAME, "test rows (empty in k-fold mode)"},
                 {"rejects", LOOM_MSG_FRAME,
                  "rows that cannot be placed (null or NaN time value): `reason` then the row's columns"}};
    s.params = {
      {"train", LOOM_PARAM_FLOAT, false, nullptr, "fraction of rows for train, in [0,1] (0.8 when no fraction is given)"},
      {"validation", LOOM_PARAM_FLOAT, false, nullptr, "fraction of rows for validation, in [0,1] (0.1 when no fraction is given)"},
      {"test", LOOM_PARAM_FLOAT, false, nullptr, "fraction of rows for test, in [0,1] (0.1 when no fraction is given)"},
      {"seed", LOOM_PARAM_INT, false, "0", "seed of the row draws; the same seed gives the same split"},
      {"key", LOOM_PARAM_STRING, false, nullptr,
       "column whose value (as text) identifies a row for the draw instead of its position: rows with the same key go to the same split (in streaming modes)"},
      {"exact", LOOM_PARAM_BOOL, false, "false", "exact counts by ranking draws (holds the table in memory)"},
      {"stratify", LOOM_PARAM_STRING, false, nullptr, "class column: exact counts per class (holds the table in memory)"},
      {"time_column", LOOM_PARAM_STRING, false, nullptr, "order rows by this numeric or string (ISO 8601) column"},
      {"cutoffs", LOOM_PARAM_MAP, false, nullptr,
       "with time_column: {validation: first time of validation, test: first time of test}; a number for a numeric column, a string for a string column"},
      {"folds", LOOM_PARAM_INT, false, "0", "k of a k-fold split (>= 2); 0: no k-fold"},
      {"fold", LOOM_PARAM_INT, false, "0", "which fold (0 .. folds-1) is the validation output"},
    };
    return s;
  }

  explicit split_op(sdk::context& ctx) {
    auto p = sdk::params(ctx);
    seed_ = static_cast<uint64_t>(ctx.param_int("seed"));
    exact_ = ctx.param_bool("exact");
    if (ctx.has_param("key"))
      key_ = ctx.param_string("key");
    if (ctx.has_param("stratify"))
      stratify_ = ctx.param_string("stratify");
    if (ctx.has_param("time_column"))
      time_column_ = ctx.param_string("time_column");
    folds_ = ctx.param_int("folds");
    fold_ = ctx.param_int("fold");

    bool any_fraction = false;
    const char* names[3] = {"train", "validation", "test"};
    for (int i = 0; i < 3; ++i)
      any_fraction = any_fraction || ctx.has_param(names[i]);
    if (any_fraction) {
      for (int i = 0; i < 3; ++i)
        frac_[i] = ctx.has_param(names[i]) ? ctx.param_float(names[i]) : 0.0;
    }
    for (int i = 0; i < 3; ++i)
      if (!(frac_[i] >= 0.0 && frac_[i] <= 1.0))
        throw sdk::error("split: parameter '" + std::string(names[i]) + "' must be a fraction in [0, 1], got " +
                         json(frac_[i]).dump());
    double sum = frac_[0] + frac_[1] + frac_[2];
    if (std::fabs(sum - 1.0) > 1e-9)
      throw sdk::error("split: parameters train + validation + test must sum to 1, got " + json(frac_[0]).dump() +
                       " + " + json(frac_[1]).dump() + " + " + json(frac_[2]).dump() + " = " + json(sum).dump());

    if (ctx.has_param("folds") && folds_ != 0) {
      if (folds_ < 2)
        throw sdk::error("split: parameter 'folds' must be at least 2, got " + std::to_string(folds_));
      if (fold_ < 0 || fold_ >= folds_)
        throw sdk::error("split: parameter 'fold' must be in 0.." + std::to_string(folds_ - 1) + ", got " +
                         std::to_string(fold_));
      if (any_fraction)
        throw sdk::error("split: parameter 'folds' cannot be combined with train/validation/test fractions");
      if (!time_column_.empty())
        throw sdk::error("split: parameter 'folds' cannot be combined with 'time_column'");
      kfold_ = true;
    } else if (ctx.has_param("fold") && fold_ != 0) {
      throw sdk::error("split: parameter 'fold' needs 'folds'");
    }
    if (ctx.has_param("cutoffs")) {
      if (time_column_.empty())
        throw sdk::error("split: parameter 'cutoffs' needs 'time_column'");
      if (any_fraction)
        throw sdk::error("split: parameter 'cutoffs' cannot be combined with train/validation/test fractions");
      auto& c = p.at("cutoffs");
      for (auto& [k, v] : c.items()) {
        if (k != "validation" && k != "test")
          throw sdk::error("split: parameter 'cutoffs' has an unknown entry '" + k + "' (use validation, test)");
        if (!v.is_number() && !v.is_string())
          throw sdk::error("split: parameter 'cutoffs." + k + "' must be a number or a string, got " + v.dump());
      }
      if (c.empty())
        throw sdk::error("split: parameter 'cutoffs' needs 'validation' or 'test'");
      if (c.contains("validation"))
        cut_json_[0] = c.at("validation");
      if (c.contains("test"))
        cut_json_[1] = c.at("test");
      cutoffs_ = true;
    }
    if (!time_column_.empty() && !stratify_.empty())
      throw sdk::error("split: parameter 'stratify' cannot be combined with 'time_column'");
    if (!time_column_.empty() && exact_)
      throw sdk::error("split: parameter 'exact' cannot be combined with 'time_column' (time splits are exact already)");
    held_ = exact_ || !stratify_.empty() || (!time_column_.empty() && !cutoffs_);
  }

  void on_input(sdk::context& ctx, uint32_t, const sdk::message& msg) override {
    auto f = sdk::frame_view::of(msg);
    bind(f);
    const size_t n = f.num_rows();
    if (held_) {
      size_t frame_no = frames_.size();
      auto bytes = msg.bytes();
      frames_.emplace_back(bytes.begin(), bytes.end());
      frame_start_.push_back(next_row_);
      for (size_t r = 0; r < n; ++r) {
        row_info ri;
        ri.frame = static_cast<uint32_t>(frame_no);
        ri.row = static_cast<uint32_t>(r);
        ri.hash = draw(f, r);
        ri.global = next_row_++;
        if (stratify_col_ >= 0) {
          std::string cls = f.valid(stratify_col_, r) ? "v" + f.text(stratify_col_, r) : std::string("n");
          auto it = classes_.try_emplace(std::move(cls), classes_.size()).first;
          ri.cls = static_cast<uint32_t>(it->second);
        }
        if (time_col_ >= 0) {
          std::string reason;
          if (!read_time(f, r, ri, reason)) {
            reasons_[ri.global] = reason;
            ri.rejected = true;
          }
        }
        rows_.push_back(std::move(ri));
      }
      return;
    }
    std::vector<uint8_t> d(n);
    std::vector<std::string> reasons(n);
    for (size_t r = 0; r < n; ++r, ++next_row_) {
      if (time_col_ >= 0) {
        row_info ri;
        if (!read_time(f, r, ri, reasons[r])) {
          d[r] = to_rejects;
          continue;
        }
        d[r] = by_cutoff(ri);
        continue;
      }
      double u = unit(draw(f, r));
      if (kfold_)
        d[r] = static_cast<int64_t>(std::floor(u * static_cast<double>(folds_))) == fold_ ? to_validation : to_train;
      else
        d[r] = u < frac_[0] ? to_train : u < frac_[0] + frac_[1] ? to_validation : to_test;
    }
    route(ctx, f, d, reasons);
  }

  void on_input_end(sdk::context& ctx, uint32_t) override {
    if (!held_)
      finish(ctx);
  }

  bool produce(sdk::context& ctx) override {
    if (!held_)
      return true;
    if (!assigned_)
      assign();
    if (ctx.cancelled())
      throw sdk::error("cancelled", LOOM_ERR_CANCELLED);
    if (next_frame_ < frames_.size()) {
      auto f = sdk::frame_view::of(frames_[next_frame_]);
      const size_t n = f.num_rows();
      std::vector<uint8_t> d(n);
      std::vector<std::string> reasons(n);
      for (size_t r = 0; r < n; ++r) {
        d[r] = dest_[frame_start_[next_frame_] + r];
        if (d[r] == to_rejects)
          reasons[r] = reasons_[frame_start_[next_frame_] + r];
      }
      route(ctx, f, d, reasons);
      frames_[next_frame_].clear();
      frames_[next_frame_].shrink_to_fit();
      ++next_frame_;
      return false;
    }
    finish(ctx);
    return true;
  }

private:
  struct row_info {
    uint32_t frame = 0, row = 0, cls = 0;
    uint64_t hash = 0, global = 0;
    double tnum = 0;
    std::string tstr;
    bool rejected = false;
  };

  /// Resolves the named columns in this frame (every frame: their position may change).
  void bind(const sdk::frame_view& f) {
    key_col_ = key_.empty() ? -1 : static_cast<int>(require(f, "key", key_));
    stratify_col_ = stratify_.empty() ? -1 : static_cast<int>(require(f, "stratify", stratify_));
    time_col_ = time_column_.empty() ? -1 : static_cast<int>(require(f, "time_column", time_column_));
    if (!schema_) {
      schema_ = f.schema();
      if (time_col_ >= 0) {
        time_is_string_ = f.type(time_col_) == sdk::col_type::string;
        if (cutoffs_)
          parse_cutoffs();
      }
    }
  }

  static size_t require(const sdk::frame_view& f, const char* param, const std::string& col) {
    int i = f.index(col);
    if (i < 0)
      throw sdk::error("split: parameter '" + std::string(param) + "': no column '" + col + "' in the input (columns: " +
                         f.describe_columns() + ")",
                       LOOM_ERR_BAD_DATA);
    return static_cast<size_t>(i);
  }

  void parse_cutoffs() {
    const char* names[2] = {"cutoffs.validation", "cutoffs.test"};
    for (int i = 0; i < 2; ++i) {
      auto& v = cut_json_[i];
      if (v.is_null())
        continue;
      if (time_is_string_) {
        if (!v.is_string())
          throw sdk::error("split: parameter '" + std::string(names[i]) + "': column '" + time_column_ +
                           "' holds strings, so the cutoff must be a string (quote it), got " + v.dump());
        cut_str_[i] = v.get<std::string>();
      } else if (v.is_number()) {
        cut_num_[i] = v.get<double>();
      } else if (!sdk::parse_f64(v.get<std::string>(), cut_num_[i])) {
        throw sdk::error("split: parameter '" + std::string(names[i]) + "': column '" + time_column_ +
                         "' is numeric, so the cutoff must be a number, got " + v.dump());
      }
      has_cut_[i] = true;
    }
    if (has_cut_[0] && has_cut_[1] &&
        (time_is_string_ ? cut_str_[0] > cut_str_[1] : cut_num_[0] > cut_num_[1]))
      throw sdk::error("split: parameter 'cutoffs': validation (" + cut_json_[0].dump() +
                       ") must not be later than test (" + cut_json_[1].dump() + ")");
  }

  uint64_t draw(const sdk::frame_view& f, size_t r) const {
    uint64_t identity = key_col_ >= 0 ? fnv1a(f.text(key_col_, r)) : next_row_;
    return row_hash(seed_, identity);
  }

  bool read_time(const sdk::frame_view& f, size_t r, row_info& ri, std::string& reason) const {
    if (!f.valid(time_col_, r)) {
      reason = "time_column '" + time_column_ + "' is null";
      return false;
    }
    if (time_is_string_) {
      if (f.type(time_col_) != sdk::col_type::string)
        throw sdk::error("split: column '" + time_column_ + "' changed type between frames", LOOM_ERR_BAD_DATA);
      ri.tstr = std::string(f.str(time_col_, r));
    } else {
      ri.tnum = f.number(time_col_, r);
      if (std::isnan(ri.tnum)) {
        reason = "time_column '" + time_column_ + "' is NaN";
        return false;
      }
    }
    return true;
  }

  uint8_t by_cutoff(const row_info& ri) const {
    auto before = [&](int i) {
      return time_is_string_ ? ri.tstr < cut_str_[i] : ri.tnum < cut_num_[i];
    };
    if (has_cut_[0] && before(0))
      return to_train;
    if (has_cut_[1] && !before(1))
      return to_test;
    if (!has_cut_[0])
      return to_train;
    return to_validation;
  }

  /// Held modes: every row's destination, once the whole table is in.
  void assign() {
    assigned_ = true;
    dest_.assign(rows_.size(), to_rejects);
    if (!time_column_.empty()) {
      std::vector<size_t> order;
      for (size_t i = 0; i < rows_.size(); ++i)
        if (!rows_[i].rejected)
          order.push_back(i);
      auto less = [&](size_t a, size_t b) {
        return time_is_string_ ? rows_[a].tstr < rows_[b].tstr : rows_[a].tnum < rows_[b].tnum;
      };
      auto same = [&](size_t a, size_t b) { return !less(a, b) && !less(b, a); };
      std::stable_sort(order.begin(), order.end(), less);
      auto c = allocate(order.size(), frac_);
      size_t b1 = c[0], b2 = c[0] + c[1];
      while (b1 > 0 && b1 < order.size() && same(order[b1], order[b1 - 1]))
        ++b1;
      b2 = std::max(b2, b1);
      while (b2 > 0 && b2 < order.size() && same(order[b2], order[b2 - 1]))
        ++b2;
      for (size_t k = 0; k < order.size(); ++k)
        dest_[order[k]] = k < b1 ? to_train : k < b2 ? to_validation : to_test;
      return;
    }
    // exact / stratified: rank by draw within each class
    std::vector<std::vector<size_t>> by_class(std::max<size_t>(classes_.size(), 1));
    for (size_t i = 0; i < rows_.size(); ++i)
      by_class[rows_[i].cls].push_back(i);
    for (auto& members : by_class) {
      std::sort(members.begin(), members.end(), [&](size_t a, size_t b) {
        return rows_[a].hash != rows_[b].hash ? rows_[a].hash < rows_[b].hash : a < b;
      });
      if (kfold_) {
        for (size_t k = 0; k < members.size(); ++k)
          dest_[members[k]] = static_cast<int64_t>(k % static_cast<size_t>(folds_)) == fold_ ? to_validation : to_train;
        continue;
      }
      auto c = allocate(members.size(), frac_);
      for (size_t k = 0; k < members.size(); ++k)
        dest_[members[k]] = k < c[0] ? to_train : k < c[0] + c[1] ? to_validation : to_test;
    }
  }

  /// Emits the rows of `f` on their ports (only ports that get rows).
  void route(sdk::context& ctx, const sdk::frame_view& f, const std::vector<uint8_t>& d,
             const std::vector<std::string>& reasons) {
    auto schema = f.schema();
    std::array<std::optional<sdk::frame_builder>, 4> out;
    for (size_t r = 0; r < f.num_rows(); ++r) {
      uint8_t k = d[r];
      if (!out[k]) {
        out[k].emplace();
        if (k == to_rejects)
          out[k]->add_column("reason", sdk::col_type::string, false);
        for (auto& fl : schema)
          out[k]->add_column(fl.name, fl.type, fl.nullable);
      }
      auto& b = *out[k];
      size_t off = 0;
      if (k == to_rejects) {
        b.append_string(0, reasons[r]);
        off = 1;
      }
      for (size_t c = 0; c < f.num_columns(); ++c)
        b.append_from(c + off, f, c, r);
      b.end_row();
      ++counts_[k];
    }
    for (uint32_t k = 0; k < 4; ++k) {
      if (!out[k])
        continue;
      if (k == to_rejects)
        ctx.add_rejected(out[k]->num_rows());
      ctx.emit(k, out[k]->finish(f.sequence()));
      emitted_[k] = true;
    }
    last_sequence_ = f.sequence();
  }

  /// Every output gets at least one (maybe empty) frame, so sinks write a header.
  void finish(sdk::context& ctx) {
    if (schema_) {
      for (uint32_t k = 0; k < 4; ++k) {
        if (emitted_[k])
          continue;
        sdk::frame_builder b;
        if (k == to_rejects)
          b.add_column("reason", sdk::col_type::string, false);
        for (auto& fl : *schema_)
          b.add_column(fl.name, fl.type, fl.nullable);
        ctx.emit(k, b.finish(last_sequence_ + 1));
      }
    }
    for (int k = 0; k < 4; ++k)
      ctx.metric(k == to_rejects ? "rejected" : port_names[k], static_cast<double>(counts_[k]));
  }

  // parameters
  uint64_t seed_ = 0;
  bool exact_ = false, kfold_ = false, cutoffs_ = false, held_ = false;
  std::string key_, stratify_, time_column_;
  int64_t folds_ = 0, fold_ = 0;
  std::array<double, 3> frac_{0.8, 0.1, 0.1};
  std::array<json, 2> cut_json_{};
  std::array<double, 2> cut_num_{};
  std::array<std::string, 2> cut_str_{};
  std::array<bool, 2> has_cut_{false, false};

  // per input
  int key_col_ = -1, stratify_col_ = -1, time_col_ = -1;
  bool time_is_string_ = false;
  std::optional<std::vector<sdk::field>> schema_;
  uint64_t next_row_ = 0;

  // held modes
  std::vector<std::vector<uint8_t>> frames_;
  std::vector<row_info> rows_;
  std::map<std::string, size_t> classes_;
  std::map<uint64_t, std::string> reasons_;
  std::vector<uint8_t> dest_;
  std::vector<uint64_t> frame_start_;
  bool assigned_ = false;
  size_t next_frame_ = 0;

  // output
  std::array<uint64_t, 4> counts_{};
  std::array<bool, 4> emitted_{};
  uint64_t last_sequence_ = 0;
};

extern const sdk::op_registration split_op_registration = sdk::registration<split_op>;

} // namespace loom::ops

LOOM_PLUGIN_OPERATORS("loom-split", "0.1.0", loom::ops::split_op_registration)
