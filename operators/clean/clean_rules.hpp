// The per-column rules of the `clean` operator: parsing them from the `columns`
// parameter, and applying them to one cell.
#pragma once

#include <loom/parse.hpp>
#include <loom/frame.hpp>
#include <loom/sdk.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace loom::ops::clean {

using nlohmann::json;
using sdk::col_type;

/// One cell while the rules work on it.
struct value {
  bool null = true;
  col_type type = col_type::string;
  double num = 0; ///< f32/f64
  int64_t i = 0;
  bool b = false;
  std::string s;

  bool numeric() const { return type != col_type::string; }
  double as_double() const {
    switch (type) {
      case col_type::f32:
      case col_type::f64: return num;
      case col_type::i64: return static_cast<double>(i);
      case col_type::boolean: return b ? 1 : 0;
      case col_type::string: break;
    }
    return 0;
  }
  /// Sets a numeric value of this cell's type from a double (i64 rounds half away from zero).
  void set_double(double d) {
    null = false;
    switch (type) {
      case col_type::f32:
      case col_type::f64: num = d; break;
      case col_type::i64: i = std::llround(d); break;
      case col_type::boolean: b = d != 0; break;
      case col_type::string: break;
    }
  }
  std::string text() const {
    if (null)
      return {};
    char buf[64];
    switch (type) {
      case col_type::f32: {
        auto r = std::to_chars(buf, buf + sizeof buf, static_cast<float>(num));
        return std::string(buf, r.ptr);
      }
      case col_type::f64: {
        auto r = std::to_chars(buf, buf + sizeof buf, num);
        return std::string(buf, r.ptr);
      }
      case col_type::i64: {
        auto r = std::to_chars(buf, buf + sizeof buf, i);
        return std::string(buf, r.ptr);
      }
      case col_type::boolean: return b ? "true" : "false";
      case col_type::string: return s;
    }
    return {};
  }
};

/// A number as the shortest text that reads back the same ("5", "2.5").
inline std::string number_text(double d) {
  value v;
  v.null = false;
  v.type = col_type::f64;
  v.num = d;
  return v.text();
}

inline value read_cell(const sdk::frame_view& f, size_t c, size_t r) {
  value v;
  v.type = f.type(c);
  v.null = !f.valid(c, r);
  if (v.null)
    return v;
  switch (v.type) {
    case col_type::f32: v.num = f.f32(c, r); break;
    case col_type::f64: v.num = f.f64(c, r); break;
    case col_type::i64: v.i = f.i64(c, r); break;
    case col_type::boolean: v.b = f.boolean(c, r); break;
    case col_type::string: v.s = std::string(f.str(c, r)); break;
  }
  return v;
}

inline void append_cell(sdk::frame_builder& b, size_t c, const value& v) {
  if (v.null)
    return b.append_null(c);
  switch (v.type) {
    case col_type::f32: return b.append_f32(c, static_cast<float>(v.num));
    case col_type::f64: return b.append_f64(c, v.num);
    case col_type::i64: return b.append_i64(c, v.i);
    case col_type::boolean: return b.append_bool(c, v.b);
    case col_type::string: return b.append_string(c, v.s);
  }
}

/// Converts `v` to type `t`; false when its text does not parse (v unchanged then).
inline bool coerce(value& v, col_type t) {
  if (v.type == t || v.null) {
    v.type = t;
    return true;
  }
  std::string text = v.text();
  value out;
  out.type = t;
  out.null = false;
  switch (t) {
    case col_type::string: out.s = text; break;
    case col_type::boolean:
      if (text == "true" || text == "True" || text == "TRUE" || text == "1" || text == "yes")
        out.b = true;
      else if (text == "false" || text == "False" || text == "FALSE" || text == "0" || text == "no")
        out.b = false;
      else
        return false;
      break;
    case col_type::i64: {
      if (v.type == col_type::f64 || v.type == col_type::f32) {
        if (!std::isfinite(v.num) || v.num != std::trunc(v.num) || std::fabs(v.num) > 9.2e18)
          return false;
        out.i = static_cast<int64_t>(v.num);
        break;
      }
      if (!sdk::parse_i64(text, out.i))
        return false;
      break;
    }
    case col_type::f32:
    case col_type::f64: {
      if (!sdk::parse_f64(text, out.num))
        return false;
      break;
    }
  }
  if (v.type == col_type::string && t != col_type::string && text.empty())
    out.null = true; // an empty string is a missing value
  v = std::move(out);
  return true;
}

inline col_type type_named(const std::string& n, const std::string& where) {
  if (n == "i64" || n == "int")
    return col_type::i64;
  if (n == "f64" || n == "float" || n == "double")
    return col_type::f64;
  if (n == "bool")
    return col_type::boolean;
  if (n == "string" || n == "str")
    return col_type::string;
  throw sdk::error(where + ": unknown type '" + n + "' (use i64, f64, bool, string)");
}

enum class null_mode { keep, drop, reject, mean, median, most_frequent, constant };
enum class action { none, clip, reject, null };

/// The rules of one column, from `columns: {name: {...}}`.
struct column_rules {
  std::string name;
  std::optional<col_type> type;
  bool trim = false;
  int fold_case = 0; ///< 1 lower, 2 upper
  std::optional<double> min, max;
  action out_of_range = action::reject;
  std::optional<std::set<std::string>> allowed;
  action on_other = action::reject;
  std::optional<std::regex> regex;
  std::string regex_text;
  int outliers = 0; ///< 1 zscore, 2 iqr
  double threshold = 0;
  action outlier_action = action::reject;
  null_mode nulls = null_mode::keep;
  json fill;

  bool needs_stats() const {
    return outliers != 0 || nulls == null_mode::mean || nulls == null_mode::median ||
           nulls == null_mode::most_frequent;
  }

  static column_rules parse(const std::string& name, const json& j) {
    column_rules c;
    c.name = name;
    const std::string at = "columns." + name;
    if (!j.is_object())
      throw sdk::error(at + ": expected a map of rules, got " + j.dump());
    auto str = [&](const std::string& key, const json& v) {
      if (!v.is_string())
        throw sdk::error(at + "." + key + ": expected a string, got " + v.dump());
      return v.get<std::string>();
    };
    auto num = [&](const std::string& key, const json& v) {
      if (!v.is_number())
        throw sdk::error(at + "." + key + ": expected a number, got " + v.dump());
      return v.get<double>();
    };
    auto act = [&](const std::string& key, const json& v, bool clip_ok) {
      if (v.is_null()) // YAML reads a bare `null` as null
        return action::null;
      auto s = str(key, v);
      if (s == "clip" && clip_ok)
        return action::clip;
      if (s == "reject")
        return action::reject;
      if (s == "null")
        return action::null;
      throw sdk::error(at + "." + key + ": unknown action '" + s + "' (use " + (clip_ok ? "clip, " : "") +
                       "reject, null)");
    };
    bool has_action = false, has_threshold = false;
    for (auto& [key, v] : j.items()) {
      if (key == "type") {
        c.type = type_named(str(key, v), at + ".type");
      } else if (key == "trim") {
        if (!v.is_boolean())
          throw sdk::error(at + ".trim: expected true or false, got " + v.dump());
        c.trim = v.get<bool>();
      } else if (key == "case") {
        auto s = str(key, v);
        if (s == "lower")
          c.fold_case = 1;
        else if (s == "upper")
          c.fold_case = 2;
        else
          throw sdk::error(at + ".case: unknown case '" + s + "' (use lower, upper)");
      } else if (key == "min") {
        c.min = num(key, v);
      } else if (key == "max") {
        c.max = num(key, v);
      } else if (key == "out_of_range") {
        c.out_of_range = act(key, v, true);
      } else if (key == "allowed") {
        if (!v.is_array())
          throw sdk::error(at + ".allowed: expected a list of values, got " + v.dump());
        c.allowed.emplace();
        for (auto& a : v) {
          if (a.is_string())
            c.allowed->insert(a.get<std::string>());
          else if (a.is_number() || a.is_boolean())
            c.allowed->insert(a.is_number_float() ? number_text(a.get<double>()) : a.dump());
          else
            throw sdk::error(at + ".allowed: every entry must be a string, number or bool, got " + a.dump());
        }
      } else if (key == "on_other") {
        c.on_other = act(key, v, false);
      } else if (key == "regex") {
        c.regex_text = str(key, v);
        try {
          c.regex.emplace(c.regex_text, std::regex::ECMAScript);
        } catch (const std::regex_error& e) {
          throw sdk::error(at + ".regex: invalid pattern '" + c.regex_text + "': " + e.what());
        }
      } else if (key == "outliers") {
        auto s = str(key, v);
        if (s == "zscore")
          c.outliers = 1;
        else if (s == "iqr")
          c.outliers = 2;
        else
          throw sdk::error(at + ".outliers: unknown method '" + s + "' (use zscore, iqr)");
      } else if (key == "threshold") {
        c.threshold = num(key, v);
        has_threshold = true;
        if (!(c.threshold > 0))
          throw sdk::error(at + ".threshold: must be positive, got " + v.dump());
      } else if (key == "action") {
        c.outlier_action = act(key, v, true);
        has_action = true;
      } else if (key == "nulls" || key == "null") { // a bare `null:` key is not a string in YAML
        const std::string key = "nulls";
        auto s = str(key, v);
        static const std::map<std::string, null_mode> modes{
          {"keep", null_mode::keep}, {"drop", null_mode::drop}, {"reject", null_mode::reject},
          {"mean", null_mode::mean}, {"median", null_mode::median}, {"most_frequent", null_mode::most_frequent},
          {"constant", null_mode::constant}};
        auto it = modes.find(s);
        if (it == modes.end())
          throw sdk::error(at + ".nulls: unknown mode '" + s +
                           "' (use keep, drop, reject, mean, median, most_frequent, constant)");
        c.nulls = it->second;
      } else if (key == "fill") {
        if (!v.is_string() && !v.is_number() && !v.is_boolean())
          throw sdk::error(at + ".fill: expected a string, number or bool, got " + v.dump());
        c.fill = v;
      } else {
        throw sdk::error(at + ": unknown rule '" + key +
                         "' (rules: type, trim, case, min, max, out_of_range, allowed, on_other, regex, "
                         "outliers, threshold, action, nulls, fill)");
      }
    }
    if (c.min && c.max && *c.min > *c.max)
      throw sdk::error(at + ": min (" + number_text(*c.min) + ") is greater than max (" + number_text(*c.max) + ")");
    if (c.nulls == null_mode::constant && c.fill.is_null())
      throw sdk::error(at + ".fill: nulls: constant needs a fill value");
    if (!c.fill.is_null() && c.nulls != null_mode::constant)
      throw sdk::error(at + ".fill: only used with nulls: constant");
    if ((has_action || has_threshold) && c.outliers == 0)
      throw sdk::error(at + ": threshold and action need outliers: zscore or iqr");
    if (c.outliers && !has_threshold)
      c.threshold = c.outliers == 1 ? 3.0 : 1.5;
    return c;
  }
};

/// Statistics of a column over a list of values: mean, sample std, linear quantiles.
inline double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v)
    s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}
inline double std_of(const std::vector<double>& v) {
  if (v.size() < 2)
    return 0;
  double m = mean_of(v), s = 0;
  for (double x : v)
    s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}
/// q-quantile with linear interpolation (numpy's and pandas' default); v sorted.
/// The q-quantile of v (linear interpolation between order statistics, like numpy's
/// default), found by selection rather than a sort: O(n). Reorders v; v has no NaN.
inline double quantile_select(std::vector<double>& v, double q) {
  if (v.empty())
    return 0;
  double pos = q * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(lo), v.end());
  const double a = v[lo];
  if (lo + 1 >= v.size())
    return a;
  const double b = *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(lo) + 1, v.end()); // order statistic lo + 1
  return a + (b - a) * (pos - static_cast<double>(lo));
}

} // namespace loom::ops::clean
