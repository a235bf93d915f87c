// The split operator through the real executor: fractions, exact counts, stratified,
// time (cutoffs and fractions), k-fold; determinism across frame sizes; bad parameters.
#include "run_env.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace loom;
using loom::test::env;
using loom::test::node;

namespace {

constexpr int N = 200;

// an independent implementation of the documented draw
uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
double draw(uint64_t seed, uint64_t identity) {
  return static_cast<double>(splitmix64(splitmix64(seed) ^ identity) >> 11) / 9007199254740992.0;
}
uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string cls_of(int i) {
  return i < 100 ? "a" : i < 160 ? "b" : i < 193 ? "c" : "d";
}
int t_of(int i) {
  return (i * 37) % N; // a permutation of 0..199
}
std::string day_of(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "2024-%02d-%02d", 1 + t_of(i) / 28, 1 + t_of(i) % 28);
  return buf;
}

/// id,cls,t,day,key with N rows
void write_data(env& e) {
  std::string text = "id,cls,t,day,key\n";
  for (int i = 0; i < N; ++i)
    text += std::to_string(i) + "," + cls_of(i) + "," + std::to_string(t_of(i)) + "," + day_of(i) + ",k" +
            std::to_string(i % 23) + "\n";
  loom::test::write_file(e, "in.csv", text);
}

std::string graph(const std::string& with, int frame_rows = 1000, const std::string& input = "in.csv") {
  return "name: s\nnodes:\n"
         "  - {id: load, op: ingest.csv, with: {path: " + input + ", frame_rows: " + std::to_string(frame_rows) + "}}\n"
         "  - {id: split, op: split, inputs: load.out, with: " + with + "}\n"
         "  - {id: tr, op: sink.csv, inputs: split.train, with: {path: out/train.csv}}\n"
         "  - {id: va, op: sink.csv, inputs: split.validation, with: {path: out/validation.csv}}\n"
         "  - {id: te, op: sink.csv, inputs: split.test, with: {path: out/test.csv}}\n"
         "  - {id: rj, op: sink.csv, inputs: split.rejects, with: {path: out/rejects.csv}}\n";
}

/// The first column of every data line of an output, as ints.
std::vector<int> ids(env& e, const std::string& which) {
  auto lines = e.lines("out/" + which + ".csv");
  REQUIRE(!lines.empty());
  std::vector<int> out;
  for (size_t i = 1; i < lines.size(); ++i)
    out.push_back(std::stoi(lines[i].substr(0, lines[i].find(','))));
  return out;
}

struct parts {
  std::vector<int> train, validation, test;
};

parts run_split(env& e, const std::string& with, int frame_rows = 1000) {
  auto r = e.run(e.graph(graph(with, frame_rows)));
  INFO(r.error);
  REQUIRE(r.state == "succeeded");
  parts p{ids(e, "train"), ids(e, "validation"), ids(e, "test")};
  auto& s = node(r, "split");
  CHECK(s.rows_in == N);
  CHECK(s.rows_rejected == 0);
  CHECK(s.rows_out == p.train.size() + p.validation.size() + p.test.size());
  CHECK(s.metrics.at("train") == p.train.size());
  CHECK(s.metrics.at("validation") == p.validation.size());
  CHECK(s.metrics.at("test") == p.test.size());
  return p;
}

/// Every row 0..N-1 is in exactly one part, and each part is in input order.
void check_complete(const parts& p) {
  std::vector<int> all;
  for (auto* v : {&p.train, &p.validation, &p.test}) {
    CHECK(std::is_sorted(v->begin(), v->end()));
    all.insert(all.end(), v->begin(), v->end());
  }
  std::sort(all.begin(), all.end());
  std::vector<int> expect(N);
  for (int i = 0; i < N; ++i)
    expect[i] = i;
  CHECK(all == expect);
}

std::map<std::string, int> class_counts(const std::vector<int>& v) {
  std::map<std::string, int> out;
  for (int i : v)
    ++out[cls_of(i)];
  return out;
}

std::string run_error(env& e, const std::string& with, const std::string& input = "in.csv") {
  auto r = e.run(e.graph(graph(with, 1000, input)));
  CHECK(r.state == "failed");
  return r.error;
}

} // namespace

TEST_CASE("split by fractions: each row's draw decides, as documented", "[split]") {
  env e;
  write_data(e);
  auto p = run_split(e, "{train: 0.7, validation: 0.2, test: 0.1, seed: 42}");
  parts expect;
  for (int i = 0; i < N; ++i) {
    double u = draw(42, static_cast<uint64_t>(i));
    (u < 0.7 ? expect.train : u < 0.9 ? expect.validation : expect.test).push_back(i);
  }
  CHECK(p.train == expect.train);
  CHECK(p.validation == expect.validation);
  CHECK(p.test == expect.test);
  check_complete(p);
  // roughly the fractions
  CHECK(p.train.size() > 120);
  CHECK(p.train.size() < 160);
  // the whole row travels: line of id 0 wherever it went
  auto all = e.lines("out/train.csv");
  CHECK(all[0] == "id,cls,t,day,key");
}

TEST_CASE("split defaults to 0.8/0.1/0.1 and missing fractions are 0 when some are given", "[split]") {
  env e;
  write_data(e);
  auto p = run_split(e, "{}");
  parts expect;
  for (int i = 0; i < N; ++i) {
    double u = draw(0, static_cast<uint64_t>(i));
    (u < 0.8 ? expect.train : u < 0.9 ? expect.validation : expect.test).push_back(i);
  }
  CHECK(p.train == expect.train);
  CHECK(p.validation == expect.validation);
  CHECK(p.test == expect.test);

  env e2;
  write_data(e2);
  auto q = run_split(e2, "{train: 0.75, test: 0.25, seed: 3}");
  CHECK(q.validation.empty());
  CHECK(e2.lines("out/validation.csv") == std::vector<std::string>{"id,cls,t,day,key"}); // header only
  check_complete(q);
}

TEST_CASE("split is the same whatever the frame size; another seed gives another split", "[split][determinism]") {
  for (std::string with : {"{train: 0.6, validation: 0.2, test: 0.2, seed: 9}",
                           "{train: 0.6, validation: 0.2, test: 0.2, seed: 9, exact: true}",
                           "{train: 0.6, validation: 0.2, test: 0.2, seed: 9, stratify: cls}",
                           "{train: 0.6, validation: 0.2, test: 0.2, seed: 9, key: key}",
                           "{folds: 4, fold: 1, seed: 9}", "{time_column: t, train: 0.5, validation: 0.3, test: 0.2}"}) {
    INFO(with);
    env a, b;
    write_data(a);
    write_data(b);
    auto pa = run_split(a, with, 7);
    auto pb = run_split(b, with, 1000);
    CHECK(pa.train == pb.train);
    CHECK(pa.validation == pb.validation);
    CHECK(pa.test == pb.test);
    for (auto w : {"train", "validation", "test"})
      CHECK(loom::test::read_file(a, std::string("out/") + w + ".csv") ==
            loom::test::read_file(b, std::string("out/") + w + ".csv"));
    check_complete(pa);
  }
  env c, d;
  write_data(c);
  write_data(d);
  auto p9 = run_split(c, "{train: 0.6, validation: 0.2, test: 0.2, seed: 9}");
  auto p10 = run_split(d, "{train: 0.6, validation: 0.2, test: 0.2, seed: 10}");
  CHECK(p9.train != p10.train);
  CHECK(p9.test != p10.test);
}

TEST_CASE("split with a key keeps rows of one key together", "[split]") {
  env e;
  write_data(e);
  auto p = run_split(e, "{train: 0.5, validation: 0.25, test: 0.25, seed: 5, key: key}");
  check_complete(p);
  std::map<int, std::string> where;
  for (int i : p.train)
    where[i] = "train";
  for (int i : p.validation)
    where[i] = "validation";
  for (int i : p.test)
    where[i] = "test";
  for (int i = 0; i < N; ++i) {
    double u = draw(5, fnv1a("k" + std::to_string(i % 23)));
    CHECK(where[i] == (u < 0.5 ? "train" : u < 0.75 ? "validation" : "test"));
    CHECK(where[i] == where[i % 23]);
  }
}

TEST_CASE("split exact: counts are the rounded fractions", "[split]") {
  env e;
  write_data(e);
  auto p = run_split(e, "{train: 0.7, validation: 0.15, test: 0.15, seed: 1, exact: true}");
  CHECK(p.train.size() == 140);
  CHECK(p.validation.size() == 30);
  CHECK(p.test.size() == 30);
  check_complete(p);
  // the 140 rows with the lowest draws are train
  std::vector<std::pair<uint64_t, int>> ranked;
  for (int i = 0; i < N; ++i)
    ranked.push_back({splitmix64(splitmix64(1) ^ static_cast<uint64_t>(i)), i});
  std::sort(ranked.begin(), ranked.end());
  std::vector<int> lowest;
  for (int k = 0; k < 140; ++k)
    lowest.push_back(ranked[k].second);
  std::sort(lowest.begin(), lowest.end());
  CHECK(p.train == lowest);
}

TEST_CASE("split stratified: per-class proportions as close as integer counts allow", "[split]") {
  env e;
  write_data(e);
  // classes a=100 b=60 c=33 d=7
  auto p = run_split(e, "{train: 0.7, validation: 0.15, test: 0.15, seed: 11, stratify: cls}");
  check_complete(p);
  CHECK(class_counts(p.train) == std::map<std::string, int>{{"a", 70}, {"b", 42}, {"c", 23}, {"d", 5}});
  CHECK(class_counts(p.validation) == std::map<std::string, int>{{"a", 15}, {"b", 9}, {"c", 5}, {"d", 1}});
  CHECK(class_counts(p.test) == std::map<std::string, int>{{"a", 15}, {"b", 9}, {"c", 5}, {"d", 1}});

  env e2;
  write_data(e2);
  auto q = run_split(e2, "{train: 0.5, validation: 0.25, test: 0.25, seed: 11, stratify: cls}");
  // d: 3.5/1.75/1.75 -> 3/2/2 (largest remainders); c: 16.5/8.25/8.25 -> 17/8/8
  CHECK(class_counts(q.train) == std::map<std::string, int>{{"a", 50}, {"b", 30}, {"c", 17}, {"d", 3}});
  CHECK(class_counts(q.validation) == std::map<std::string, int>{{"a", 25}, {"b", 15}, {"c", 8}, {"d", 2}});
  CHECK(class_counts(q.test) == std::map<std::string, int>{{"a", 25}, {"b", 15}, {"c", 8}, {"d", 2}});
}

TEST_CASE("split k-fold: every row is validation exactly once over the folds", "[split][kfold]") {
  for (std::string extra : {"", ", stratify: cls"}) {
    INFO(extra);
    std::vector<int> seen(N, 0);
    for (int i = 0; i < 5; ++i) {
      env e;
      write_data(e);
      auto p = run_split(e, "{folds: 5, fold: " + std::to_string(i) + ", seed: 3" + extra + "}");
      CHECK(p.test.empty());
      check_complete(p);
      for (int v : p.validation)
        ++seen[v];
      if (extra.empty()) {
        std::vector<int> expect;
        for (int r = 0; r < N; ++r)
          if (static_cast<int>(std::floor(draw(3, static_cast<uint64_t>(r)) * 5)) == i)
            expect.push_back(r);
        CHECK(p.validation == expect);
      } else {
        // stratified folds: 100/5, 60/5, 33/5 -> 6 or 7, 7/5 -> 1 or 2
        auto c = class_counts(p.validation);
        CHECK(c["a"] == 20);
        CHECK(c["b"] == 12);
        CHECK((c["c"] == 6 || c["c"] == 7));
        CHECK((c["d"] == 1 || c["d"] == 2));
      }
    }
    CHECK(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
  }
}

TEST_CASE("split by time cutoffs, numeric and ISO dates; null times are rejected", "[split][time]") {
  env e;
  write_data(e);
  auto p = run_split(e, "{time_column: t, cutoffs: {validation: 120, test: 170}}");
  check_complete(p);
  for (int i : p.train)
    CHECK(t_of(i) < 120);
  for (int i : p.validation)
    CHECK((t_of(i) >= 120 && t_of(i) < 170));
  for (int i : p.test)
    CHECK(t_of(i) >= 170);
  CHECK(p.train.size() == 120);
  CHECK(p.validation.size() == 50);
  CHECK(p.test.size() == 30);

  env s;
  write_data(s);
  // day_of: t -> month 1 + t/28, day 1 + t%28; "2024-05-01" is t = 112, "2024-07-15" is t = 182
  auto q = run_split(s, "{time_column: day, cutoffs: {validation: \"2024-05-01\", test: \"2024-07-15\"}}");
  CHECK(q.train.size() == 112);
  CHECK(q.validation.size() == 70);
  CHECK(q.test.size() == 18);
  for (int i : q.validation)
    CHECK((t_of(i) >= 112 && t_of(i) < 182));

  env o; // only a test cutoff: no validation rows
  write_data(o);
  auto only = run_split(o, "{time_column: t, cutoffs: {test: 150}}");
  CHECK(only.train.size() == 150);
  CHECK(only.validation.empty());
  CHECK(only.test.size() == 50);

  env m;
  loom::test::write_file(m, "m.csv", "id,t\n1,5\n2,\n3,nan\n4,50\n5,20\n");
  auto r = m.run(m.graph(graph("{time_column: t, cutoffs: {validation: 10, test: 30}}", 1000, "m.csv")));
  REQUIRE(r.state == "succeeded");
  CHECK(ids(m, "train") == std::vector<int>{1});
  CHECK(ids(m, "validation") == std::vector<int>{5});
  CHECK(ids(m, "test") == std::vector<int>{4});
  CHECK(m.lines("out/rejects.csv") ==
        std::vector<std::string>{"reason,id,t", "time_column 't' is null,2,", "time_column 't' is NaN,3,nan"});
  auto& n = node(r, "split");
  CHECK(n.rows_in == 5);
  CHECK(n.rows_rejected == 2);
  CHECK(n.rows_out == 3);
  CHECK(n.rows_in == n.rows_out + n.rows_rejected);
  CHECK(n.metrics.at("rejected") == 2);
}

TEST_CASE("split by time fractions: earliest rows train, ties never straddle a boundary", "[split][time]") {
  env e;
  write_data(e);
  auto p = run_split(e, "{time_column: t, train: 0.5, validation: 0.3, test: 0.2}");
  for (int i : p.train)
    CHECK(t_of(i) < 100);
  for (int i : p.validation)
    CHECK((t_of(i) >= 100 && t_of(i) < 160));
  CHECK(p.test.size() == 40);

  env m;
  // times 1,2,2,2,3,4,5,5,6,7: the train cut after 4 rows falls inside the 2s -> they all join train
  loom::test::write_file(m, "m.csv", "id,t\n0,2\n1,1\n2,2\n3,5\n4,2\n5,3\n6,4\n7,5\n8,6\n9,7\n");
  auto r = m.run(m.graph(graph("{time_column: t, train: 0.3, validation: 0.4, test: 0.3}", 3, "m.csv")));
  REQUIRE(r.state == "succeeded");
  CHECK(ids(m, "train") == std::vector<int>{0, 1, 2, 4});      // 3 by count, the tie adds one
  CHECK(ids(m, "validation") == std::vector<int>{3, 5, 6, 7}); // up to 7 by count, 5s kept together
  CHECK(ids(m, "test") == std::vector<int>{8, 9});
}

TEST_CASE("split rejects bad parameters, naming them", "[split][errors]") {
  env e;
  write_data(e);
  auto has = [](const std::string& err, const std::string& part) {
    INFO(err);
    CHECK(err.find(part) != std::string::npos);
  };
  has(run_error(e, "{train: 0.7, validation: 0.2, test: 0.2}"), "train + validation + test must sum to 1");
  has(run_error(e, "{train: 1.2, validation: -0.2}"), "parameter 'train' must be a fraction in [0, 1], got 1.2");
  has(run_error(e, "{train: 0.9, validation: -0.1, test: 0.2}"), "parameter 'validation' must be a fraction");
  has(run_error(e, "{stratify: klass}"), "parameter 'stratify': no column 'klass' in the input (columns: id (i64)");
  has(run_error(e, "{key: nope}"), "parameter 'key': no column 'nope'");
  has(run_error(e, "{time_column: when, cutoffs: {test: 3}}"), "parameter 'time_column': no column 'when'");
  has(run_error(e, "{folds: 1}"), "parameter 'folds' must be at least 2");
  has(run_error(e, "{folds: 3, fold: 3}"), "parameter 'fold' must be in 0..2, got 3");
  has(run_error(e, "{fold: 2}"), "parameter 'fold' needs 'folds'");
  has(run_error(e, "{folds: 3, train: 1.0}"), "'folds' cannot be combined");
  has(run_error(e, "{cutoffs: {test: 3}}"), "parameter 'cutoffs' needs 'time_column'");
  has(run_error(e, "{time_column: t, cutoffs: {tset: 3}}"), "unknown entry 'tset'");
  has(run_error(e, "{time_column: t, cutoffs: {test: soon}}"), "parameter 'cutoffs.test': column 't' is numeric");
  has(run_error(e, "{time_column: day, cutoffs: {test: 5}}"), "parameter 'cutoffs.test': column 'day' holds strings");
  has(run_error(e, "{time_column: t, cutoffs: {validation: 9, test: 3}}"), "must not be later than test");
  has(run_error(e, "{time_column: t, stratify: cls}"), "'stratify' cannot be combined with 'time_column'");
}
