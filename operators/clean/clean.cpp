// clean — per-column rules (nulls, types, trimming, case, ranges, categories, regex,
// outliers) and deduplication, with every rule's effect counted.
#include "clean_rules.hpp"

#include <loom/frame.hpp>
#include <loom/params.hpp>
#include <loom/sdk.hpp>

#include <unordered_set>

namespace loom::ops {

using namespace clean;

class clean_op final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "clean", "0.1.0",
      "Cleans a table with per-column rules and optional deduplication, counting what every "
      "rule did. Rows that fail a rule go to `rejects` with the reason and their original "
      "values (a row removed by `nulls: drop` too, with reason \"column 'X' is null (dropped)\": "
      "`drop` and `reject` differ only in the counter they bump), so rows in = rows out + rows "
      "rejected and every row can be found on one of the two ports. Streams, unless a column uses `nulls: mean | median | "
      "most_frequent` or `outliers`: those need statistics of the whole column, so then the "
      "whole table is held in memory (deduplication holds the keys seen so far).\n"
      "`columns` maps a column name to its rules, applied in this order (columns in name "
      "order; the first rule a row fails gives its reject reason):\n"
      "1. `trim: true` strips ASCII whitespace at both ends; `case: lower | upper` folds ASCII "
      "letters (string columns only).\n"
      "2. `type: i64 | f64 | bool | string` converts the column; a value that does not parse is "
      "rejected (an empty string becomes null; f64 -> i64 needs a whole number; bool accepts "
      "true/false/1/0/yes/no).\n"
      "3. `regex: PATTERN` (ECMAScript, must match the whole value as text) else reject.\n"
      "4. `allowed: [values]`: any other value is rejected, or made null with `on_other: null`.\n"
      "5. `min`, `max` (numeric columns): a value outside is rejected (`out_of_range: reject`, "
      "the default), clipped to the bound (`clip`), or made null (`null`).\n"
      "6. `outliers: zscore | iqr` with `threshold` (default 3 for zscore: outside mean +- t * "
      "sample std; 1.5 for iqr: outside [Q1 - t*IQR, Q3 + t*IQR], linear quantiles) and "
      "`action: reject | clip | null` (default reject); statistics over the rows that passed "
      "steps 1-5.\n"
      "7. `nulls: keep | drop | reject | mean | median | most_frequent | constant` (with "
      "`fill: VALUE`) handles nulls, including those made by steps 4-6; mean and median (numeric "
      "columns, rounded for i64) and most_frequent (ties: the value seen first) are computed over "
      "the rows that passed steps 1-6.\n"
      "`dedupe: [key columns]` (after the rules; `[\"*\"]` for whole rows) keeps the first row of "
      "each key and rejects the others with reason `duplicate`.\n"
      "Metrics per rule: COL.trim, COL.case (cells changed), COL.type_rejected, "
      "COL.regex_rejected, COL.allowed_rejected|nulled, COL.range_clipped|rejected|nulled, "
      "COL.outliers_clipped|rejected|nulled, COL.null_dropped|rejected|filled, dedupe.dropped.",
      "- id: clean\n  op: clean\n  inputs: load\n  with:\n    columns:\n"
      "      price: {type: f64, min: 0, max: 1000, out_of_range: clip, nulls: median}\n"
      "      city: {trim: true, case: lower, allowed: [paris, rome], on_other: null, nulls: most_frequent}\n"
      "      email: {regex: \"[^@ ]+@[^@ ]+\", nulls: reject}\n"
      "      age: {type: i64, outliers: iqr, threshold: 1.5, action: clip, nulls: constant, fill: 0}\n"
      "    dedupe: [email]\n"};
    s.inputs = {{"data", LOOM_MSG_FRAME, "the table to clean"}};
    s.outputs = {{"out", LOOM_MSG_FRAME, "the cleaned table (converted columns have their new type)"},
                 {"rejects", LOOM_MSG_FRAME, "rejected rows: `reason` then the row's original columns"}};
    s.params = {
      {"columns", LOOM_PARAM_MAP, false, nullptr,
       "column name -> {rule: value}; rules: type, trim, case, regex, allowed, on_other, min, max, "
       "out_of_range, outliers, threshold, action, nulls, fill (see the description)"},
      {"dedupe", LOOM_PARAM_LIST, false, nullptr,
       "key columns of deduplication (first occurrence kept, later ones rejected as `duplicate`); [\"*\"]: whole rows"},
    };
    return s;
  }

  explicit clean_op(sdk::context& ctx) {
    auto p = sdk::params(ctx);
    if (auto it = p.find("columns"); it != p.end() && !it->is_null()) {
      if (!it->is_object())
        throw sdk::error("columns: expected a map of column name -> rules");
      for (auto& [name, rules] : it->items())
        rules_.push_back(column_rules::parse(name, rules));
    }
    if (ctx.has_param("dedupe")) {
      dedupe_keys_ = sdk::param_strings(ctx, "dedupe");
      if (dedupe_keys_.empty())
        throw sdk::error("dedupe: name the key columns, or [\"*\"] for whole rows");
      dedupe_ = true;
      dedupe_all_ = dedupe_keys_.size() == 1 && dedupe_keys_[0] == "*";
      counters_["dedupe.dropped"] = 0;
    }
    for (auto& c : rules_) {
      held_ = held_ || c.needs_stats();
      const std::string& n = c.name;
      if (c.trim)
        counters_[n + ".trim"] = 0;
      if (c.fold_case)
        counters_[n + ".case"] = 0;
      if (c.type)
        counters_[n + ".type_rejected"] = 0;
      if (c.regex)
        counters_[n + ".regex_rejected"] = 0;
      if (c.allowed)
        counters_[n + ".allowed_" + effect(c.on_other)] = 0;
      if (c.min || c.max)
        counters_[n + ".range_" + effect(c.out_of_range)] = 0;
      if (c.outliers)
        counters_[n + ".outliers_" + effect(c.outlier_action)] = 0;
      if (c.nulls != null_mode::keep)
        counters_[n + ".null_" + null_effect(c.nulls)] = 0;
    }
    fills_.resize(rules_.size());
    lo_.assign(rules_.size(), -INFINITY);
    hi_.assign(rules_.size(), INFINITY);
  }

  void on_input(sdk::context& ctx, uint32_t, const sdk::message& msg) override {
    auto f = sdk::frame_view::of(msg);
    bind(f);
    if (held_) {
      auto bytes = msg.bytes();
      frames_.emplace_back(bytes.begin(), bytes.end());
      return;
    }
    emit_frame(ctx, f);
  }

  void on_input_end(sdk::context& ctx, uint32_t) override {
    if (!held_)
      finish(ctx);
  }

  bool produce(sdk::context& ctx) override {
    if (!held_)
      return true;
    if (ctx.cancelled())
      throw sdk::error("cancelled", LOOM_ERR_CANCELLED);
    if (!stats_done_) {
      compute_stats();
      stats_done_ = true;
    }
    if (next_frame_ < frames_.size()) {
      auto f = sdk::frame_view::of(frames_[next_frame_]);
      emit_frame(ctx, f);
      frames_[next_frame_].clear();
      frames_[next_frame_].shrink_to_fit();
      ++next_frame_;
      return false;
    }
    finish(ctx);
    return true;
  }

private:
  enum class outcome { keep, reject, drop };

  static std::string effect(action a) {
    return a == action::clip ? "clipped" : a == action::null ? "nulled" : "rejected";
  }
  static std::string null_effect(null_mode m) {
    return m == null_mode::drop ? "dropped" : m == null_mode::reject ? "rejected" : "filled";
  }
  static bool is_number_type(col_type t) {
    return t == col_type::i64 || t == col_type::f64 || t == col_type::f32;
  }
  static std::string num_text(double d) { return number_text(d); }
  void count(const std::string& name, uint64_t n = 1) { counters_[name] += n; }

  /// Resolves the columns on the first frame and checks later frames against it.
  void bind(const sdk::frame_view& f) {
    if (!guard_.check(f))
      return;
    const auto& schema = guard_.schema();
    in_schema_ = schema;
    out_schema_ = schema;
    rule_of_col_.assign(schema.size(), -1);
    col_of_rule_.resize(rules_.size());
    for (size_t k = 0; k < rules_.size(); ++k) {
      auto& c = rules_[k];
      const std::string at = "columns." + c.name;
      int idx = f.index(c.name);
      if (idx < 0)
        throw sdk::error(at + ": no column '" + c.name + "' in the input (columns: " + f.describe_columns() + ")",
                         LOOM_ERR_BAD_DATA);
      col_of_rule_[k] = static_cast<size_t>(idx);
      rule_of_col_[idx] = static_cast<int>(k);
      col_type in = f.type(idx);
      col_type out = c.type ? *c.type : in;
      out_schema_[idx].type = out;
      out_schema_[idx].nullable = true;
      if ((c.trim || c.fold_case) && in != col_type::string)
        throw sdk::error(at + ": trim and case need a string column, but '" + c.name + "' is " + sdk::to_string(in));
      if ((c.min || c.max) && !is_number_type(out))
        throw sdk::error(at + ": min and max need a numeric column, but '" + c.name + "' is " + sdk::to_string(out) +
                         " (add type: f64?)");
      if (c.outliers && !is_number_type(out))
        throw sdk::error(at + ".outliers: needs a numeric column, but '" + c.name + "' is " + sdk::to_string(out));
      if ((c.nulls == null_mode::mean || c.nulls == null_mode::median) && !is_number_type(out))
        throw sdk::error(at + ".nulls: mean and median need a numeric column, but '" + c.name + "' is " +
                         sdk::to_string(out));
      if (c.nulls == null_mode::constant) {
        value v;
        v.type = col_type::string;
        v.null = false;
        v.s = c.fill.is_string() ? c.fill.get<std::string>()
              : c.fill.is_number_float() ? num_text(c.fill.get<double>())
                                         : c.fill.dump();
        if (!coerce(v, out) || v.null)
          throw sdk::error(at + ".fill: " + c.fill.dump() + " is not a valid " + sdk::to_string(out));
        fills_[k] = v;
      }
    }
    if (dedupe_) {
      if (dedupe_all_) {
        for (size_t i = 0; i < schema.size(); ++i)
          dedupe_cols_.push_back(i);
      } else {
        for (auto& n : dedupe_keys_) {
          int idx = f.index(n);
          if (idx < 0)
            throw sdk::error("dedupe: no column '" + n + "' in the input (columns: " + f.describe_columns() + ")",
                             LOOM_ERR_BAD_DATA);
          dedupe_cols_.push_back(static_cast<size_t>(idx));
        }
      }
    }
  }

  /// Steps 1-5 of every column: stateless.
  outcome early(const sdk::frame_view& f, size_t r, std::vector<value>& cells, std::string& reason, bool counting) {
    for (size_t k = 0; k < rules_.size(); ++k) {
      auto& c = rules_[k];
      value& v = cells[k];
      v = read_cell(f, col_of_rule_[k], r);
      const std::string& n = c.name;
      if (!v.null && v.type == col_type::string) {
        if (c.trim) {
          auto b = v.s.find_first_not_of(" \t\r\n\f\v");
          auto e = v.s.find_last_not_of(" \t\r\n\f\v");
          std::string t = b == std::string::npos ? std::string() : v.s.substr(b, e - b + 1);
          if (t != v.s) {
            v.s = std::move(t);
            if (counting)
              count(n + ".trim");
          }
        }
        if (c.fold_case) {
          std::string t = v.s;
          for (auto& ch : t)
            if (c.fold_case == 1 && ch >= 'A' && ch <= 'Z')
              ch = static_cast<char>(ch - 'A' + 'a');
            else if (c.fold_case == 2 && ch >= 'a' && ch <= 'z')
              ch = static_cast<char>(ch - 'a' + 'A');
          if (t != v.s) {
            v.s = std::move(t);
            if (counting)
              count(n + ".case");
          }
        }
      }
      if (c.type) {
        std::string before = v.text();
        if (!coerce(v, *c.type)) {
          reason = "column '" + n + "': '" + before + "' is not a valid " + sdk::to_string(*c.type);
          if (counting)
            count(n + ".type_rejected");
          return outcome::reject;
        }
      }
      if (v.null)
        continue;
      if (c.regex && !std::regex_match(v.text(), *c.regex)) {
        reason = "column '" + n + "': '" + v.text() + "' does not match regex '" + c.regex_text + "'";
        if (counting)
          count(n + ".regex_rejected");
        return outcome::reject;
      }
      if (c.allowed && !c.allowed->count(v.text())) {
        if (counting)
          count(n + ".allowed_" + effect(c.on_other));
        if (c.on_other == action::null) {
          v.null = true;
          continue;
        }
        reason = "column '" + n + "': '" + v.text() + "' is not an allowed value";
        return outcome::reject;
      }
      if (c.min || c.max) {
        double d = v.as_double();
        bool low = c.min && d < *c.min, high = c.max && d > *c.max;
        if (low || high || std::isnan(d)) {
          if (counting)
            count(n + ".range_" + effect(c.out_of_range));
          if (c.out_of_range == action::reject || std::isnan(d)) {
            reason = "column '" + n + "': " + v.text() + " is " +
                     (low ? "below min " + num_text(*c.min) : high ? "above max " + num_text(*c.max) : "not a number");
            return outcome::reject;
          }
          if (c.out_of_range == action::null)
            v.null = true;
          else
            v.set_double(low ? *c.min : *c.max);
        }
      }
    }
    return outcome::keep;
  }

  /// Step 6 (outliers, once bounds are known) and 7 (nulls) of every column.
  outcome late(std::vector<value>& cells, std::string& reason, bool counting, bool with_nulls) {
    for (size_t k = 0; k < rules_.size(); ++k) {
      auto& c = rules_[k];
      value& v = cells[k];
      if (!c.outliers || v.null)
        continue;
      double d = v.as_double();
      if (d >= lo_[k] && d <= hi_[k])
        continue;
      if (counting)
        count(c.name + ".outliers_" + effect(c.outlier_action));
      if (c.outlier_action == action::reject) {
        reason = "column '" + c.name + "': " + v.text() + " is an outlier (" + (c.outliers == 1 ? "zscore" : "iqr") +
                 " bounds " + num_text(lo_[k]) + " .. " + num_text(hi_[k]) + ")";
        return outcome::reject;
      }
      if (c.outlier_action == action::null)
        v.null = true;
      else
        v.set_double(d < lo_[k] ? lo_[k] : hi_[k]);
    }
    if (!with_nulls)
      return outcome::keep;
    for (size_t k = 0; k < rules_.size(); ++k) {
      auto& c = rules_[k];
      value& v = cells[k];
      if (!v.null || c.nulls == null_mode::keep)
        continue;
      if (c.nulls == null_mode::drop) {
        if (counting)
          count(c.name + ".null_dropped");
        reason = "column '" + c.name + "' is null (dropped)";
        return outcome::drop;
      }
      if (c.nulls == null_mode::reject) {
        if (counting)
          count(c.name + ".null_rejected");
        reason = "column '" + c.name + "' is null";
        return outcome::reject;
      }
      if (!fills_[k].null) { // no statistic when the column had no value at all
        v = fills_[k];
        if (counting)
          count(c.name + ".null_filled");
      }
    }
    return outcome::keep;
  }

  /// Held mode: outlier bounds, then mean / median / most frequent values.
  void compute_stats() {
    std::vector<std::vector<value>> rows; // cells of the rows that passed steps 1-5
    std::vector<value> cells(rules_.size());
    std::string reason;
    for (auto& bytes : frames_) {
      auto f = sdk::frame_view::of(bytes);
      for (size_t r = 0; r < f.num_rows(); ++r)
        if (early(f, r, cells, reason, false) == outcome::keep)
          rows.push_back(cells);
    }
    for (size_t k = 0; k < rules_.size(); ++k) {
      auto& c = rules_[k];
      if (!c.outliers)
        continue;
      std::vector<double> xs;
      for (auto& row : rows)
        if (!row[k].null && !std::isnan(row[k].as_double()))
          xs.push_back(row[k].as_double());
      if (xs.empty())
        continue;
      if (c.outliers == 1) {
        double m = mean_of(xs), s = std_of(xs);
        lo_[k] = m - c.threshold * s;
        hi_[k] = m + c.threshold * s;
      } else {
        double q1 = quantile_select(xs, 0.25), q3 = quantile_select(xs, 0.75);
        lo_[k] = q1 - c.threshold * (q3 - q1);
        hi_[k] = q3 + c.threshold * (q3 - q1);
      }
    }
    std::vector<std::vector<value>> kept;
    for (auto& row : rows)
      if (late(row, reason, false, false) == outcome::keep)
        kept.push_back(std::move(row));
    for (size_t k = 0; k < rules_.size(); ++k) {
      auto& c = rules_[k];
      value fill;
      fill.type = out_schema_[col_of_rule_[k]].type;
      if (c.nulls == null_mode::mean || c.nulls == null_mode::median) {
        std::vector<double> xs;
        for (auto& row : kept)
          if (!row[k].null && !std::isnan(row[k].as_double()))
            xs.push_back(row[k].as_double());
        if (!xs.empty())
          fill.set_double(c.nulls == null_mode::mean ? mean_of(xs) : quantile_select(xs, 0.5));
        fills_[k] = fill;
      } else if (c.nulls == null_mode::most_frequent) {
        std::map<std::string, std::pair<size_t, size_t>> seen; // text -> (count, first row)
        for (size_t i = 0; i < kept.size(); ++i)
          if (!kept[i][k].null) {
            auto& e = seen.try_emplace(kept[i][k].text(), 0, i).first->second;
            ++e.first;
          }
        size_t best_count = 0, best_row = 0;
        for (auto& [text, e] : seen)
          if (e.first > best_count || (e.first == best_count && e.second < best_row)) {
            best_count = e.first;
            best_row = e.second;
          }
        if (best_count > 0)
          fill = kept[best_row][k];
        fills_[k] = fill;
      }
    }
  }

  void emit_frame(sdk::context& ctx, const sdk::frame_view& f) {
    sdk::frame_builder out(out_schema_);
    sdk::frame_builder rej;
    rej.add_column("reason", col_type::string, false);
    for (auto& fl : in_schema_)
      rej.add_column(fl.name, fl.type, fl.nullable);
    std::vector<value> cells(rules_.size());
    std::string reason, key;
    for (size_t r = 0; r < f.num_rows(); ++r) {
      auto o = early(f, r, cells, reason, true);
      if (o == outcome::keep)
        o = late(cells, reason, true, true);
      if (o == outcome::keep && dedupe_) {
        key.clear();
        for (size_t c : dedupe_cols_) {
          int k = rule_of_col_[c];
          bool null = k >= 0 ? cells[k].null : !f.valid(c, r);
          std::string text = k >= 0 ? cells[k].text() : f.text(c, r);
          key += null ? "\x01" : "\x02" + text;
          key.push_back('\0');
        }
        if (!seen_.insert(key).second) {
          count("dedupe.dropped");
          reason = "duplicate";
          o = outcome::reject;
        }
      }
      if (o == outcome::reject || o == outcome::drop) {
        rej.append_string(0, reason);
        for (size_t c = 0; c < f.num_columns(); ++c)
          rej.append_from(c + 1, f, c, r);
        rej.end_row();
        continue;
      }
      for (size_t c = 0; c < f.num_columns(); ++c) {
        int k = rule_of_col_[c];
        if (k >= 0)
          append_cell(out, c, cells[k]);
        else
          out.append_from(c, f, c, r);
      }
      out.end_row();
    }
    uint64_t rejected = rej.num_rows();
    if (rejected)
      ctx.add_rejected(rejected);
    rows_rejected_ += rejected;
    if (out.num_rows() > 0 || !emitted_out_) {
      ctx.emit(0, out.finish(f.sequence()));
      emitted_out_ = true;
    }
    if (rej.num_rows() > 0 || !emitted_rejects_) {
      ctx.emit(1, rej.finish(f.sequence()));
      emitted_rejects_ = true;
    }
  }

  void finish(sdk::context& ctx) {
    for (auto& [name, n] : counters_)
      ctx.metric(name, static_cast<double>(n));
    ctx.metric("rows_rejected", static_cast<double>(rows_rejected_));
  }

  std::vector<column_rules> rules_;
  std::vector<std::string> dedupe_keys_;
  bool dedupe_ = false, dedupe_all_ = false, held_ = false;

  sdk::schema_guard guard_{"clean"};
  std::vector<sdk::field> in_schema_, out_schema_;
  std::vector<int> rule_of_col_;
  std::vector<size_t> col_of_rule_, dedupe_cols_;

  std::vector<value> fills_;
  std::vector<double> lo_, hi_;
  std::unordered_set<std::string> seen_;
  std::map<std::string, uint64_t> counters_;
  uint64_t rows_rejected_ = 0;

  std::vector<std::vector<uint8_t>> frames_;
  bool stats_done_ = false;
  size_t next_frame_ = 0;
  bool emitted_out_ = false, emitted_rejects_ = false;
};

extern const sdk::op_registration clean_op_registration = sdk::registration<clean_op>;

} // namespace loom::ops

LOOM_PLUGIN_OPERATORS("loom-clean", "0.1.0", loom::ops::clean_op_registration)
