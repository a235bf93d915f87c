// Shared logic of the loom-quality plugin (profile, validate): portable hashing, a
// HyperLogLog distinct counter, a seeded reservoir sample, per-column streaming
// statistics, the profile.json format, the Metrics message and the population
// stability index. Depends on the SDK only.
#pragma once

#include <loom/fb/metrics_generated.h>
#include <loom/frame.hpp>
#include <loom/sdk.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace loom::ops::quality {

/// The format tag of profile.json; validate refuses other formats.
inline constexpr const char* profile_format = "loom.profile/1";

// ---- hashing (portable: the same value gives the same hash on every machine) --------

/// splitmix64's finalizer: a bijective 64-bit mixer with full avalanche.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

/// FNV-1a over the bytes, then mix64 (FNV alone mixes the high bits poorly).
inline uint64_t hash_bytes(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return mix64(h);
}

inline uint64_t hash_i64(int64_t v) { return mix64(static_cast<uint64_t>(v) ^ 0x9e3779b97f4a7c15ULL); }

inline uint64_t hash_f64(double v) {
  if (v == 0)
    v = 0; // -0.0 and 0.0 are one value
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return mix64(bits ^ 0x632be59bd9b4e019ULL);
}

/// A small portable PRNG (splitmix64): the same seed gives the same sequence anywhere.
class rng {
public:
  explicit rng(uint64_t seed) : state_(seed) {}
  uint64_t next() { return mix64(state_ += 0x9e3779b97f4a7c15ULL); }
  /// Uniform in [0, n) (modulo bias below 2^-40 for n < 2^24).
  uint64_t below(uint64_t n) { return next() % n; }

private:
  uint64_t state_;
};

// ---- distinct count -----------------------------------------------------------------

/// Distinct values: exact (a set of 64-bit hashes) up to `exact_limit` values, then a
/// HyperLogLog sketch of 2^14 registers (16 KiB) read with Ertl's improved estimator
/// ("New cardinality estimation algorithms for HyperLogLog sketches", 2017), whose
/// relative standard error is 1.04/sqrt(2^14) = 0.8% at every cardinality.
class distinct_counter {
public:
  static constexpr int p = 14;
  static constexpr uint32_t m = 1u << p;
  static constexpr int q = 64 - p;
  static constexpr size_t exact_limit = 4096;

  distinct_counter() : regs_(m, 0) {}

  void add(uint64_t h) {
    uint32_t idx = static_cast<uint32_t>(h >> q);
    uint64_t w = h << p;
    uint8_t rho = w == 0 ? static_cast<uint8_t>(q + 1) : static_cast<uint8_t>(std::countl_zero(w) + 1);
    if (rho > regs_[idx])
      regs_[idx] = rho;
    if (exact_) {
      set_.insert(h);
      if (set_.size() > exact_limit) {
        exact_ = false;
        set_ = {};
      }
    }
  }
  bool exact() const { return exact_; }
  double estimate() const {
    if (exact_)
      return static_cast<double>(set_.size());
    std::vector<double> c(q + 2, 0.0);
    for (auto r : regs_)
      c[r] += 1;
    double md = m;
    double z = md * tau(1.0 - c[q + 1] / md);
    for (int k = q; k >= 1; --k)
      z = 0.5 * (z + c[k]);
    z += md * sigma(c[0] / md);
    return std::round(md * md / (2.0 * std::log(2.0)) / z);
  }

private:
  static double sigma(double x) {
    if (x == 1.0)
      return std::numeric_limits<double>::infinity();
    double y = 1, z = x;
    for (;;) {
      x *= x;
      double old = z;
      z += x * y;
      y += y;
      if (old == z)
        return z;
    }
  }
  static double tau(double x) {
    if (x == 0.0 || x == 1.0)
      return 0.0;
    double y = 1.0, z = 1.0 - x;
    for (;;) {
      x = std::sqrt(x);
      double old = z;
      y *= 0.5;
      z -= (1 - x) * (1 - x) * y;
      if (old == z)
        return z / 3;
    }
  }
  std::vector<uint8_t> regs_;
  std::unordered_set<uint64_t> set_;
  bool exact_ = true;
};

// ---- numbers --------------------------------------------------------------------------

/// A uniform sample of at most `capacity` values (Algorithm R, seeded): holds every
/// value while count <= capacity, so quantiles and histograms are exact then.
class reservoir {
public:
  explicit reservoir(size_t capacity = 10000, uint64_t seed = 42) : cap_(capacity), rng_(seed) {}
  void add(double v) {
    if (values_.size() < cap_)
      values_.push_back(v);
    else if (uint64_t j = rng_.below(seen_ + 1); j < cap_)
      values_[j] = v;
    ++seen_;
  }
  bool exact() const { return seen_ <= cap_; }
  const std::vector<double>& values() const { return values_; }

private:
  size_t cap_;
  rng rng_;
  uint64_t seen_ = 0;
  std::vector<double> values_;
};

/// Linear interpolation between order statistics (numpy's default, "type 7"):
/// h = (n-1)q, x[floor h] + (h - floor h)(x[floor h + 1] - x[floor h]). `sorted` non-empty.
inline double quantile(const std::vector<double>& sorted, double q) {
  double h = (static_cast<double>(sorted.size()) - 1) * q;
  size_t lo = static_cast<size_t>(std::floor(h));
  if (lo + 1 >= sorted.size())
    return sorted.back();
  return sorted[lo] + (h - static_cast<double>(lo)) * (sorted[lo + 1] - sorted[lo]);
}

inline constexpr std::pair<const char*, double> quantile_points[] = {
  {"p01", 0.01}, {"p25", 0.25}, {"p50", 0.50}, {"p75", 0.75}, {"p99", 0.99}};

inline constexpr int histogram_bins = 20;

// ---- categories ---------------------------------------------------------------------

/// Counts of values: exact up to `exact_limit` distinct values, then a Misra-Gries
/// summary of `mg_size` counters (each count is then a lower bound, short by at most
/// n/(mg_size+1), and every value more frequent than n/(mg_size+1) is kept).
class value_counter {
public:
  static constexpr size_t exact_limit = 10000;
  static constexpr size_t mg_size = 1000;

  void add(std::string_view v) {
    if (auto it = counts_.find(std::string(v)); it != counts_.end()) {
      ++it->second;
      return;
    }
    if (exact_ && counts_.size() >= exact_limit)
      to_misra_gries();
    if (exact_ || counts_.size() < mg_size) {
      counts_.emplace(std::string(v), 1);
      return;
    }
    // Misra-Gries: a new value when every counter is taken decrements them all
    for (auto it = counts_.begin(); it != counts_.end();)
      if (--it->second == 0)
        it = counts_.erase(it);
      else
        ++it;
  }
  bool exact() const { return exact_; }
  /// The `k` most frequent values, by count (descending) then value.
  std::vector<std::pair<std::string, uint64_t>> top(size_t k) const {
    std::vector<std::pair<std::string, uint64_t>> all(counts_.begin(), counts_.end());
    std::sort(all.begin(), all.end(), [](auto& a, auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    if (all.size() > k)
      all.resize(k);
    return all;
  }

private:
  void to_misra_gries() {
    exact_ = false;
    auto all = top(counts_.size());
    uint64_t cut = all.size() > mg_size ? all[mg_size].second : 0;
    counts_.clear();
    for (size_t i = 0; i < all.size() && i < mg_size; ++i)
      if (all[i].second > cut)
        counts_.emplace(all[i].first, all[i].second - cut);
  }
  std::unordered_map<std::string, uint64_t> counts_;
  bool exact_ = true;
};

inline bool is_numeric(sdk::col_type t) {
  return t == sdk::col_type::f32 || t == sdk::col_type::f64 || t == sdk::col_type::i64;
}

/// Shortest round-trip text of a double.
inline std::string num_text(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

// ---- one column's profile -----------------------------------------------------------

/// Streaming statistics of one column. Memory is bounded: a 10,000-value sample, a
/// 16 KiB HyperLogLog, at most 10,000 category counts.
class column_profile {
public:
  column_profile(std::string name, sdk::col_type type, size_t sample_size, uint64_t seed)
    : name_(std::move(name)), type_(type), sample_(sample_size, seed) {}

  const std::string& name() const { return name_; }
  sdk::col_type type() const { return type_; }

  void add(const sdk::frame_view& f, size_t c) {
    const size_t n = f.num_rows();
    for (size_t r = 0; r < n; ++r) {
      if (!f.valid(c, r)) {
        ++nulls_;
        continue;
      }
      switch (type_) {
        case sdk::col_type::string: {
          auto s = f.str(c, r);
          distinct_.add(hash_bytes(s));
          values_.add(s);
          ++count_;
          break;
        }
        case sdk::col_type::boolean: {
          bool b = f.boolean(c, r);
          distinct_.add(hash_i64(b ? 1 : 0));
          values_.add(b ? "true" : "false");
          number(b ? 1.0 : 0.0);
          break;
        }
        case sdk::col_type::i64: {
          int64_t v = f.i64(c, r);
          distinct_.add(hash_i64(v));
          number(static_cast<double>(v));
          break;
        }
        case sdk::col_type::f32:
        case sdk::col_type::f64: {
          double v = f.number(c, r);
          if (!std::isfinite(v)) {
            ++non_finite_;
            distinct_.add(hash_f64(v));
            ++count_;
            break;
          }
          distinct_.add(hash_f64(v));
          number(v);
          break;
        }
      }
    }
  }

  /// The profile as JSON (one entry of profile.json's "columns").
  nlohmann::json to_json(size_t top_k) const {
    nlohmann::json j;
    j["name"] = name_;
    j["type"] = sdk::to_string(type_);
    j["count"] = count_;
    j["nulls"] = nulls_;
    uint64_t rows = count_ + nulls_;
    j["null_fraction"] = rows ? static_cast<double>(nulls_) / static_cast<double>(rows) : 0.0;
    j["distinct"] = distinct_.estimate();
    j["distinct_exact"] = distinct_.exact();
    if (is_numeric(type_) && non_finite_)
      j["non_finite"] = non_finite_;
    if (type_ != sdk::col_type::string && numbers_ > 0) {
      j["min"] = min_;
      j["max"] = max_;
      j["mean"] = mean_;
      j["std"] = numbers_ > 1 ? std::sqrt(m2_ / static_cast<double>(numbers_ - 1)) : 0.0;
    }
    if (is_numeric(type_) && numbers_ > 0) {
      auto sorted = sample_.values();
      std::sort(sorted.begin(), sorted.end());
      nlohmann::json qs = nlohmann::json::object();
      for (auto& [label, q] : quantile_points)
        qs[label] = quantile(sorted, q);
      j["quantiles"] = qs;
      j["sample_size"] = sorted.size();
      j["sample_exact"] = sample_.exact();
      j["histogram"] = histogram(sorted);
    }
    if (type_ == sdk::col_type::string || type_ == sdk::col_type::boolean) {
      nlohmann::json top = nlohmann::json::array();
      for (auto& [v, n] : values_.top(top_k))
        top.push_back({{"value", v}, {"count", n}});
      j["top"] = top;
      j["top_exact"] = values_.exact();
    }
    return j;
  }

private:
  void number(double v) {
    ++count_;
    ++numbers_;
    if (numbers_ == 1)
      min_ = max_ = v;
    min_ = std::min(min_, v);
    max_ = std::max(max_, v);
    // Welford
    double d = v - mean_;
    mean_ += d / static_cast<double>(numbers_);
    m2_ += d * (v - mean_);
    if (is_numeric(type_))
      sample_.add(v);
  }

  /// 20 equal-width bins between the exact min and max; the last bin holds max.
  /// Counts come from the sample: exact while every value is in it, else the
  /// sample's bin shares times the count.
  nlohmann::json histogram(const std::vector<double>& sorted) const {
    nlohmann::json h;
    std::vector<double> edges, counts;
    if (min_ == max_) {
      edges = {min_, max_};
      counts = {static_cast<double>(numbers_)};
    } else {
      double width = (max_ - min_) / histogram_bins;
      for (int i = 0; i <= histogram_bins; ++i)
        edges.push_back(i == histogram_bins ? max_ : min_ + width * i);
      counts.assign(histogram_bins, 0.0);
      for (double v : sorted)
        counts[bin_of(edges, v)] += 1;
      if (!sample_.exact() && !sorted.empty())
        for (auto& c : counts)
          c = c * static_cast<double>(numbers_) / static_cast<double>(sorted.size());
    }
    h["edges"] = edges;
    h["counts"] = counts;
    h["exact"] = sample_.exact();
    return h;
  }

public:
  /// The bin of `v` among bins edges[i] <= v < edges[i+1] (the last bin is closed);
  /// values outside fall into the first or last bin.
  static size_t bin_of(const std::vector<double>& edges, double v) {
    size_t bins = edges.size() - 1;
    auto it = std::upper_bound(edges.begin() + 1, edges.end() - 1, v);
    return std::min(static_cast<size_t>(it - (edges.begin() + 1)), bins - 1);
  }

private:
  std::string name_;
  sdk::col_type type_;
  uint64_t count_ = 0, nulls_ = 0, numbers_ = 0, non_finite_ = 0;
  double min_ = 0, max_ = 0, mean_ = 0, m2_ = 0;
  distinct_counter distinct_;
  reservoir sample_;
  value_counter values_;
};

// ---- metrics ----------------------------------------------------------------------

/// A named value list plus histograms as curves, ready to become a Metrics message.
struct metrics_out {
  std::vector<std::pair<std::string, double>> values;
  struct curve {
    std::string name;
    std::vector<double> x, y;
  };
  std::vector<curve> curves;

  void add(std::string name, double v) { values.emplace_back(std::move(name), v); }

  /// The Metrics FlatBuffer (identifier "LMMT").
  flatbuffers::DetachedBuffer finish() const {
    flatbuffers::FlatBufferBuilder b(1024);
    std::vector<flatbuffers::Offset<fb::Metric>> ms;
    for (auto& [n, v] : values)
      ms.push_back(fb::CreateMetric(b, b.CreateString(n), v));
    std::vector<flatbuffers::Offset<fb::Curve>> cs;
    for (auto& c : curves)
      cs.push_back(fb::CreateCurve(b, b.CreateString(c.name), b.CreateVector(c.x), b.CreateVector(c.y)));
    auto root = fb::CreateMetrics(b, b.CreateVector(ms), 0, cs.empty() ? 0 : b.CreateVector(cs));
    fb::FinishMetricsBuffer(b, root);
    return b.Release();
  }
  /// Records every value with ctx.metric.
  void record(sdk::context& ctx) const {
    for (auto& [n, v] : values)
      ctx.metric(n, v);
  }
};

/// The flat metrics of a profile: "rows", "<column>.<stat>" for every scalar
/// statistic, and each histogram as a curve "<column>.histogram" (x: the lower edge
/// of each bin, y: its count).
inline metrics_out profile_metrics(const nlohmann::json& profile) {
  metrics_out m;
  m.add("rows", profile.at("rows").get<double>());
  for (auto& c : profile.at("columns")) {
    std::string n = c.at("name").get<std::string>();
    for (auto& [k, v] : c.items()) {
      if (v.is_number())
        m.add(n + "." + k, v.get<double>());
      else if (v.is_boolean())
        m.add(n + "." + k, v.get<bool>() ? 1.0 : 0.0);
    }
    if (c.contains("quantiles"))
      for (auto& [k, v] : c["quantiles"].items())
        m.add(n + "." + k, v.get<double>());
    if (c.contains("histogram")) {
      auto& h = c["histogram"];
      metrics_out::curve cv{n + ".histogram", h["edges"].get<std::vector<double>>(),
                            h["counts"].get<std::vector<double>>()};
      cv.x.pop_back();
      m.curves.push_back(std::move(cv));
    }
  }
  return m;
}

// ---- drift ------------------------------------------------------------------------------

/// Share given to an empty bucket so that the logarithm stays finite.
inline constexpr double psi_epsilon = 1e-4;

/// Population stability index of `actual` against `expected` counts over the same
/// buckets: sum over buckets of (a - e) ln(a / e), a and e the buckets' shares, an
/// empty share counted as psi_epsilon.
inline double psi(const std::vector<double>& expected, const std::vector<double>& actual) {
  double te = 0, ta = 0;
  for (double v : expected)
    te += v;
  for (double v : actual)
    ta += v;
  double sum = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    double e = te > 0 ? expected[i] / te : 0, a = ta > 0 ? actual[i] / ta : 0;
    e = std::max(e, psi_epsilon);
    a = std::max(a, psi_epsilon);
    sum += (a - e) * std::log(a / e);
  }
  return sum;
}

} // namespace loom::ops::quality
