// profile — streaming per-column statistics of a table.
#include "quality.hpp"

#include <loom/params.hpp>

#include <memory>

namespace loom::ops {

using namespace quality;

class profile_op final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "profile", "0.1.0",
      "Computes per-column statistics of a table as it streams through, forwarding every frame "
      "unchanged on `out` (so it can sit inline in a pipeline). It streams: memory is bounded per "
      "column (a sample of `sample_size` values, a 16 KiB HyperLogLog, at most 10,000 category "
      "counts), never the table. For every column: count (non-null values), nulls, null_fraction, "
      "distinct (exact up to 4,096 distinct values, then a HyperLogLog of 2^14 registers: about "
      "0.8% relative standard error; distinct_exact says which). Numeric and bool columns: min, "
      "max, mean and std (sample standard deviation, n-1; exact, Welford's streaming algorithm). "
      "Numeric columns (i64, f32, f64): quantiles p01, p25, p50, p75, p99 (linear interpolation "
      "between order statistics, like numpy's default) and a histogram of 20 equal-width bins "
      "between min and max (one bin when min = max), both taken from a seeded uniform reservoir "
      "sample: exact while the column has at most `sample_size` values, beyond that a quantile's "
      "rank is off by about 0.5/sqrt(sample_size) (0.5% of the rows for 10,000) and each bin count "
      "is the sample's share times the count; NaN and infinities are counted as non_finite and "
      "left out of the numeric statistics. String and bool columns: the `top` most frequent values "
      "with their counts (exact up to 10,000 distinct values, then Misra-Gries with 1,000 "
      "counters, whose counts are lower bounds; top_exact says which). When the input ends it "
      "emits one Metrics message on `metrics` (values \"rows\" and \"<column>.<stat>\", each "
      "histogram as a curve \"<column>.histogram\" with x = lower bin edges), records every value "
      "as a node metric, and stores the full profile (histograms and top values included) as the "
      "JSON artifact `artifact` of the run. Save it with `loom runs show RUN --artifact "
      "profile.json -o profile.json` and give it to `validate` as `reference:` to check later "
      "data for drift.",
      "- id: stats\n  op: profile\n  inputs: load\n  with: {columns: [age, city], top: 10}\n"
      "- id: save\n  op: sink.csv\n  inputs: stats.out\n  with: {path: out/table.csv}\n"};
    s.inputs = {{"data", LOOM_MSG_FRAME, "the table to profile"}};
    s.outputs = {{"out", LOOM_MSG_FRAME, "the input frames, forwarded unchanged"},
                 {"metrics", LOOM_MSG_METRICS,
                  "one Metrics message at the end: \"rows\", \"<column>.<stat>\" values and the "
                  "histograms as curves"}};
    s.params = {
      {"columns", LOOM_PARAM_LIST, false, nullptr,
       "the columns to profile, in this order (default: every column, in table order)"},
      {"top", LOOM_PARAM_INT, false, "10", "how many most frequent values to keep for string and bool columns"},
      {"sample_size", LOOM_PARAM_INT, false, "10000",
       "values per numeric column kept in the reservoir sample behind quantiles and histograms"},
      {"seed", LOOM_PARAM_INT, false, "42", "seed of the reservoir sample (the same seed gives the same profile)"},
      {"artifact", LOOM_PARAM_STRING, false, "\"profile.json\"",
       "name of the JSON artifact stored with the run (change it when a graph has several profile nodes)"},
    };
    return s;
  }

  explicit profile_op(sdk::context& ctx)
    : columns_(sdk::param_strings(ctx, "columns")), top_(ctx.param_int("top")),
      sample_size_(ctx.param_int("sample_size")), seed_(ctx.param_int("seed")),
      artifact_(ctx.param_string("artifact")) {
    if (top_ < 0)
      throw sdk::error("top must be 0 or more, got " + std::to_string(top_));
    if (sample_size_ <= 0)
      throw sdk::error("sample_size must be positive, got " + std::to_string(sample_size_));
    if (artifact_.empty())
      throw sdk::error("artifact: give the artifact a name");
  }

  void on_input(sdk::context& ctx, uint32_t, const sdk::message& msg) override {
    auto f = sdk::frame_view::of(msg);
    if (!started_)
      start(f);
    for (auto& p : profiles_) {
      size_t c = f.require(p.name());
      if (f.type(c) != p.type())
        throw sdk::error("column '" + p.name() + "' changed type from " + sdk::to_string(p.type()) + " to " +
                           sdk::to_string(f.type(c)) + " in frame " + std::to_string(f.sequence()),
                         LOOM_ERR_BAD_DATA);
      p.add(f, c);
    }
    rows_ += f.num_rows();
    ctx.forward_message(0, msg);
  }

  void on_input_end(sdk::context& ctx, uint32_t) override {
    nlohmann::json profile;
    profile["format"] = profile_format;
    profile["rows"] = rows_;
    profile["columns"] = nlohmann::json::array();
    for (auto& p : profiles_)
      profile["columns"].push_back(p.to_json(static_cast<size_t>(top_)));
    auto m = profile_metrics(profile);
    m.record(ctx);
    ctx.artifact(artifact_, "application/json", profile.dump(2) + "\n");
    ctx.emit(1, m.finish());
    ctx.info("profiled " + std::to_string(profiles_.size()) + " columns of " + std::to_string(rows_) + " rows");
  }

private:
  void start(const sdk::frame_view& f) {
    started_ = true;
    std::vector<size_t> cols;
    if (columns_.empty())
      for (size_t c = 0; c < f.num_columns(); ++c)
        cols.push_back(c);
    else
      for (auto& n : columns_)
        cols.push_back(f.require(n));
    for (auto c : cols)
      profiles_.emplace_back(std::string(f.name(c)), f.type(c), static_cast<size_t>(sample_size_),
                             static_cast<uint64_t>(seed_) + c);
  }

  std::vector<std::string> columns_;
  int64_t top_, sample_size_, seed_;
  std::string artifact_;
  bool started_ = false;
  uint64_t rows_ = 0;
  std::vector<column_profile> profiles_;
};

extern const sdk::op_registration profile_registration = sdk::registration<profile_op>;

} // namespace loom::ops
