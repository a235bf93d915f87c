// validate — checks a table against expectations written by hand and/or a reference
// profile (drift by population stability index).
#include "quality.hpp"

#include <loom/params.hpp>

#include <cerrno>
#include <deque>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

namespace loom::ops {

using namespace quality;

namespace {

/// Whether a column of type `actual` satisfies the expected type name.
bool type_matches(const std::string& expected, sdk::col_type actual) {
  if (expected == "number")
    return is_numeric(actual);
  return expected == sdk::to_string(actual);
}

std::string canonical_type(const std::string& ctx_name, const std::string& t) {
  if (t == "i64" || t == "int")
    return "i64";
  if (t == "f64" || t == "float" || t == "double")
    return "f64";
  if (t == "f32" || t == "bool" || t == "string" || t == "number")
    return t;
  if (t == "str")
    return "string";
  throw sdk::error(ctx_name + ": unknown type '" + t + "' (use i64, f64, f32, bool, string or number)");
}

/// A JSON scalar as the text a frame cell of that value has (frame_view::text).
std::string scalar_text(const std::string& where, const nlohmann::json& v) {
  if (v.is_string())
    return v.get<std::string>();
  if (v.is_boolean())
    return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer())
    return std::to_string(v.get<int64_t>());
  if (v.is_number())
    return num_text(v.get<double>());
  throw sdk::error(where + ": every allowed value must be a string, number or bool, found " + v.dump());
}

double number_param(const std::string& where, const nlohmann::json& v) {
  if (!v.is_number())
    throw sdk::error(where + ": expected a number, found " + v.dump());
  return v.get<double>();
}

struct expectation {
  std::string column;
  std::optional<std::string> type;
  std::optional<bool> nullable;
  std::optional<double> min, max, max_null_fraction;
  std::optional<std::set<std::string>> allowed;
};

struct reference_column {
  std::string name, type;
  std::vector<double> edges, counts;  // numeric: the reference histogram
  std::vector<std::string> categories; // string/bool: the reference's top values ...
  std::vector<double> category_counts; // ... with their counts, and "other" last
  bool numeric() const { return !edges.empty(); }
  bool categorical() const { return !categories.empty(); }
  bool constant() const { return edges.size() == 2 && edges[0] == edges[1]; }
};

/// What the data showed for one column of interest.
struct observed {
  bool seen = false;    // in at least one frame
  bool missing = false; // absent from at least one frame
  sdk::col_type type = sdk::col_type::string;
  uint64_t rows = 0, nulls = 0, below = 0, above = 0, not_allowed = 0;
  double smallest = 0, largest = 0;
  std::vector<std::string> bad_examples;
  std::vector<double> bins;            // counts over the reference buckets
  std::map<std::string, size_t> index; // category -> bucket
};

struct check {
  std::string column, kind;
  bool ok = true;
  std::string detail; // why it failed
};

} // namespace

class validate_op final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "validate", "0.1.0",
      "Checks a table against expectations written by hand (`expect`) and/or a reference profile "
      "(`reference`), and fails the node or only warns (`on_failure`). It streams the checks (per "
      "column counts, bounded memory); with on_failure: fail and hold: true (the default) it holds "
      "the table in memory and passes it on only once every check passed, so nothing downstream "
      "sees a table that fails; otherwise frames are forwarded unchanged as they arrive. `expect` "
      "maps a column to its checks: type (i64, f64, f32, bool, string, or number for any numeric "
      "type), nullable (false: no nulls), min and max (inclusive bounds of every non-null value; "
      "numeric columns), allowed (the list of allowed values, compared as text, e.g. 1, 2.5, true, "
      "red), max_null_fraction (nulls / rows at most this). A column named in `expect` or in the "
      "reference must be present in every frame, else that is a failed check. `reference` is a "
      "profile.json written by the `profile` operator (`loom run` a graph with a profile node on "
      "the reference data, then `loom runs show RUN --artifact profile.json -o ref.json`); every "
      "column of it must be present with the same type, and its distribution must not drift: the "
      "population stability index PSI = sum over buckets of (a - r) ln(a / r), a and r the "
      "buckets' shares of the rows now and in the reference (an empty share counts as 0.0001), "
      "must be at most `psi_threshold` (0.1: small, 0.2: moderate, above: large shift). Numeric "
      "columns use the reference histogram's bins (values below or above the reference range go "
      "to the first or last bin; a constant reference column uses below/equal/above); string and "
      "bool columns use the reference's top values plus one bucket for every other value. Nulls "
      "are not part of the PSI (check them with max_null_fraction). Every check's result is "
      "recorded: metrics \"<column>.<check>.ok\" (1 passed, 0 failed; check is present, type, "
      "nullable, max_null_fraction, min, max, allowed, psi), the measures \"<column>.nulls\", "
      "\"<column>.null_fraction\", \"<column>.below_min\", \"<column>.above_max\", "
      "\"<column>.not_allowed\", \"<column>.psi\", and \"rows\", \"checks.total\", "
      "\"checks.passed\", \"checks.failed\" — as node metrics and one Metrics message on `report`. "
      "on_failure: fail fails the node with a message listing every failed check; warn logs one "
      "warning per failed check and succeeds.",
      "- id: check\n  op: validate\n  inputs: load\n  with:\n"
      "    expect:\n      age: {type: i64, nullable: false, min: 0, max: 120}\n"
      "      city: {type: string, allowed: [Paris, Lyon], max_null_fraction: 0.1}\n"
      "    reference: ref/profile.json\n    psi_threshold: 0.2\n    on_failure: fail\n"};
    s.inputs = {{"data", LOOM_MSG_FRAME, "the table to check"}};
    s.outputs = {{"out", LOOM_MSG_FRAME, "the input frames, unchanged (all of them: rows are never dropped)"},
                 {"report", LOOM_MSG_METRICS, "one Metrics message at the end with every check's result"}};
    s.params = {
      {"expect", LOOM_PARAM_MAP, false, nullptr,
       "column -> {type, nullable, min, max, allowed, max_null_fraction}: the checks written by hand"},
      {"reference", LOOM_PARAM_STRING, false, nullptr,
       "a profile.json artifact of the profile operator (relative to the graph file): columns, types "
       "and distributions to compare with"},
      {"psi_threshold", LOOM_PARAM_FLOAT, false, "0.2", "largest population stability index accepted per column"},
      {"on_failure", LOOM_PARAM_STRING, false, "\"fail\"",
       "fail: the node fails, listing every failed check; warn: log warnings, record metrics, succeed"},
      {"hold", LOOM_PARAM_BOOL, false, "true",
       "with on_failure: fail, hold the table in memory until every check passed (false: stream frames "
       "through; downstream may then have consumed some of a table that fails)"},
    };
    return s;
  }

  explicit validate_op(sdk::context& ctx) {
    auto all = sdk::params(ctx);
    auto mode = ctx.param_string("on_failure");
    if (mode != "fail" && mode != "warn")
      throw sdk::error("on_failure must be fail or warn, got '" + mode + "'");
    fail_ = mode == "fail";
    hold_ = fail_ && ctx.param_bool("hold");
    psi_threshold_ = ctx.param_float("psi_threshold");
    if (!(psi_threshold_ >= 0))
      throw sdk::error("psi_threshold must be 0 or more, got " + num_text(psi_threshold_));
    if (auto it = all.find("expect"); it != all.end() && !it->is_null())
      read_expect(*it);
    if (ctx.has_param("reference"))
      read_reference(ctx.resolve_path(ctx.param_string("reference")));
    if (expect_.empty() && reference_.empty())
      throw sdk::error("validate needs `expect` (checks by hand) or `reference` (a profile.json), or both");
    for (auto& e : expect_)
      watch(e.column);
    for (auto& r : reference_) {
      auto& o = watch(r.name);
      if (r.numeric())
        o.bins.assign(r.constant() ? 3 : r.counts.size(), 0.0);
      if (r.categorical()) {
        for (size_t i = 0; i < r.categories.size(); ++i)
          o.index[r.categories[i]] = i;
        o.bins.assign(r.categories.size() + 1, 0.0);
      }
    }
  }

  void on_input(sdk::context& ctx, uint32_t, const sdk::message& msg) override {
    auto f = sdk::frame_view::of(msg);
    rows_ += f.num_rows();
    for (auto& [name, o] : observed_) {
      int i = f.index(name);
      if (i < 0) {
        o.missing = true;
        o.rows += f.num_rows();
        o.nulls += f.num_rows();
        continue;
      }
      size_t c = static_cast<size_t>(i);
      if (!o.seen) {
        o.seen = true;
        o.type = f.type(c);
      } else if (f.type(c) != o.type) {
        throw sdk::error("column '" + name + "' changed type from " + sdk::to_string(o.type) + " to " +
                           sdk::to_string(f.type(c)) + " in frame " + std::to_string(f.sequence()),
                         LOOM_ERR_BAD_DATA);
      }
      scan(f, c, name, o);
    }
    if (hold_)
      held_.emplace_back(msg.bytes().begin(), msg.bytes().end());
    else
      ctx.forward_message(0, msg);
  }

  void on_input_end(sdk::context& ctx, uint32_t) override {
    std::vector<check> checks;
    metrics_out m;
    m.add("rows", static_cast<double>(rows_));
    evaluate(checks, m);
    size_t failed = 0;
    for (auto& c : checks) {
      m.add(c.column + "." + c.kind + ".ok", c.ok ? 1.0 : 0.0);
      failed += c.ok ? 0 : 1;
    }
    m.add("checks.total", static_cast<double>(checks.size()));
    m.add("checks.passed", static_cast<double>(checks.size() - failed));
    m.add("checks.failed", static_cast<double>(failed));
    m.record(ctx);
    ctx.emit(1, m.finish());
    if (failed == 0) {
      ctx.info("all " + std::to_string(checks.size()) + " checks passed on " + std::to_string(rows_) + " rows");
      return;
    }
    std::string list;
    for (auto& c : checks)
      if (!c.ok) {
        if (!fail_)
          ctx.warn("check failed: " + c.detail);
        list += (list.empty() ? "" : "; ") + c.detail;
      }
    std::string summary =
      std::to_string(failed) + " of " + std::to_string(checks.size()) + " checks failed: " + list;
    if (fail_)
      throw sdk::error("validation failed: " + summary, LOOM_ERR_BAD_DATA);
    ctx.warn("validation: " + summary + " (on_failure: warn, the table is passed on)");
  }

  bool produce(sdk::context& ctx) override {
    if (held_.empty())
      return true;
    ctx.emit(0, std::move(held_.front()));
    held_.pop_front();
    return held_.empty();
  }

private:
  observed& watch(const std::string& name) { return observed_[name]; }

  void read_expect(const nlohmann::json& j) {
    if (!j.is_object())
      throw sdk::error("expect: expected a map of column -> checks");
    static const std::set<std::string> known = {"type", "nullable", "min", "max", "allowed", "max_null_fraction"};
    for (auto& [col, spec] : j.items()) {
      std::string where = "expect." + col;
      if (!spec.is_object())
        throw sdk::error(where + ": expected a map of checks (type, nullable, min, max, allowed, max_null_fraction)");
      expectation e;
      e.column = col;
      for (auto& [k, v] : spec.items()) {
        if (!known.count(k))
          throw sdk::error(where + ": unknown check '" + k +
                           "' (known: type, nullable, min, max, allowed, max_null_fraction)");
        std::string w = where + "." + k;
        if (k == "type") {
          if (!v.is_string())
            throw sdk::error(w + ": expected a type name, found " + v.dump());
          e.type = canonical_type(w, v.get<std::string>());
        } else if (k == "nullable") {
          if (!v.is_boolean())
            throw sdk::error(w + ": expected true or false, found " + v.dump());
          e.nullable = v.get<bool>();
        } else if (k == "min") {
          e.min = number_param(w, v);
        } else if (k == "max") {
          e.max = number_param(w, v);
        } else if (k == "max_null_fraction") {
          e.max_null_fraction = number_param(w, v);
          if (*e.max_null_fraction < 0 || *e.max_null_fraction > 1)
            throw sdk::error(w + ": must be between 0 and 1, got " + v.dump());
        } else if (k == "allowed") {
          if (!v.is_array())
            throw sdk::error(w + ": expected a list of values, found " + v.dump());
          std::set<std::string> values;
          for (auto& x : v)
            values.insert(scalar_text(w, x));
          e.allowed = std::move(values);
        }
      }
      if (e.min && e.max && *e.min > *e.max)
        throw sdk::error(where + ": min " + num_text(*e.min) + " is greater than max " + num_text(*e.max));
      expect_.push_back(std::move(e));
    }
  }

  void read_reference(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
      throw sdk::error("reference: cannot open " + path + ": " + std::strerror(errno), LOOM_ERR_IO);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
      throw sdk::error("reference: " + path + " is not JSON: " + e.what());
    }
    if (!j.is_object() || j.value("format", "") != profile_format || !j.contains("columns") ||
        !j["columns"].is_array())
      throw sdk::error("reference: " + path + " is not a profile (expected a profile.json of the profile "
                       "operator, with \"format\": \"" + std::string(profile_format) + "\")");
    try {
      for (auto& c : j["columns"]) {
        reference_column r;
        r.name = c.at("name").get<std::string>();
        r.type = c.at("type").get<std::string>();
        if (c.contains("histogram")) {
          r.edges = c["histogram"].at("edges").get<std::vector<double>>();
          r.counts = c["histogram"].at("counts").get<std::vector<double>>();
          if (r.edges.size() < 2 || r.counts.size() + 1 != r.edges.size())
            throw sdk::error("histogram of '" + r.name + "' needs one edge more than it has counts");
        }
        if (c.contains("top") && !c["top"].empty()) {
          double listed = 0;
          for (auto& t : c["top"]) {
            r.categories.push_back(t.at("value").get<std::string>());
            r.category_counts.push_back(t.at("count").get<double>());
            listed += r.category_counts.back();
          }
          r.category_counts.push_back(std::max(0.0, c.at("count").get<double>() - listed));
        }
        reference_.push_back(std::move(r));
      }
    } catch (const sdk::error& e) {
      throw sdk::error("reference: " + path + ": " + e.what());
    } catch (const std::exception& e) {
      throw sdk::error("reference: " + path + ": malformed profile: " + e.what());
    }
  }

  const expectation* expected(const std::string& name) const {
    for (auto& e : expect_)
      if (e.column == name)
        return &e;
    return nullptr;
  }
  const reference_column* referenced(const std::string& name) const {
    for (auto& r : reference_)
      if (r.name == name)
        return &r;
    return nullptr;
  }

  void scan(const sdk::frame_view& f, size_t c, const std::string& name, observed& o) {
    const expectation* e = expected(name);
    const reference_column* ref = referenced(name);
    const bool numeric = is_numeric(o.type) || o.type == sdk::col_type::boolean;
    const bool bounds = e && (e->min || e->max) && numeric;
    const bool allowed = e && e->allowed;
    const bool bins = ref && ref->numeric() && numeric;
    const bool cats = ref && ref->categorical() && !is_numeric(o.type);
    for (size_t r = 0; r < f.num_rows(); ++r) {
      ++o.rows;
      if (!f.valid(c, r)) {
        ++o.nulls;
        continue;
      }
      if (bounds || bins) {
        double v = f.number(c, r);
        if (bounds && e->min && v < *e->min) {
          if (o.below++ == 0 || v < o.smallest)
            o.smallest = v;
        }
        if (bounds && e->max && v > *e->max) {
          if (o.above++ == 0 || v > o.largest)
            o.largest = v;
        }
        if (bins && std::isfinite(v)) {
          if (ref->constant())
            o.bins[v < ref->edges[0] ? 0 : v == ref->edges[0] ? 1 : 2] += 1;
          else
            o.bins[column_profile::bin_of(ref->edges, v)] += 1;
        }
      }
      if (allowed || cats) {
        std::string t = f.text(c, r);
        if (allowed && !e->allowed->count(t)) {
          ++o.not_allowed;
          if (o.bad_examples.size() < 5 &&
              std::find(o.bad_examples.begin(), o.bad_examples.end(), t) == o.bad_examples.end())
            o.bad_examples.push_back(t);
        }
        if (cats) {
          auto it = o.index.find(t);
          o.bins[it == o.index.end() ? o.bins.size() - 1 : it->second] += 1;
        }
      }
    }
  }

  /// The checks of one column: presence first; the others only when it is there.
  void evaluate(std::vector<check>& out, metrics_out& m) const {
    std::vector<std::string> order;
    for (auto& e : expect_)
      order.push_back(e.column);
    for (auto& r : reference_)
      if (!expected(r.name))
        order.push_back(r.name);
    for (auto& name : order) {
      const auto& o = observed_.at(name);
      const expectation* e = expected(name);
      const reference_column* ref = referenced(name);
      std::string col = "column '" + name + "'";
      bool present = o.seen && !o.missing;
      out.push_back({name, "present", present,
                     col + (o.seen ? " is missing from some frames" : " is missing (no such column in the input)")});
      if (!present)
        continue;
      std::string actual = sdk::to_string(o.type);
      std::string want = e && e->type ? *e->type : ref ? ref->type : "";
      if (!want.empty())
        out.push_back({name, "type", type_matches(want, o.type), col + " is " + actual + ", expected " + want});
      double frac = o.rows ? static_cast<double>(o.nulls) / static_cast<double>(o.rows) : 0.0;
      m.add(name + ".nulls", static_cast<double>(o.nulls));
      m.add(name + ".null_fraction", frac);
      if (e && e->nullable && !*e->nullable)
        out.push_back({name, "nullable", o.nulls == 0,
                       col + " has " + std::to_string(o.nulls) + " nulls but is not nullable"});
      if (e && e->max_null_fraction)
        out.push_back({name, "max_null_fraction", frac <= *e->max_null_fraction,
                       col + " has a null fraction of " + num_text(frac) + " (" + std::to_string(o.nulls) + " of " +
                         std::to_string(o.rows) + " rows), above max_null_fraction " +
                         num_text(*e->max_null_fraction)});
      bool numeric = is_numeric(o.type) || o.type == sdk::col_type::boolean;
      if (e && e->min) {
        m.add(name + ".below_min", static_cast<double>(o.below));
        out.push_back({name, "min", numeric && o.below == 0,
                       numeric ? col + " has " + std::to_string(o.below) + " values below min " + num_text(*e->min) +
                                   " (smallest " + num_text(o.smallest) + ")"
                               : col + " is " + actual + ": min needs a numeric column"});
      }
      if (e && e->max) {
        m.add(name + ".above_max", static_cast<double>(o.above));
        out.push_back({name, "max", numeric && o.above == 0,
                       numeric ? col + " has " + std::to_string(o.above) + " values above max " + num_text(*e->max) +
                                   " (largest " + num_text(o.largest) + ")"
                               : col + " is " + actual + ": max needs a numeric column"});
      }
      if (e && e->allowed) {
        m.add(name + ".not_allowed", static_cast<double>(o.not_allowed));
        std::string ex;
        for (auto& b : o.bad_examples)
          ex += (ex.empty() ? "" : ", ") + b;
        out.push_back({name, "allowed", o.not_allowed == 0,
                       col + " has " + std::to_string(o.not_allowed) + " values not allowed (e.g. " + ex + ")"});
      }
      if (ref && (ref->numeric() || ref->categorical())) {
        bool comparable = ref->numeric() ? (is_numeric(o.type) || o.type == sdk::col_type::boolean)
                                         : !is_numeric(o.type);
        if (!comparable) {
          out.push_back({name, "psi", false, col + " is " + actual + ": its distribution cannot be compared with the "
                                               "reference's (" + ref->type + ")"});
          continue;
        }
        std::vector<double> expected_counts =
          ref->numeric() ? (ref->constant() ? std::vector<double>{0, ref->counts[0], 0} : ref->counts)
                         : ref->category_counts;
        double value = psi(expected_counts, o.bins);
        m.add(name + ".psi", value);
        out.push_back({name, "psi", value <= psi_threshold_,
                       col + " drifted from the reference: PSI " + num_text(value) + " > psi_threshold " +
                         num_text(psi_threshold_)});
      }
    }
  }

  std::vector<expectation> expect_;
  std::vector<reference_column> reference_;
  std::map<std::string, observed> observed_;
  double psi_threshold_ = 0.2;
  bool fail_ = true, hold_ = true;
  uint64_t rows_ = 0;
  std::deque<std::vector<uint8_t>> held_;
};

extern const sdk::op_registration validate_registration = sdk::registration<validate_op>;

} // namespace loom::ops
