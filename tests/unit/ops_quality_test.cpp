// The loom-quality operators through the real executor: profile (statistics, distinct
// estimate, profile.json artifact) and validate (hand-written checks, PSI drift against a
// reference profile, fail and warn modes).
#include "run_env.hpp"

#include "loom/runtime/store.hpp"

#include "../../operators/quality/quality.hpp"

#include <cmath>
#include <numeric>
#include <random>

using namespace loom;
using loom::test::env;
using loom::test::node;
using loom::test::run_recorded;
using loom::test::read_file;
using loom::test::write_file;
using loom::test::contains;

namespace {

const nlohmann::json& column(const nlohmann::json& profile, const std::string& name) {
  for (auto& c : profile.at("columns"))
    if (c.at("name") == name)
      return c;
  FAIL("no column " << name << " in the profile");
  throw;
}

} // namespace

// ---- profile ---------------------------------------------------------------------------

TEST_CASE("profile: statistics of a small table, computed by hand", "[quality][profile]") {
  env e;
  write_file(e, "in.csv",
             "x,s,b,f\n"
             "1,a,true,0.5\n"
             "2,b,false,\n"
             "3,a,true,1.5\n"
             "4,,true,\n"
             ",a,false,2.5\n");
  auto run = run_recorded(e, R"(
name: prof
nodes:
  - {id: load, op: ingest.csv, with: {path: in.csv, frame_rows: 2}}
  - {id: p, op: profile, inputs: load.out}
  - {id: out, op: sink.csv, inputs: p.out, with: {path: out.csv}}
)");
  auto& r = run.result;
  REQUIRE(r.state == "succeeded");
  // the frames pass through unchanged
  CHECK(read_file(e, "out.csv") == "x,s,b,f\n1,a,true,0.5\n2,b,false,\n3,a,true,1.5\n4,,true,\n,a,false,2.5\n");
  CHECK(node(r, "p").rows_out == 5);
  auto& m = node(r, "p").metrics;
  CHECK(m.at("rows") == 5);
  // x = 1, 2, 3, 4, null
  CHECK(m.at("x.count") == 4);
  CHECK(m.at("x.nulls") == 1);
  CHECK(m.at("x.null_fraction") == Approx(0.2));
  CHECK(m.at("x.distinct") == 4);
  CHECK(m.at("x.distinct_exact") == 1);
  CHECK(m.at("x.min") == 1);
  CHECK(m.at("x.max") == 4);
  CHECK(m.at("x.mean") == Approx(2.5));
  CHECK(m.at("x.std") == Approx(std::sqrt(5.0 / 3.0))); // (2.25 + 0.25 + 0.25 + 2.25) / 3
  CHECK(m.at("x.p01") == Approx(1.03));                 // h = 3 * 0.01
  CHECK(m.at("x.p25") == Approx(1.75));
  CHECK(m.at("x.p50") == Approx(2.5));
  CHECK(m.at("x.p75") == Approx(3.25));
  CHECK(m.at("x.p99") == Approx(3.97));
  // f = 0.5, null, 1.5, null, 2.5
  CHECK(m.at("f.count") == 3);
  CHECK(m.at("f.nulls") == 2);
  CHECK(m.at("f.mean") == Approx(1.5));
  CHECK(m.at("f.std") == Approx(1.0));
  // s = a, b, a, null, a
  CHECK(m.at("s.count") == 4);
  CHECK(m.at("s.nulls") == 1);
  CHECK(m.at("s.distinct") == 2);
  CHECK(m.count("s.mean") == 0);
  // b = true, false, true, true, false
  CHECK(m.at("b.distinct") == 2);
  CHECK(m.at("b.mean") == Approx(0.6));

  auto profile = nlohmann::json::parse(run.artifact("profile.json"));
  CHECK(profile.at("format") == "loom.profile/1");
  CHECK(profile.at("rows") == 5);
  auto& s = column(profile, "s");
  CHECK(s.at("type") == "string");
  CHECK(s.at("top") == nlohmann::json::parse(R"([{"value":"a","count":3},{"value":"b","count":1}])"));
  CHECK(s.at("top_exact") == true);
  CHECK(column(profile, "b").at("top") ==
        nlohmann::json::parse(R"([{"value":"true","count":3},{"value":"false","count":2}])"));
  auto& x = column(profile, "x");
  CHECK(x.at("type") == "i64");
  // 20 bins of width 0.15 over [1, 4]: 1 -> bin 0, 2 -> bin 6, 3 -> bin 13, 4 -> last bin
  auto edges = x.at("histogram").at("edges").get<std::vector<double>>();
  auto counts = x.at("histogram").at("counts").get<std::vector<double>>();
  REQUIRE(edges.size() == 21);
  REQUIRE(counts.size() == 20);
  CHECK(edges.front() == 1);
  CHECK(edges.back() == 4);
  CHECK(edges[1] == Approx(1.15));
  std::vector<double> want(20, 0.0);
  want[0] = want[6] = want[13] = want[19] = 1;
  CHECK(counts == want);
  CHECK(x.at("histogram").at("exact") == true);
}

TEST_CASE("profile: quantiles, mean, std and histogram of 1..100", "[quality][profile]") {
  env e;
  std::vector<int> v(100);
  std::iota(v.begin(), v.end(), 1);
  std::mt19937 g(7);
  std::shuffle(v.begin(), v.end(), g); // order must not matter
  std::string csv = "v\n";
  for (int x : v)
    csv += std::to_string(x) + "\n";
  write_file(e, "in.csv", csv);
  auto run = run_recorded(e, R"(
name: q
nodes:
  - {id: load, op: ingest.csv, with: {path: in.csv, frame_rows: 7}}
  - {id: p, op: profile, inputs: load.out}
)");
  REQUIRE(run.result.state == "succeeded");
  auto& m = node(run.result, "p").metrics;
  // type 7: h = 99 q, so p01 = 1 + 0.99, p25 = 1 + 24.75, ...
  CHECK(m.at("v.p01") == Approx(1.99));
  CHECK(m.at("v.p25") == Approx(25.75));
  CHECK(m.at("v.p50") == Approx(50.5));
  CHECK(m.at("v.p75") == Approx(75.25));
  CHECK(m.at("v.p99") == Approx(99.01));
  CHECK(m.at("v.mean") == Approx(50.5));
  CHECK(m.at("v.std") == Approx(std::sqrt(100.0 * 101.0 / 12.0))); // (n^2-1)/12 * n/(n-1)
  CHECK(m.at("v.distinct") == 100);
  CHECK(m.at("v.min") == 1);
  CHECK(m.at("v.max") == 100);
  // bins of width 4.95 over [1, 100]: five integers in each
  auto x = column(nlohmann::json::parse(run.artifact("profile.json")), "v");
  CHECK(x.at("histogram").at("counts").get<std::vector<double>>() == std::vector<double>(20, 5.0));
}

TEST_CASE("profile: the distinct estimate of 100,000 distinct values is within 3%", "[quality][profile]") {
  env e;
  std::string csv = "id,name,dup\n";
  csv.reserve(3'000'000);
  for (int i = 0; i < 100000; ++i)
    csv += std::to_string(int64_t(i) * 7919 - 1000000) + ",user-" + std::to_string(i) + "," +
           std::to_string(i % 50) + "\n";
  write_file(e, "in.csv", csv);
  auto r = e.run(e.graph(R"(
name: hll
nodes:
  - {id: load, op: ingest.csv, with: {path: in.csv}}
  - {id: p, op: profile, inputs: load.out}
)"));
  REQUIRE(r.state == "succeeded");
  auto& m = node(r, "p").metrics;
  CHECK(m.at("rows") == 100000);
  CHECK(m.at("id.distinct_exact") == 0);
  CHECK(std::abs(m.at("id.distinct") - 100000) / 100000 < 0.03);
  CHECK(m.at("name.distinct_exact") == 0);
  CHECK(std::abs(m.at("name.distinct") - 100000) / 100000 < 0.03);
  CHECK(m.at("dup.distinct") == 50); // exact below the threshold
  CHECK(m.at("dup.distinct_exact") == 1);
  // beyond the 10,000-value sample the histogram is an estimate scaled to the count
  CHECK(m.at("dup.sample_exact") == 0);
  CHECK(m.at("dup.sample_size") == 10000);
  CHECK(m.at("dup.mean") == Approx(24.5));
}

namespace {
/// The named values of a Metrics message.
std::map<std::string, double> values_of(const fb::Metrics* m) {
  std::map<std::string, double> out;
  for (auto* x : *m->values())
    out[x->name()->str()] = x->value();
  return out;
}
} // namespace

TEST_CASE("profile: the Metrics message holds the values and histograms", "[quality][profile]") {
  auto profile = nlohmann::json::parse(R"({"format":"loom.profile/1","rows":3,"columns":[
    {"name":"x","type":"f64","count":3,"mean":2.0,"distinct_exact":true,
     "quantiles":{"p50":2.0},"histogram":{"edges":[1,2,3],"counts":[1,2]}}]})");
  auto buf = ops::quality::profile_metrics(profile).finish();
  flatbuffers::Verifier v(buf.data(), buf.size());
  REQUIRE(fb::MetricsBufferHasIdentifier(buf.data()));
  REQUIRE(fb::VerifyMetricsBuffer(v));
  auto* m = fb::GetMetrics(buf.data());
  auto values = values_of(m);
  CHECK(values == std::map<std::string, double>{{"rows", 3},     {"x.count", 3},         {"x.mean", 2},
                                                {"x.p50", 2},    {"x.distinct_exact", 1}});
  REQUIRE(m->curves()->size() == 1);
  CHECK(m->curves()->Get(0)->name()->str() == "x.histogram");
  CHECK(std::vector<double>(m->curves()->Get(0)->x()->begin(), m->curves()->Get(0)->x()->end()) ==
        std::vector<double>{1, 2});
  CHECK(std::vector<double>(m->curves()->Get(0)->y()->begin(), m->curves()->Get(0)->y()->end()) ==
        std::vector<double>{1, 2});
}

TEST_CASE("profile and validate: a running graph hands their Metrics messages downstream",
          "[quality][profile][validate]") {
  env e;
  write_file(e, "in.csv", "x,c\n1,a\n2,b\n3,a\n4,\n");
  auto r = e.run(e.graph(R"(
name: metrics
nodes:
  - {id: load, op: ingest.csv, with: {path: in.csv}}
  - {id: p, op: profile, inputs: load.out}
  - id: v
    op: validate
    inputs: p.out
    with: {expect: {x: {type: i64, min: 0, max: 3}, c: {nullable: false}}, on_failure: warn}
  - {id: pm, op: test.save, inputs: p.metrics, with: {path: profile.bin}}
  - {id: vm, op: test.save, inputs: v.report, with: {path: report.bin}}
  - {id: sink, op: sink.csv, inputs: v.out, with: {path: out.csv}}
)"));
  REQUIRE(r.state == "succeeded");
  CHECK(e.lines("out.csv").size() == 5); // warn: every row passed on
  // each Metrics message holds the same values as the node's metrics in the run record
  for (auto [id, file] : {std::pair<std::string, std::string>{"p", "profile.bin"}, {"v", "report.bin"}}) {
    INFO(id);
    auto bytes = read_file(e, file);
    flatbuffers::Verifier verify(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    REQUIRE(fb::MetricsBufferHasIdentifier(bytes.data()));
    REQUIRE(fb::VerifyMetricsBuffer(verify));
    auto values = values_of(fb::GetMetrics(bytes.data()));
    REQUIRE(!values.empty());
    auto& recorded = node(r, id).metrics;
    for (auto& [name, value] : values) {
      INFO(name);
      REQUIRE(recorded.count(name) == 1);
      CHECK(recorded.at(name) == Approx(value));
    }
  }
  auto pv = values_of(fb::GetMetrics(read_file(e, "profile.bin").data()));
  CHECK(pv.at("rows") == 4);
  CHECK(pv.at("x.mean") == Approx(2.5));
  CHECK(pv.at("c.nulls") == 1);
  CHECK(node(r, "v").metrics.at("checks.failed") == 2); // x max 3 (a 4), c nullable (one null)
}

TEST_CASE("profile: rejects a bad parameter and a missing column", "[quality][profile]") {
  env e;
  write_file(e, "in.csv", "a\n1\n");
  auto r = e.run(e.graph(R"(
name: bad
nodes:
  - {id: load, op: ingest.csv, with: {path: in.csv}}
  - {id: p, op: profile, inputs: load.out, with: {columns: [nope]}}
)"));
  CHECK(r.state == "failed");
  CHECK(contains(node(r, "p").error, "no column 'nope'"));
  r = e.run(e.graph(R"(
name: bad
nodes:
  - {id: load, op: ingest.csv, with: {path: in.csv}}
  - {id: p, op: profile, inputs: load.out, with: {sample_size: 0}}
)"));
  CHECK(r.state == "failed");
  CHECK(contains(node(r, "p").error, "sample_size must be positive"));
}

// ---- validate: hand-written expectations --------------------------------------------------

namespace {
const char* people = "age,city,score\n10,Paris,1.5\n20,Lyon,2.5\n-5,Nice,\n200,Paris,3.5\n";
}

TEST_CASE("validate: a table that meets every expectation passes and is passed on", "[quality][validate]") {
  env e;
  write_file(e, "in.csv", people);
  auto r = e.run(e.graph(R"(
name: ok
nodes:
  - {id: load, op: ingest.csv, with: {path: in.csv, frame_rows: 3}}
  - id: v
    op: validate
    inputs: load.out
    with:
      expect:
        age: {type: i64, nullable: false, min: -5, max: 200}
        city: {type: string, allowed: [Paris, Lyon, Nice]}
        score: {type: number, max_null_fraction: 0.25}
  - {id: out, op: sink.csv, inputs: v.out, with: {path: out.csv}}
)"));
  REQUIRE(r.state == "succeeded");
  CHECK(read_file(e, "out.csv") == people);
  auto& m = node(r, "v").metrics;
  // present x3, type x3, nullable, min, max, allowed, max_null_fraction
  CHECK(m.at("checks.total") == 11);
  CHECK(m.at("checks.failed") == 0);
  CHECK(m.at("checks.passed") == 11);
  CHECK(m.at("age.min.ok") == 1); // bounds are inclusive
  CHECK(m.at("age.max.ok") == 1);
  CHECK(m.at("score.null_fraction") == Approx(0.25));
  CHECK(m.at("score.max_null_fraction.ok") == 1);
  CHECK(m.at("rows") == 4);
}

TEST_CASE("validate: every kind of failed check is reported; fail fails the node and holds the table",
          "[quality][validate]") {
  env e;
  write_file(e, "in.csv", people);
  const std::string nodes = R"(
  - {id: load, op: ingest.csv, with: {path: in.csv}}
  - id: v
    op: validate
    inputs: load.out
    with:
      on_failure: MODE
      expect:
        nope: {type: i64}
        age: {type: f64, min: 0, max: 100}
        city: {allowed: [Paris, Lyon]}
        score: {nullable: false, max_null_fraction: 0.1}
  - {id: out, op: sink.csv, inputs: v.out, with: {path: out.csv}}
)";
  auto with_mode = [&](const std::string& mode) {
    auto s = nodes;
    s.replace(s.find("MODE"), 4, mode);
    return "name: bad\nnodes:" + s;
  };

  SECTION("fail") {
    auto r = e.run(e.graph(with_mode("fail")));
    REQUIRE(r.state == "failed");
    auto& err = node(r, "v").error;
    CHECK(contains(err, "7 of 10 checks failed"));
    CHECK(contains(err, "column 'nope' is missing"));
    CHECK(contains(err, "column 'age' is i64, expected f64"));
    CHECK(contains(err, "column 'age' has 1 values below min 0 (smallest -5)"));
    CHECK(contains(err, "column 'age' has 1 values above max 100 (largest 200)"));
    CHECK(contains(err, "column 'city' has 1 values not allowed (e.g. Nice)"));
    CHECK(contains(err, "column 'score' has 1 nulls but is not nullable"));
    CHECK(contains(err, "null fraction of 0.25"));
    // held: nothing reached the sink
    CHECK(node(r, "out").rows_in == 0);
  }
  SECTION("warn") {
    auto run = run_recorded(e, with_mode("warn"));
    auto& r = run.result;
    REQUIRE(r.state == "succeeded");
    CHECK(read_file(e, "out.csv") == people);
    auto& m = node(r, "v").metrics;
    CHECK(m.at("checks.total") == 10);
    CHECK(m.at("checks.failed") == 7);
    CHECK(m.at("nope.present.ok") == 0);
    CHECK(m.at("age.present.ok") == 1);
    CHECK(m.at("age.type.ok") == 0);
    CHECK(m.at("age.min.ok") == 0);
    CHECK(m.at("age.below_min") == 1);
    CHECK(m.at("age.max.ok") == 0);
    CHECK(m.at("age.above_max") == 1);
    CHECK(m.at("city.allowed.ok") == 0);
    CHECK(m.at("city.not_allowed") == 1);
    CHECK(m.at("score.nullable.ok") == 0);
    CHECK(m.at("score.nulls") == 1);
    CHECK(m.at("score.max_null_fraction.ok") == 0);
    size_t failed_lines = 0;
    for (auto& w : run.logs("warn"))
      failed_lines += contains(w, "check failed: ") ? 1 : 0;
    CHECK(failed_lines == 7);
  }
}

TEST_CASE("validate: hold: false streams the table even when it fails", "[quality][validate]") {
  env e;
  write_file(e, "in.csv", people);
  auto r = e.run(e.graph(R"(
name: stream
nodes:
  - {id: load, op: ingest.csv, with: {path: in.csv}}
  - {id: v, op: validate, inputs: load.out, with: {hold: false, expect: {age: {min: 0}}}}
)"));
  REQUIRE(r.state == "failed");
  CHECK(node(r, "v").rows_out == 4);
  CHECK(contains(node(r, "v").error, "1 of 2 checks failed"));
}

TEST_CASE("validate: bad parameters are refused with their name", "[quality][validate]") {
  env e;
  write_file(e, "in.csv", people);
  auto fails_with = [&](const std::string& with, const std::string& text) {
    auto r = e.run(e.graph("name: p\nnodes:\n  - {id: load, op: ingest.csv, with: {path: in.csv}}\n"
                           "  - {id: v, op: validate, inputs: load.out, with: " + with + "}\n"));
    CHECK(r.state == "failed");
    INFO(node(r, "v").error);
    CHECK(contains(node(r, "v").error, text));
  };
  fails_with("{}", "validate needs `expect`");
  fails_with("{expect: {age: {typ: i64}}}", "expect.age: unknown check 'typ'");
  fails_with("{expect: {age: {type: int32}}}", "expect.age.type: unknown type 'int32'");
  fails_with("{expect: {age: {min: 5, max: 1}}}", "min 5 is greater than max 1");
  fails_with("{expect: {age: {min: 0}}, on_failure: explode}", "on_failure must be fail or warn");
  fails_with("{reference: missing.json}", "reference: cannot open");
  write_file(e, "notprofile.json", "{\"a\": 1}");
  fails_with("{reference: notprofile.json}", "is not a profile");
}

// ---- validate: drift against a reference profile -----------------------------------------

TEST_CASE("validate: PSI against a reference, computed by hand", "[quality][validate][psi]") {
  env e;
  // reference: x half in [0, 1), half in [1, 2]; c: a 60, b 30, other 10
  write_file(e, "ref.json", R"({"format": "loom.profile/1", "rows": 100, "columns": [
    {"name": "x", "type": "f64", "count": 100, "histogram": {"edges": [0, 1, 2], "counts": [50, 50]}},
    {"name": "c", "type": "string", "count": 100,
     "top": [{"value": "a", "count": 60}, {"value": "b", "count": 30}]}]})");
  // now: x 80% in the first bin (10 of them below the reference range), 20% in the last
  // (5 above it); c: a 30, b 30, other (z) 40
  std::string csv = "x,c\n";
  for (int i = 0; i < 100; ++i) {
    double x = i < 10 ? -1.0 : i < 80 ? 0.5 : i < 95 ? 1.5 : 7.0;
    std::string c = i < 30 ? "a" : i < 60 ? "b" : "z";
    csv += std::to_string(x) + "," + c + "\n";
  }
  write_file(e, "in.csv", csv);
  // x: (0.8 - 0.5) ln(0.8 / 0.5) + (0.2 - 0.5) ln(0.2 / 0.5) = 0.3 ln 4
  const double psi_x = 0.3 * std::log(4.0);
  // c: (0.3 - 0.6) ln(0.5) + 0 + (0.4 - 0.1) ln(4) = 0.9 ln 2
  const double psi_c = 0.9 * std::log(2.0);

  SECTION("over the threshold: fails") {
    auto r = e.run(e.graph(R"(
name: drift
nodes:
  - {id: load, op: ingest.csv, with: {path: in.csv}}
  - {id: v, op: validate, inputs: load.out, with: {reference: ref.json}}
)"));
    REQUIRE(r.state == "failed");
    auto& m = node(r, "v").metrics;
    CHECK(m.at("x.psi") == Approx(psi_x));
    CHECK(m.at("c.psi") == Approx(psi_c));
    CHECK(m.at("x.psi.ok") == 0);
    CHECK(m.at("x.type.ok") == 1);
    CHECK(m.at("checks.failed") == 2);
    CHECK(contains(node(r, "v").error, "column 'x' drifted from the reference: PSI 0.41588"));
  }
  SECTION("under a higher threshold: passes") {
    auto r = e.run(e.graph(R"(
name: drift
nodes:
  - {id: load, op: ingest.csv, with: {path: in.csv}}
  - {id: v, op: validate, inputs: load.out, with: {reference: ref.json, psi_threshold: 0.7}}
)"));
    REQUIRE(r.state == "succeeded");
    CHECK(node(r, "v").metrics.at("x.psi.ok") == 1);
    CHECK(node(r, "v").metrics.at("c.psi.ok") == 1);
    CHECK(node(r, "v").metrics.at("checks.failed") == 0);
  }
}

TEST_CASE("validate: a reference column that is missing or of another type fails", "[quality][validate][psi]") {
  env e;
  write_file(e, "ref.json", R"({"format": "loom.profile/1", "rows": 2, "columns": [
    {"name": "x", "type": "f64", "count": 2, "histogram": {"edges": [0, 1], "counts": [2]}},
    {"name": "gone", "type": "i64", "count": 2}]})");
  write_file(e, "in.csv", "x\na\nb\n");
  auto r = e.run(e.graph(R"(
name: ref
nodes:
  - {id: load, op: ingest.csv, with: {path: in.csv}}
  - {id: v, op: validate, inputs: load.out, with: {reference: ref.json, on_failure: warn}}
)"));
  REQUIRE(r.state == "succeeded");
  auto& m = node(r, "v").metrics;
  CHECK(m.at("gone.present.ok") == 0);
  CHECK(m.at("x.type.ok") == 0);
  CHECK(m.at("x.psi.ok") == 0);
  CHECK(m.at("checks.failed") == 3);
}

TEST_CASE("validate: profile.json of one run is the reference of the next", "[quality][validate][psi]") {
  env e;
  auto table = [](int shift) {
    std::string csv = "x,color,ok\n";
    for (int i = 0; i < 1000; ++i)
      csv += std::to_string(i % 100 + shift) + "," + (i % 3 == 0 ? "red" : i % 3 == 1 ? "green" : "blue") + "," +
             (i % 4 == 0 ? "true" : "false") + "\n";
    return csv;
  };
  write_file(e, "train.csv", table(0));
  auto run = run_recorded(e, R"(
name: ref
nodes:
  - {id: load, op: ingest.csv, with: {path: train.csv}}
  - {id: p, op: profile, inputs: load.out}
)");
  REQUIRE(run.result.state == "succeeded");
  // what `loom runs show ID --artifact profile.json -o ref/profile.json` saves
  write_file(e, "ref/profile.json", run.artifact("profile.json"));

  const char* graph = R"(
name: check
nodes:
  - {id: load, op: ingest.csv, with: {path: data.csv}}
  - {id: v, op: validate, inputs: load.out, with: {reference: ref/profile.json}}
)";
  SECTION("the same data: no drift") {
    write_file(e, "data.csv", table(0));
    auto r = e.run(e.graph(graph));
    REQUIRE(r.state == "succeeded");
    auto& m = node(r, "v").metrics;
    CHECK(m.at("x.psi") == Approx(0.0).margin(1e-12));
    CHECK(m.at("color.psi") == Approx(0.0).margin(1e-12));
    CHECK(m.at("ok.psi") == Approx(0.0).margin(1e-12));
    // present and type for three columns, psi for three
    CHECK(m.at("checks.total") == 9);
    CHECK(m.at("checks.failed") == 0);
  }
  SECTION("shifted data: x drifts") {
    write_file(e, "data.csv", table(50));
    auto r = e.run(e.graph(graph));
    REQUIRE(r.state == "failed");
    auto& m = node(r, "v").metrics;
    // half the values fall into the last reference bin (x >= 95.05 -> 95..149, 55%), the
    // rest spread over bins 10..18 (50..94): shares 0.05 each in bins 10..18, 0.55 in bin 19
    // against 0.05 everywhere in the reference
    double ref = 0.05, psi = 0;
    for (int b = 0; b < 20; ++b) {
      double a = b < 10 ? 1e-4 : b < 19 ? 0.05 : 0.55;
      psi += (a - ref) * std::log(a / ref);
    }
    CHECK(m.at("x.psi") == Approx(psi));
    CHECK(m.at("x.psi.ok") == 0);
    CHECK(m.at("color.psi.ok") == 1);
    CHECK(m.at("checks.failed") == 1);
  }
}
