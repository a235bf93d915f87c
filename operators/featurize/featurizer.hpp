// The fitted featurization shared by featurize.fit and featurize.apply: the transform
// spec (parsed from the `transforms` parameter), fitting on training frames, the
// fitted state as JSON (the Model's `preprocessing`), and applying it to a frame.
//
// Transforms read the *input* columns (not each other's outputs). Everything that
// decides an output value is in the state, so apply reproduces fit's `out` exactly.
#pragma once

#include <loom/fb/model_generated.h>
#include <loom/frame.hpp>
#include <loom/sdk.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace loom::ops::featurize {

using json = nlohmann::json;
using sdk::col_type;

inline constexpr int state_format_version = 1;
inline constexpr const char* model_kind = "featurizer";
inline constexpr const char* null_category = "__null__";
inline constexpr const char* unknown_category = "__unknown__";

/// FNV-1a, 64 bit, over the bytes of `s` (portable: the same on every machine).
inline uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

/// Text to tokens: ASCII letters are lower-cased (when `lowercase`), tokens are the
/// maximal runs of ASCII letters and digits and bytes >= 0x80 (so UTF-8 words stay
/// whole); tokens shorter than `min_length` bytes, and `stop_words`, are dropped; then the n-grams for
/// n in [ngram_min, ngram_max] are formed, words joined by one space.
struct tokenizer {
  bool lowercase = true;
  int64_t ngram_min = 1, ngram_max = 1;
  int64_t min_length = 1;
  std::set<std::string> stop_words; ///< words dropped before the n-grams are formed (featurize.tokenize)

  void terms(std::string_view text, std::vector<std::string>& out, std::vector<std::string>& words) const {
    out.clear();
    words.clear();
    std::string cur;
    auto flush = [&] {
      if (!cur.empty() && static_cast<int64_t>(cur.size()) >= min_length && !stop_words.count(cur))
        words.push_back(cur);
      cur.clear();
    };
    for (unsigned char c : text) {
      bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
      if (!alnum) {
        flush();
        continue;
      }
      if (lowercase && c >= 'A' && c <= 'Z')
        c = static_cast<unsigned char>(c - 'A' + 'a');
      cur.push_back(static_cast<char>(c));
    }
    flush();
    for (int64_t n = ngram_min; n <= ngram_max; ++n)
      for (size_t i = 0; i + static_cast<size_t>(n) <= words.size(); ++i) {
        std::string t = words[i];
        for (int64_t k = 1; k < n; ++k)
          t += ' ' + words[i + static_cast<size_t>(k)];
        out.push_back(std::move(t));
      }
  }
};

enum class op_kind { standardize, minmax, log, bucketize, one_hot, ordinal, hash, hashing, tfidf };

inline const std::vector<std::pair<std::string, op_kind>>& op_names() {
  static const std::vector<std::pair<std::string, op_kind>> names{
    {"standardize", op_kind::standardize}, {"minmax", op_kind::minmax},   {"log", op_kind::log},
    {"bucketize", op_kind::bucketize},     {"one_hot", op_kind::one_hot}, {"ordinal", op_kind::ordinal},
    {"hash", op_kind::hash},               {"hashing", op_kind::hashing}, {"tfidf", op_kind::tfidf}};
  return names;
}

inline bool is_numeric(op_kind k) {
  return k == op_kind::standardize || k == op_kind::minmax || k == op_kind::log || k == op_kind::bucketize;
}
inline bool is_text(op_kind k) { return k == op_kind::hashing || k == op_kind::tfidf; }

/// One entry of `transforms`, with its fitted values.
class transform {
public:
  // -- spec -------------------------------------------------------------------------
  std::string where;  ///< "transforms[2] (one_hot on 'city')", for messages
  std::string column; ///< input column
  std::string op;
  op_kind kind = op_kind::standardize;
  std::string output; ///< output name (scalar ops) or prefix (multi-column ops)
  bool keep_input = false;
  std::optional<double> fill;
  bool clip = false;
  std::string on_negative = "reject";
  std::vector<double> boundaries;
  int64_t bins = 0;
  int64_t max_categories = 0;
  int64_t buckets = 0;
  tokenizer tok;
  int64_t min_df = 1, max_features = 0;

  // -- fitted -----------------------------------------------------------------------
  uint64_t n = 0; ///< values (numeric) or rows (categorical, text) fitted on
  double mean = 0, std = 0, min = 0, max = 0;
  std::vector<std::string> categories; ///< one_hot/ordinal, sorted
  std::vector<uint64_t> category_counts;
  std::vector<std::string> vocabulary; ///< tfidf, sorted
  std::vector<uint64_t> df;
  std::vector<double> idf;

  /// Parses entry `i` of the `transforms` parameter; throws naming it.
  static transform parse(const json& j, size_t i) {
    transform t;
    std::string at = "transforms[" + std::to_string(i) + "]";
    if (!j.is_object())
      throw sdk::error(at + ": expected a map like {column: price, op: standardize}, found " + j.dump());
    auto str = [&](const char* key) -> std::string {
      auto it = j.find(key);
      if (it == j.end())
        throw sdk::error(at + ": missing '" + key + "'");
      if (!it->is_string() || it->get<std::string>().empty())
        throw sdk::error(at + ": '" + key + "' must be a non-empty string, found " + it->dump());
      return it->get<std::string>();
    };
    t.column = str("column");
    t.op = str("op");
    bool known = false;
    std::string all;
    for (auto& [name, k] : op_names()) {
      all += (all.empty() ? "" : ", ") + name;
      if (name == t.op) {
        t.kind = k;
        known = true;
      }
    }
    if (!known)
      throw sdk::error(at + ": unknown op '" + t.op + "' (ops: " + all + ")");
    t.where = at + " (" + t.op + " on '" + t.column + "')";

    std::set<std::string> allowed{"column", "op", "output", "keep_input"};
    switch (t.kind) {
      case op_kind::standardize: allowed.insert("fill"); break;
      case op_kind::minmax: allowed.insert({"fill", "clip"}); break;
      case op_kind::log: allowed.insert({"fill", "on_negative"}); break;
      case op_kind::bucketize: allowed.insert({"fill", "boundaries", "bins"}); break;
      case op_kind::one_hot:
      case op_kind::ordinal: allowed.insert("max_categories"); break;
      case op_kind::hash: allowed.insert("buckets"); break;
      case op_kind::hashing: allowed.insert({"buckets", "lowercase", "ngrams", "min_token_length"}); break;
      case op_kind::tfidf:
        allowed.insert({"lowercase", "ngrams", "min_token_length", "min_df", "max_features"});
        break;
    }
    for (auto& [key, v] : j.items())
      if (!allowed.count(key)) {
        std::string list;
        for (auto& a : allowed)
          list += (list.empty() ? "" : ", ") + a;
        throw sdk::error(t.where + ": unknown key '" + key + "' (" + t.op + " takes: " + list + ")");
      }

    auto number = [&](const char* key) -> std::optional<double> {
      auto it = j.find(key);
      if (it == j.end() || it->is_null())
        return std::nullopt;
      if (!it->is_number() || !std::isfinite(it->get<double>()))
        throw sdk::error(t.where + ": '" + key + "' must be a finite number, found " + it->dump());
      return it->get<double>();
    };
    auto integer = [&](const char* key, int64_t def, int64_t lo) -> int64_t {
      auto it = j.find(key);
      if (it == j.end() || it->is_null())
        return def;
      if (!it->is_number_integer() || it->get<int64_t>() < lo)
        throw sdk::error(t.where + ": '" + key + "' must be an integer >= " + std::to_string(lo) + ", found " +
                         it->dump());
      return it->get<int64_t>();
    };
    auto boolean = [&](const char* key, bool def) -> bool {
      auto it = j.find(key);
      if (it == j.end() || it->is_null())
        return def;
      if (!it->is_boolean())
        throw sdk::error(t.where + ": '" + key + "' must be true or false, found " + it->dump());
      return it->get<bool>();
    };

    t.output = j.contains("output") ? str("output") : t.column;
    t.keep_input = boolean("keep_input", false);
    t.fill = number("fill");
    t.clip = boolean("clip", false);
    if (auto it = j.find("on_negative"); it != j.end() && it->is_null()) {
      t.on_negative = "null"; // YAML reads `on_negative: null` as a null
    } else if (it != j.end()) {
      if (!it->is_string() || (*it != "reject" && *it != "error" && *it != "null"))
        throw sdk::error(t.where + ": 'on_negative' must be reject, error or null, found " + it->dump());
      t.on_negative = it->get<std::string>();
    }
    if (t.kind == op_kind::bucketize) {
      if (t.fill && std::floor(*t.fill) != *t.fill)
        throw sdk::error(t.where + ": 'fill' must be a whole number (bucketize outputs a bucket index)");
      t.bins = integer("bins", 0, 2);
      if (auto it = j.find("boundaries"); it != j.end()) {
        if (!it->is_array() || it->empty())
          throw sdk::error(t.where + ": 'boundaries' must be a non-empty list of numbers");
        for (auto& b : *it) {
          if (!b.is_number() || !std::isfinite(b.get<double>()))
            throw sdk::error(t.where + ": 'boundaries' must hold finite numbers, found " + b.dump());
          if (!t.boundaries.empty() && b.get<double>() <= t.boundaries.back())
            throw sdk::error(t.where + ": 'boundaries' must be strictly increasing, found " + it->dump());
          t.boundaries.push_back(b.get<double>());
        }
      }
      if ((t.bins > 0) == !t.boundaries.empty())
        throw sdk::error(t.where + ": give either 'boundaries' (a list) or 'bins' (a count of quantile bins)");
    }
    t.max_categories = integer("max_categories", 0, 0);
    if (t.kind == op_kind::hash || t.kind == op_kind::hashing) {
      if (!j.contains("buckets"))
        throw sdk::error(t.where + ": missing 'buckets' (the number of output columns)");
      t.buckets = integer("buckets", 0, 1);
    }
    t.tok.lowercase = boolean("lowercase", true);
    t.tok.min_length = integer("min_token_length", 1, 1);
    if (auto it = j.find("ngrams"); it != j.end()) {
      if (!it->is_array() || it->size() != 2 || !(*it)[0].is_number_integer() || !(*it)[1].is_number_integer() ||
          (*it)[0].get<int64_t>() < 1 || (*it)[1].get<int64_t>() < (*it)[0].get<int64_t>() ||
          (*it)[1].get<int64_t>() > 16)
        throw sdk::error(t.where + ": 'ngrams' must be [min, max] with 1 <= min <= max <= 16, found " + it->dump());
      t.tok.ngram_min = (*it)[0].get<int64_t>();
      t.tok.ngram_max = (*it)[1].get<int64_t>();
    }
    t.min_df = integer("min_df", 1, 1);
    t.max_features = integer("max_features", 0, 0);
    return t;
  }

  /// The spec as written into the state (every option, defaults filled in).
  json spec_json() const {
    json j{{"column", column}, {"op", op}, {"output", output}, {"keep_input", keep_input}};
    if (is_numeric(kind))
      j["fill"] = fill ? json(*fill) : json(nullptr);
    switch (kind) {
      case op_kind::minmax: j["clip"] = clip; break;
      case op_kind::log: j["on_negative"] = on_negative; break;
      case op_kind::bucketize:
        if (bins > 0)
          j["bins"] = bins;
        else
          j["boundaries"] = boundaries;
        break;
      case op_kind::one_hot:
      case op_kind::ordinal: j["max_categories"] = max_categories; break;
      case op_kind::hash: j["buckets"] = buckets; break;
      case op_kind::hashing:
      case op_kind::tfidf:
        if (kind == op_kind::hashing)
          j["buckets"] = buckets;
        else {
          j["min_df"] = min_df;
          j["max_features"] = max_features;
        }
        j["lowercase"] = tok.lowercase;
        j["ngrams"] = {tok.ngram_min, tok.ngram_max};
        j["min_token_length"] = tok.min_length;
        break;
      default: break;
    }
    return j;
  }

  /// The fitted values (empty for transforms that fit nothing: log, hash, hashing,
  /// bucketize with boundaries).
  json fitted_json() const {
    switch (kind) {
      case op_kind::standardize: return {{"count", n}, {"mean", mean}, {"std", std}};
      case op_kind::minmax: return {{"count", n}, {"min", min}, {"max", max}};
      case op_kind::bucketize:
        if (bins > 0)
          return {{"count", n}, {"boundaries", boundaries}};
        return json::object();
      case op_kind::one_hot:
      case op_kind::ordinal: return {{"rows", n}, {"categories", categories}, {"counts", category_counts}};
      case op_kind::tfidf: return {{"documents", n}, {"vocabulary", vocabulary}, {"df", df}, {"idf", idf}};
      default: return json::object();
    }
  }

  void load_fitted(const json& f) {
    auto get = [&](const char* key) -> const json& {
      if (!f.is_object() || !f.contains(key))
        throw sdk::error("featurizer state: " + where + " has no fitted '" + key + "'", LOOM_ERR_BAD_DATA);
      return f.at(key);
    };
    try {
      switch (kind) {
        case op_kind::standardize:
          n = get("count").get<uint64_t>();
          mean = get("mean").get<double>();
          std = get("std").get<double>();
          break;
        case op_kind::minmax:
          n = get("count").get<uint64_t>();
          min = get("min").get<double>();
          max = get("max").get<double>();
          break;
        case op_kind::bucketize:
          if (bins > 0)
            boundaries = get("boundaries").get<std::vector<double>>();
          break;
        case op_kind::one_hot:
        case op_kind::ordinal:
          categories = get("categories").get<std::vector<std::string>>();
          category_counts = get("counts").get<std::vector<uint64_t>>();
          break;
        case op_kind::tfidf:
          n = get("documents").get<uint64_t>();
          vocabulary = get("vocabulary").get<std::vector<std::string>>();
          df = get("df").get<std::vector<uint64_t>>();
          idf = get("idf").get<std::vector<double>>();
          if (idf.size() != vocabulary.size())
            throw sdk::error("featurizer state: " + where + ": idf and vocabulary differ in length",
                             LOOM_ERR_BAD_DATA);
          break;
        default: break;
      }
    } catch (const json::exception& e) {
      throw sdk::error("featurizer state: " + where + ": " + e.what(), LOOM_ERR_BAD_DATA);
    }
    index();
  }

  // -- fitting ------------------------------------------------------------------------

  /// Checks the input column's type (first frame).
  void check_type(const sdk::frame_view& f, size_t col) const {
    if (is_numeric(kind) && f.type(col) == col_type::string)
      throw sdk::error(where + ": column '" + column + "' is a string column; " + op +
                         " needs a number column (i64, f64, f32 or bool)",
                       LOOM_ERR_BAD_DATA);
  }

  /// A numeric cell: nullopt for null and NaN.
  static std::optional<double> numeric(const sdk::frame_view& f, size_t col, size_t r) {
    if (!f.valid(col, r))
      return std::nullopt;
    double x = f.number(col, r);
    if (std::isnan(x))
      return std::nullopt;
    return x;
  }

  /// Why row r must be rejected, or "" when it is fine (or throws for on_negative: error).
  std::string reject_reason(const sdk::frame_view& f, size_t col, size_t r, uint64_t row_number) const {
    if (!is_numeric(kind))
      return {};
    auto x = numeric(f, col, r);
    if (!x)
      return {};
    if (std::isinf(*x))
      return "column '" + column + "': value " + f.text(col, r) + " is not finite (" + op + ")";
    if (kind == op_kind::log && *x < 0) {
      if (on_negative == "error")
        throw sdk::error(where + ": negative value " + f.text(col, r) + " in row " + std::to_string(row_number) +
                           " (log needs values >= 0; set on_negative: reject or null to keep going)",
                         LOOM_ERR_BAD_DATA);
      if (on_negative == "reject")
        return "column '" + column + "': negative value " + f.text(col, r) + " (log)";
    }
    return {};
  }

  static std::string category(const sdk::frame_view& f, size_t col, size_t r) {
    return f.valid(col, r) ? f.text(col, r) : std::string(null_category);
  }

  /// Takes one accepted training row into the fit.
  void observe(const sdk::frame_view& f, size_t col, size_t r) {
    switch (kind) {
      case op_kind::standardize:
      case op_kind::minmax:
      case op_kind::bucketize: {
        auto x = numeric(f, col, r);
        if (!x)
          return;
        ++n;
        double d = *x - mean; // Welford
        mean += d / static_cast<double>(n);
        m2_ += d * (*x - mean);
        min = n == 1 ? *x : std::min(min, *x);
        max = n == 1 ? *x : std::max(max, *x);
        if (kind == op_kind::bucketize && bins > 0)
          values_.push_back(*x);
        return;
      }
      case op_kind::one_hot:
      case op_kind::ordinal:
        ++n;
        ++counts_[category(f, col, r)];
        return;
      case op_kind::tfidf: {
        ++n;
        if (!f.valid(col, r))
          return;
        tok.terms(f.text(col, r), terms_, words_);
        std::sort(terms_.begin(), terms_.end());
        for (size_t i = 0; i < terms_.size(); ++i) {
          auto& s = term_stats_[terms_[i]];
          s.total += 1;
          if (i == 0 || terms_[i] != terms_[i - 1])
            s.df += 1;
        }
        return;
      }
      default: return;
    }
  }

  void finish_fit() {
    switch (kind) {
      case op_kind::standardize: std = n > 0 ? std::sqrt(m2_ / static_cast<double>(n)) : 0.0; break;
      case op_kind::bucketize:
        if (bins > 0) {
          boundaries.clear();
          std::sort(values_.begin(), values_.end());
          if (!values_.empty())
            for (int64_t i = 1; i < bins; ++i) {
              // linear interpolation between order statistics (numpy's default)
              double pos = static_cast<double>(i) / static_cast<double>(bins) * static_cast<double>(values_.size() - 1);
              size_t lo = static_cast<size_t>(std::floor(pos));
              size_t hi = std::min(lo + 1, values_.size() - 1);
              double b = values_[lo] + (pos - static_cast<double>(lo)) * (values_[hi] - values_[lo]);
              if (boundaries.empty() || b > boundaries.back())
                boundaries.push_back(b);
            }
          values_.clear();
          values_.shrink_to_fit();
        }
        break;
      case op_kind::one_hot:
      case op_kind::ordinal: {
        std::vector<std::pair<std::string, uint64_t>> cats(counts_.begin(), counts_.end()); // sorted by value
        if (max_categories > 0 && cats.size() > static_cast<size_t>(max_categories)) {
          std::stable_sort(cats.begin(), cats.end(), [](auto& a, auto& b) { return a.second > b.second; });
          cats.resize(static_cast<size_t>(max_categories));
          std::sort(cats.begin(), cats.end());
        }
        for (auto& [c, k] : cats) {
          categories.push_back(c);
          category_counts.push_back(k);
        }
        counts_.clear();
        break;
      }
      case op_kind::tfidf: {
        std::vector<std::pair<std::string, term_stat>> terms;
        for (auto& [t, s] : term_stats_)
          if (s.df >= static_cast<uint64_t>(min_df))
            terms.emplace_back(t, s);
        if (max_features > 0 && terms.size() > static_cast<size_t>(max_features)) {
          std::stable_sort(terms.begin(), terms.end(),
                           [](auto& a, auto& b) { return a.second.total > b.second.total; });
          terms.resize(static_cast<size_t>(max_features));
          std::sort(terms.begin(), terms.end(), [](auto& a, auto& b) { return a.first < b.first; });
        }
        for (auto& [t, s] : terms) {
          vocabulary.push_back(t);
          df.push_back(s.df);
          idf.push_back(std::log((1.0 + static_cast<double>(n)) / (1.0 + static_cast<double>(s.df))) + 1.0);
        }
        term_stats_.clear();
        break;
      }
      default: break;
    }
    index();
  }

  // -- applying ---------------------------------------------------------------------

  /// Names and types of the output columns (known once fitted).
  std::vector<sdk::field> output_fields() const {
    std::vector<sdk::field> out;
    switch (kind) {
      case op_kind::standardize:
      case op_kind::minmax:
      case op_kind::log: out.push_back({output, col_type::f64, true}); break;
      case op_kind::bucketize: out.push_back({output, col_type::i64, true}); break;
      case op_kind::ordinal: out.push_back({output, col_type::i64, false}); break;
      case op_kind::one_hot:
        for (auto& c : categories)
          out.push_back({output + "=" + c, col_type::f32, false});
        out.push_back({output + "=" + unknown_category, col_type::f32, false});
        break;
      case op_kind::hash:
      case op_kind::hashing:
        for (int64_t i = 0; i < buckets; ++i)
          out.push_back({output + "#" + std::to_string(i), col_type::f32, false});
        break;
      case op_kind::tfidf:
        for (auto& t : vocabulary)
          out.push_back({output + ":" + t, col_type::f32, false});
        break;
    }
    return out;
  }

  /// Appends row r's outputs to columns [first, first + output_fields().size()) of b.
  void write(sdk::frame_builder& b, size_t first, const sdk::frame_view& f, size_t col, size_t r) {
    switch (kind) {
      case op_kind::standardize:
      case op_kind::minmax:
      case op_kind::log:
      case op_kind::bucketize: {
        auto x = numeric(f, col, r);
        if (x && kind == op_kind::log && *x < 0)
          x.reset(); // on_negative: null (reject/error never get here)
        if (!x) {
          if (!fill)
            b.append_null(first);
          else if (kind == op_kind::bucketize)
            b.append_i64(first, static_cast<int64_t>(*fill));
          else
            b.append_f64(first, *fill);
          return;
        }
        double v = *x;
        switch (kind) {
          case op_kind::standardize: v = std > 0 ? (v - mean) / std : 0.0; break;
          case op_kind::minmax:
            v = max > min ? (v - min) / (max - min) : 0.0;
            if (clip)
              v = std::clamp(v, 0.0, 1.0);
            break;
          case op_kind::log: v = std::log1p(v); break;
          default: {
            auto it = std::upper_bound(boundaries.begin(), boundaries.end(), v);
            b.append_i64(first, static_cast<int64_t>(it - boundaries.begin()));
            return;
          }
        }
        b.append_f64(first, v);
        return;
      }
      case op_kind::ordinal: {
        auto it = category_index_.find(category(f, col, r));
        b.append_i64(first, it == category_index_.end() ? -1 : static_cast<int64_t>(it->second));
        return;
      }
      case op_kind::one_hot: {
        auto it = category_index_.find(category(f, col, r));
        size_t hot = it == category_index_.end() ? categories.size() : it->second;
        for (size_t i = 0; i <= categories.size(); ++i)
          b.append_f32(first + i, i == hot ? 1.0f : 0.0f);
        return;
      }
      case op_kind::hash: {
        size_t hot = static_cast<size_t>(fnv1a64(category(f, col, r)) % static_cast<uint64_t>(buckets));
        for (size_t i = 0; i < static_cast<size_t>(buckets); ++i)
          b.append_f32(first + i, i == hot ? 1.0f : 0.0f);
        return;
      }
      case op_kind::hashing:
      case op_kind::tfidf: {
        size_t width = kind == op_kind::hashing ? static_cast<size_t>(buckets) : vocabulary.size();
        row_.assign(width, 0.0);
        if (f.valid(col, r)) {
          tok.terms(f.text(col, r), terms_, words_);
          for (auto& t : terms_) {
            if (kind == op_kind::hashing) {
              row_[fnv1a64(t) % static_cast<uint64_t>(buckets)] += 1.0;
            } else if (auto it = vocab_index_.find(t); it != vocab_index_.end()) {
              row_[it->second] += 1.0;
            }
          }
        }
        if (kind == op_kind::tfidf) {
          double norm = 0;
          for (size_t i = 0; i < width; ++i) {
            row_[i] *= idf[i];
            norm += row_[i] * row_[i];
          }
          norm = std::sqrt(norm);
          if (norm > 0)
            for (auto& v : row_)
              v /= norm;
        }
        for (size_t i = 0; i < width; ++i)
          b.append_f32(first + i, static_cast<float>(row_[i]));
        return;
      }
    }
  }

private:
  void index() {
    category_index_.clear();
    for (size_t i = 0; i < categories.size(); ++i)
      category_index_[categories[i]] = i;
    vocab_index_.clear();
    for (size_t i = 0; i < vocabulary.size(); ++i)
      vocab_index_[vocabulary[i]] = i;
  }

  struct term_stat {
    uint64_t df = 0, total = 0;
  };
  double m2_ = 0;
  std::vector<double> values_;
  std::map<std::string, uint64_t> counts_;
  std::map<std::string, term_stat> term_stats_;
  std::unordered_map<std::string, size_t> category_index_, vocab_index_;
  std::vector<std::string> terms_, words_;
  std::vector<double> row_;
};

/// All transforms of one node, and the layout of the output table.
class featurizer {
public:
  std::vector<transform> transforms;
  bool drop_input = false;

  /// From the `transforms` and `drop_input` parameters.
  static featurizer from_params(const json& params) {
    featurizer z;
    auto it = params.find("transforms");
    if (it == params.end() || !it->is_array() || it->empty())
      throw sdk::error("transforms: expected a non-empty list of maps like {column: price, op: standardize}");
    for (size_t i = 0; i < it->size(); ++i)
      z.transforms.push_back(transform::parse((*it)[i], i));
    z.drop_input = params.value("drop_input", false);
    return z;
  }

  /// From a Model message (featurize.apply's `state`).
  static featurizer from_model(std::span<const uint8_t> bytes) {
    flatbuffers::Verifier v(bytes.data(), bytes.size());
    if (bytes.size() < 8 || !fb::ModelBufferHasIdentifier(bytes.data()) || !fb::VerifyModelBuffer(v))
      throw sdk::error("state: the message is not a valid Model", LOOM_ERR_BAD_DATA);
    auto* m = fb::GetModel(bytes.data());
    if (m->kind()->string_view() != model_kind)
      throw sdk::error("state: the Model is of kind '" + m->kind()->str() + "', not '" + model_kind +
                         "' (connect the state output of featurize.fit)",
                       LOOM_ERR_BAD_DATA);
    if (m->preprocessing() == nullptr)
      throw sdk::error("state: the featurizer Model has no preprocessing", LOOM_ERR_BAD_DATA);
    return from_state(m->preprocessing()->str());
  }

  /// From the `preprocessing` JSON text.
  static featurizer from_state(const std::string& text) {
    json s = json::parse(text, nullptr, false);
    if (s.is_discarded() || !s.is_object())
      throw sdk::error("featurizer state: preprocessing is not a JSON object", LOOM_ERR_BAD_DATA);
    if (s.value("format", "") != "loom.featurizer" || s.value("version", 0) != state_format_version)
      throw sdk::error("featurizer state: expected format loom.featurizer version " +
                         std::to_string(state_format_version) + ", found " +
                         s.value("format", std::string("?")) + " version " + std::to_string(s.value("version", 0)),
                       LOOM_ERR_BAD_DATA);
    featurizer z;
    auto& ts = s["transforms"];
    if (!ts.is_array())
      throw sdk::error("featurizer state: 'transforms' is not a list", LOOM_ERR_BAD_DATA);
    for (size_t i = 0; i < ts.size(); ++i) {
      json spec = ts[i];
      json fitted = spec.contains("fitted") ? spec["fitted"] : json::object();
      spec.erase("fitted");
      auto t = transform::parse(spec, i);
      t.load_fitted(fitted);
      z.transforms.push_back(std::move(t));
    }
    z.drop_input = s.value("drop_input", false);
    z.fitted_ = true;
    return z;
  }

  /// The fitted state: what featurize.apply (and serving) needs.
  json state() const {
    json ts = json::array();
    for (auto& t : transforms) {
      auto j = t.spec_json();
      j["fitted"] = t.fitted_json();
      ts.push_back(std::move(j));
    }
    json schema = json::array();
    for (auto& f : schema_)
      schema.push_back({{"name", f.name}, {"type", sdk::to_string(f.type)}, {"nullable", f.nullable}});
    return {{"format", "loom.featurizer"}, {"version", state_format_version}, {"drop_input", drop_input},
            {"rows_fitted", rows_fitted_},     {"input_schema", schema},           {"transforms", ts}};
  }

  /// The state as a Model message (kind "featurizer").
  flatbuffers::DetachedBuffer model() const {
    flatbuffers::FlatBufferBuilder b;
    std::vector<flatbuffers::Offset<fb::Field>> fields;
    for (auto& f : schema_)
      fields.push_back(fb::CreateField(b, b.CreateString(f.name), static_cast<fb::ColumnType>(f.type), f.nullable));
    std::string pre = state().dump();
    auto m = fb::CreateModelDirect(b, model_kind, "1", nullptr, &fields, nullptr, nullptr, pre.c_str());
    fb::FinishModelBuffer(b, m);
    return b.Release();
  }

  /// Checks a frame's columns (the first frame fixes the schema) and binds the
  /// transforms to them.
  void bind(const sdk::frame_view& f) {
    if (!guard_.check(f))
      return;
    schema_ = guard_.schema();
    cols_.clear();
    for (auto& t : transforms) {
      int c = f.index(t.column);
      if (c < 0)
        throw sdk::error(t.where + ": no column '" + t.column + "' in the input (columns: " + f.describe_columns() +
                           ")",
                         LOOM_ERR_BAD_DATA);
      t.check_type(f, static_cast<size_t>(c));
      cols_.push_back(static_cast<size_t>(c));
    }
  }

  /// fit: takes the accepted rows of a bound training frame into the fit.
  void observe(const sdk::frame_view& f) {
    for (size_t r = 0; r < f.num_rows(); ++r) {
      ++row_number_;
      if (!reject_reason(f, r).empty())
        continue;
      ++rows_fitted_;
      for (size_t i = 0; i < transforms.size(); ++i)
        transforms[i].observe(f, cols_[i], r);
    }
  }

  void finish_fit() {
    for (auto& t : transforms)
      t.finish_fit();
    fitted_ = true;
    row_number_ = 0;
  }

  uint64_t rows_fitted() const { return rows_fitted_; }
  const std::vector<sdk::field>& input_schema() const { return schema_; }

  struct result {
    std::optional<flatbuffers::DetachedBuffer> out, rejects;
    uint64_t rejected = 0;
  };

  /// Transforms a bound frame: the out frame and, when rows were rejected, a rejects
  /// frame (reason + the row's values).
  result apply(const sdk::frame_view& f) {
    if (!planned_)
      plan();
    result res;
    for (size_t r = 0; r < f.num_rows(); ++r) {
      ++row_number_;
      auto reason = reject_reason(f, r);
      if (!reason.empty()) {
        rejects_.append_string(0, reason);
        for (size_t c = 0; c < f.num_columns(); ++c)
          rejects_.append_from(c + 1, f, c, r);
        rejects_.end_row();
        ++res.rejected;
        continue;
      }
      for (auto& item : plan_) {
        if (item.transform < 0)
          out_.append_from(item.first, f, item.input, r);
        else
          transforms[static_cast<size_t>(item.transform)].write(out_, item.first, f, item.input, r);
      }
      out_.end_row();
    }
    res.out = out_.finish(f.sequence());
    if (res.rejected > 0)
      res.rejects = rejects_.finish(f.sequence());
    return res;
  }

private:
  std::string reject_reason(const sdk::frame_view& f, size_t r) const {
    for (size_t i = 0; i < transforms.size(); ++i) {
      auto why = transforms[i].reject_reason(f, cols_[i], r, row_number_);
      if (!why.empty())
        return why;
    }
    return {};
  }

  // Output layout: the input columns in order; a column no transform reads passes
  // through (unless drop_input); a column that transforms read is replaced by their
  // outputs, in the order of `transforms` (kept before them with keep_input).
  void plan() {
    plan_.clear();
    out_ = sdk::frame_builder();
    std::map<std::string, std::string> names; // output name -> what made it
    auto add = [&](const sdk::field& fd, const std::string& from) {
      if (auto it = names.find(fd.name); it != names.end())
        throw sdk::error("output column '" + fd.name + "' would come from both " + it->second + " and " + from +
                         " (set 'output' on a transform to rename)");
      names[fd.name] = from;
      return out_.add_column(fd.name, fd.type, fd.nullable);
    };
    for (size_t c = 0; c < schema_.size(); ++c) {
      std::vector<size_t> readers;
      bool keep = false;
      for (size_t i = 0; i < transforms.size(); ++i)
        if (cols_[i] == c) {
          readers.push_back(i);
          keep = keep || transforms[i].keep_input;
        }
      if (readers.empty() ? !drop_input : keep)
        plan_.push_back({-1, c, add(schema_[c], "input column '" + schema_[c].name + "'")});
      for (auto i : readers) {
        auto fields = transforms[i].output_fields();
        size_t first = out_.num_columns();
        for (auto& fd : fields)
          add(fd, transforms[i].where);
        plan_.push_back({static_cast<int>(i), c, first});
      }
    }
    rejects_ = sdk::frame_builder();
    rejects_.add_column("reason", col_type::string, false);
    for (auto& fd : schema_)
      rejects_.add_column(fd.name, fd.type, true);
    planned_ = true;
  }

  struct item {
    int transform; ///< -1: pass input column through
    size_t input;  ///< input column
    size_t first;  ///< first output column
  };

  bool fitted_ = false, planned_ = false;
  sdk::schema_guard guard_;
  std::vector<sdk::field> schema_;
  std::vector<size_t> cols_; ///< input column of each transform
  std::vector<item> plan_;
  sdk::frame_builder out_, rejects_;
  uint64_t rows_fitted_ = 0;
  uint64_t row_number_ = 0; ///< rows seen, for messages
};

} // namespace loom::ops::featurize
