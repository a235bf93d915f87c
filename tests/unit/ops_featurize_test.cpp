// featurize.fit / featurize.apply: fitted on a train table, applied to a test table
// through real graphs; every expected value is computed here from the raw inputs.
#include "run_env.hpp"
#include "sink_table.hpp"

#include <loom/fb/model_generated.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

using loom::test::contains;
using loom::test::env;
using loom::test::node;
using loom::test::read_file;
using loom::test::write_file;

namespace {

using table = loom::test::sink_table;

table read_csv(env& e, const std::string& file) { return table::parse(read_file(e, file)); }

// FNV-1a 64, written out here to check the operator's buckets
uint64_t fnv(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s)
    h = (h ^ c) * 0x100000001b3ull;
  return h;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v)
    s += x;
  return s / static_cast<double>(v.size());
}

double pop_std_of(const std::vector<double>& v) {
  double m = mean_of(v), s = 0;
  for (double x : v)
    s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size()));
}

/// A graph: train.csv -> fit (with `with`) -> train_out.csv; test.csv + state -> apply -> test_out.csv.
std::string fit_apply_graph(const std::string& with, const std::string& train_opts = "") {
  return "name: f\nnodes:\n"
         "  - {id: train, op: ingest.csv, with: {path: train.csv" + train_opts + "}}\n"
         "  - {id: test, op: ingest.csv, with: {path: test.csv}}\n"
         "  - id: fit\n    op: featurize.fit\n    inputs: train.out\n    with:\n" + with +
         "  - {id: apply, op: featurize.apply, inputs: {state: fit.state, data: test.out}}\n"
         "  - {id: train_out, op: sink.csv, inputs: fit.out, with: {path: train_out.csv}}\n"
         "  - {id: test_out, op: sink.csv, inputs: apply.out, with: {path: test_out.csv}}\n"
         "  - {id: fit_rejects, op: sink.csv, inputs: fit.rejects, with: {path: fit_rejects.csv}}\n"
         "  - {id: apply_rejects, op: sink.csv, inputs: apply.rejects, with: {path: apply_rejects.csv}}\n";
}

/// Runs a graph expected to fail and returns its error.
std::string failure(env& e, const std::string& yaml) {
  auto r = e.run(e.graph(yaml));
  CHECK(r.state == "failed");
  return r.error;
}

} // namespace

TEST_CASE("numeric transforms apply train statistics to the test split", "[featurize]") {
  env e;
  write_file(e, "train.csv", "id,price,rooms,area,label\n1,10,1,0,a\n2,20,2,3,b\n3,30,3,,a\n4,60,4,7,b\n5,,2,1,a\n");
  write_file(e, "test.csv", "id,price,rooms,area,label\n6,25,10,1,a\n7,,0,15,b\n8,100,2.5,,a\n");
  auto r = e.run(e.graph(fit_apply_graph(R"(      transforms:
        - {column: price, op: standardize}
        - {column: price, op: minmax, output: price_mm}
        - {column: price, op: minmax, output: price_clip, clip: true, fill: -1}
        - {column: rooms, op: bucketize, bins: 2}
        - {column: rooms, op: bucketize, boundaries: [2, 3], output: rooms_b, fill: 9}
        - {column: area, op: log, fill: -1}
)", ", frame_rows: 2")));
  REQUIRE(r.state == "succeeded");

  std::vector<double> price{10, 20, 30, 60}; // the non-null training prices
  double mean = mean_of(price), sd = pop_std_of(price);
  // rooms 1 2 3 4 2 -> sorted 1 2 2 3 4; the median (numpy linear) is 2
  auto test = read_csv(e, "test_out.csv");
  CHECK(test.header == std::vector<std::string>{"id", "price", "price_mm", "price_clip", "rooms", "rooms_b", "area",
                                                 "label"});
  REQUIRE(test.rows.size() == 3);
  CHECK(test.num(0, "price") == Approx((25 - mean) / sd).epsilon(1e-12));
  CHECK(test.at(1, "price").empty()); // null stays null
  CHECK(test.num(2, "price") == Approx((100 - mean) / sd).epsilon(1e-12));
  CHECK(test.num(0, "price_mm") == Approx((25.0 - 10) / (60 - 10)));
  CHECK(test.num(2, "price_mm") == Approx((100.0 - 10) / (60 - 10))); // not clipped
  CHECK(test.num(2, "price_clip") == 1.0);
  CHECK(test.num(1, "price_clip") == -1.0); // fill
  CHECK(test.at(0, "rooms") == "1");        // 10 >= 2
  CHECK(test.at(1, "rooms") == "0");
  CHECK(test.at(2, "rooms") == "1");   // 2.5 >= 2
  CHECK(test.at(0, "rooms_b") == "2"); // 10 >= 3
  CHECK(test.at(1, "rooms_b") == "0");
  CHECK(test.at(2, "rooms_b") == "1");
  CHECK(test.num(0, "area") == Approx(std::log(2.0)).epsilon(1e-12));
  CHECK(test.num(1, "area") == Approx(std::log(16.0)).epsilon(1e-12));
  CHECK(test.num(2, "area") == -1.0);
  CHECK(test.at(1, "label") == "b"); // untouched columns pass through

  auto train = read_csv(e, "train_out.csv");
  REQUIRE(train.rows.size() == 5);
  CHECK(train.num(3, "price") == Approx((60 - mean) / sd).epsilon(1e-12));
  CHECK(train.num(0, "price_mm") == 0.0);
  CHECK(train.num(3, "price_mm") == 1.0);
  std::vector<std::string> buckets;
  for (size_t i = 0; i < 5; ++i)
    buckets.push_back(train.at(i, "rooms"));
  CHECK(buckets == std::vector<std::string>{"0", "1", "1", "1", "1"});
  CHECK(train.num(2, "area") == -1.0);

  CHECK(node(r, "fit").rows_in == 5);
  CHECK(node(r, "fit").rows_out == 5);
  CHECK(node(r, "fit").metrics.at("rows_fitted") == 5);
  CHECK(node(r, "apply").rows_in == 3);
  CHECK(node(r, "apply").rows_out == 3);
  CHECK(node(r, "fit").frames_in == 3); // frame_rows: 2 -> three training frames
}

TEST_CASE("quantile bins follow the training distribution", "[featurize]") {
  env e;
  // 0..9: the quartiles (numpy linear) are 2.25, 4.5, 6.75
  std::string train = "x\n";
  for (int i = 9; i >= 0; --i)
    train += std::to_string(i) + "\n";
  write_file(e, "train.csv", train);
  write_file(e, "test.csv", "x\n2.25\n2.2\n6.8\n100\n-5\n"); // bucket = boundaries <= x
  auto r = e.run(e.graph(fit_apply_graph("      transforms: [{column: x, op: bucketize, bins: 4}]\n")));
  REQUIRE(r.state == "succeeded");
  CHECK(e.lines("test_out.csv") == std::vector<std::string>{"x", "1", "0", "3", "3", "0"});
  CHECK(e.lines("train_out.csv") ==
        std::vector<std::string>{"x", "3", "3", "3", "2", "2", "1", "1", "0", "0", "0"});
}

TEST_CASE("categories are fitted on train; unseen values go to the unknown slot", "[featurize]") {
  env e;
  write_file(e, "train.csv", "city,n\nparis,1\nlondon,2\nparis,3\nberlin,4\nparis,5\nlondon,6\n,7\nrome,8\n");
  write_file(e, "test.csv", "city,n\nrome,1\ntokyo,2\n,3\nparis,4\nlondon,5\n");
  auto r = e.run(e.graph(fit_apply_graph(R"(      transforms:
        - {column: city, op: one_hot, max_categories: 3}
        - {column: city, op: ordinal, output: city_idx}
        - {column: city, op: one_hot, output: all}
        - {column: city, op: hash, buckets: 8, output: h}
        - {column: n, op: ordinal, output: n_ord, keep_input: true}
)")));
  REQUIRE(r.state == "succeeded");
  auto t = read_csv(e, "test_out.csv");
  // counts: paris 3, london 2, and 1 each for __null__, berlin, rome: the three most
  // frequent are paris, london and (smallest of the ties) __null__, sorted by value
  std::vector<std::string> expect{"city=__null__", "city=london", "city=paris", "city=__unknown__", "city_idx"};
  for (const char* c : {"__null__", "berlin", "london", "paris", "rome", "__unknown__"})
    expect.push_back(std::string("all=") + c);
  for (int i = 0; i < 8; ++i)
    expect.push_back("h#" + std::to_string(i));
  for (const char* c : {"n", "n_ord"})
    expect.push_back(c);
  CHECK(t.header == expect);
  REQUIRE(t.rows.size() == 5);
  auto hot = [&](size_t row, const std::string& prefix) {
    std::string which;
    for (size_t c = 0; c < t.header.size(); ++c)
      if (t.header[c].rfind(prefix, 0) == 0) {
        CHECK((t.rows[row][c] == "0" || t.rows[row][c] == "1"));
        if (t.rows[row][c] == "1") {
          CHECK(which.empty());
          which = t.header[c];
        }
      }
    return which;
  };
  CHECK(hot(0, "city=") == "city=__unknown__"); // rome: seen, but too rare for max_categories
  CHECK(hot(1, "city=") == "city=__unknown__"); // tokyo: unseen
  CHECK(hot(2, "city=") == "city=__null__");
  CHECK(hot(3, "city=") == "city=paris");
  CHECK(hot(4, "city=") == "city=london");
  CHECK(hot(0, "all=") == "all=rome");
  CHECK(hot(1, "all=") == "all=__unknown__");
  CHECK(hot(2, "all=") == "all=__null__");
  // ordinal: __null__ 0, berlin 1, london 2, paris 3, rome 4
  std::vector<std::string> idx;
  for (size_t i = 0; i < 5; ++i)
    idx.push_back(t.at(i, "city_idx"));
  CHECK(idx == std::vector<std::string>{"4", "-1", "0", "3", "2"});
  // feature hashing: FNV-1a 64 of the value's bytes, modulo 8 (null is "__null__")
  CHECK(fnv("") == 0xcbf29ce484222325ull);
  CHECK(fnv("a") == 0xaf63dc4c8601ec8cull); // the published FNV-1a test vector
  std::vector<std::string> values{"rome", "tokyo", "__null__", "paris", "london"};
  for (size_t i = 0; i < values.size(); ++i)
    CHECK(hot(i, "h#") == "h#" + std::to_string(fnv(values[i]) % 8));
  // an i64 column is categorical through its text: "1".."8" sorted, so n - 1
  for (size_t i = 0; i < 5; ++i) {
    CHECK(t.at(i, "n") == std::to_string(i + 1));
    CHECK(t.at(i, "n_ord") == std::to_string(i));
  }
}

TEST_CASE("tf-idf and the hashing vectorizer match hand-computed values", "[featurize][text]") {
  env e;
  write_file(e, "train.csv", "id,text\n1,The cat sat\n2,\"the cat ran, the dog ran\"\n3,a bird\n");
  write_file(e, "test.csv", "id,text\n4,The dog and the unicorn\n5,\n6,CAT cat\n");
  auto r = e.run(e.graph(fit_apply_graph(R"(      transforms:
        - {column: text, op: tfidf}
        - {column: text, op: tfidf, min_df: 2, output: df2}
        - {column: text, op: tfidf, max_features: 3, output: top3}
        - {column: text, op: tfidf, ngrams: [1, 2], min_df: 2, output: bi}
        - {column: text, op: tfidf, min_token_length: 4, output: long}
        - {column: text, op: tfidf, lowercase: false, output: cs}
        - {column: text, op: hashing, buckets: 4, output: h}
        - {column: text, op: hashing, buckets: 4, ngrams: [2, 2], output: h2}
)")));
  REQUIRE(r.state == "succeeded");
  auto t = read_csv(e, "test_out.csv");
  auto columns = [&](const std::string& prefix) {
    std::vector<std::string> out;
    for (auto& h : t.header)
      if (h.rfind(prefix, 0) == 0)
        out.push_back(h.substr(prefix.size()));
    return out;
  };
  // train documents: {the, cat, sat}, {the, cat, ran, the, dog, ran}, {a, bird}
  CHECK(columns("text:") == std::vector<std::string>{"a", "bird", "cat", "dog", "ran", "sat", "the"});
  CHECK(columns("df2:") == std::vector<std::string>{"cat", "the"});
  CHECK(columns("top3:") == std::vector<std::string>{"cat", "ran", "the"}); // totals: the 3, cat 2, ran 2
  CHECK(columns("bi:") == std::vector<std::string>{"cat", "the", "the cat"});
  CHECK(columns("long:") == std::vector<std::string>{"bird"});
  CHECK(columns("cs:") == std::vector<std::string>{"The", "a", "bird", "cat", "dog", "ran", "sat", "the"});

  const double n = 3;
  double idf1 = std::log((1 + n) / (1 + 1)) + 1; // df 1
  double idf2 = std::log((1 + n) / (1 + 2)) + 1; // df 2
  // test doc 4: "the" twice, "dog" once, "and" and "unicorn" unknown
  double norm = std::sqrt(std::pow(2 * idf2, 2) + std::pow(idf1, 2));
  CHECK(t.num(0, "text:the") == Approx(2 * idf2 / norm).epsilon(1e-6));
  CHECK(t.num(0, "text:dog") == Approx(idf1 / norm).epsilon(1e-6));
  for (const char* term : {"a", "bird", "cat", "ran", "sat"})
    CHECK(t.num(0, std::string("text:") + term) == 0.0);
  CHECK(t.num(0, "df2:the") == 1.0);
  CHECK(t.num(0, "df2:cat") == 0.0);
  // an empty (null) document: all zeros
  for (auto& term : columns("text:"))
    CHECK(t.num(1, "text:" + term) == 0.0);
  CHECK(t.num(2, "text:cat") == 1.0);
  CHECK(t.num(2, "cs:cat") == 1.0); // "CAT" is unknown when case is kept
  CHECK(t.num(0, "cs:The") == Approx(idf1 / std::sqrt(2 * idf1 * idf1 + idf1 * idf1)).epsilon(1e-6));

  // the training rows: doc 1 = the, cat, sat
  auto train = read_csv(e, "train_out.csv");
  double n1 = std::sqrt(2 * idf2 * idf2 + idf1 * idf1);
  CHECK(train.num(0, "text:the") == Approx(idf2 / n1).epsilon(1e-6));
  CHECK(train.num(0, "text:sat") == Approx(idf1 / n1).epsilon(1e-6));
  // bigram "the cat" is in docs 1 and 2: idf2 like "the" and "cat"
  CHECK(train.num(0, "bi:the cat") == Approx(1 / std::sqrt(3.0)).epsilon(1e-6));

  // hashing vectorizer: term counts per FNV-1a bucket
  std::vector<double> counts(4, 0), counts2(4, 0);
  for (const char* term : {"the", "dog", "and", "the", "unicorn"})
    counts[fnv(term) % 4] += 1;
  for (const char* term : {"the dog", "dog and", "and the", "the unicorn"})
    counts2[fnv(term) % 4] += 1;
  for (int i = 0; i < 4; ++i) {
    CHECK(t.num(0, "h#" + std::to_string(i)) == counts[static_cast<size_t>(i)]);
    CHECK(t.num(0, "h2#" + std::to_string(i)) == counts2[static_cast<size_t>(i)]);
    CHECK(t.num(1, "h#" + std::to_string(i)) == 0.0);
  }
  CHECK(t.at(0, "id") == "4");
}

TEST_CASE("featurize.fit: a save path that cannot be written fails the node and leaves nothing", "[featurize]") {
  env e;
  write_file(e, "train.csv", "price\n10\n20\n");
  write_file(e, "test.csv", "price\n1\n");
  // the parent "directory" is a file: neither the model nor a temporary file can appear
  auto r = e.run(e.graph(fit_apply_graph("      save: train.csv/state.lmmd\n"
                                         "      transforms: [{column: price, op: standardize}]\n")));
  CHECK(r.state == "failed");
  CHECK(contains(node(r, "fit").error, "cannot write " + e.dir + "/train.csv/state.lmmd.tmp-"));
  CHECK(read_file(e, "train.csv") == "price\n10\n20\n");
  for (auto& entry : std::filesystem::directory_iterator(e.dir))
    CHECK(entry.path().filename().string().find(".tmp-") == std::string::npos);
}

TEST_CASE("the state is a featurizer Model whose preprocessing holds the fitted values", "[featurize]") {
  env e;
  write_file(e, "train.csv", "price,city,text\n10,x,a b\n20,y,b\n60,x,c\n");
  write_file(e, "test.csv", "price,city,text\n1,z,b\n");
  auto g = fit_apply_graph(R"(      save: state.lmmd
      transforms:
        - {column: price, op: standardize}
        - {column: price, op: minmax, output: mm}
        - {column: city, op: one_hot}
        - {column: text, op: tfidf}
)");
  auto r = e.run(e.graph(g));
  REQUIRE(r.state == "succeeded");
  auto bytes = read_file(e, "state.lmmd");
  REQUIRE(bytes.size() > 8);
  auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  flatbuffers::Verifier v(data, bytes.size());
  REQUIRE(loom::fb::ModelBufferHasIdentifier(data));
  REQUIRE(loom::fb::VerifyModelBuffer(v));
  auto* m = loom::fb::GetModel(data);
  CHECK(m->kind()->str() == "featurizer");
  CHECK(m->version()->str() == "1");
  REQUIRE(m->input_schema() != nullptr);
  REQUIRE(m->input_schema()->size() == 3);
  CHECK(m->input_schema()->Get(0)->name()->str() == "price");
  CHECK(m->input_schema()->Get(2)->type() == loom::fb::ColumnType::String);
  REQUIRE(m->preprocessing() != nullptr);
  auto pre = nlohmann::json::parse(m->preprocessing()->str());
  CHECK(pre["format"] == "loom.featurizer");
  CHECK(pre["rows_fitted"] == 3);
  auto& ts = pre["transforms"];
  REQUIRE(ts.size() == 4);
  std::vector<double> price{10, 20, 60};
  CHECK(ts[0]["op"] == "standardize");
  CHECK(ts[0]["fitted"]["mean"].get<double>() == Approx(mean_of(price)).epsilon(1e-15));
  CHECK(ts[0]["fitted"]["std"].get<double>() == Approx(pop_std_of(price)).epsilon(1e-15));
  CHECK(ts[1]["fitted"]["min"] == 10.0);
  CHECK(ts[1]["fitted"]["max"] == 60.0);
  CHECK(ts[2]["fitted"]["categories"] == nlohmann::json({"x", "y"}));
  CHECK(ts[2]["fitted"]["counts"] == nlohmann::json({2, 1}));
  CHECK(ts[3]["fitted"]["vocabulary"] == nlohmann::json({"a", "b", "c"}));
  CHECK(ts[3]["fitted"]["df"] == nlohmann::json({1, 2, 1}));
  CHECK(ts[3]["fitted"]["idf"][1].get<double>() == Approx(std::log(4.0 / 3.0) + 1).epsilon(1e-15));
  // the state output is a message, not rows
  CHECK(node(r, "fit").rows_out == 3);
  CHECK(node(r, "fit").frames_out >= 2);
}

TEST_CASE("applying the state to the training table reproduces fit's output exactly", "[featurize]") {
  env e;
  std::string train = "a,b,c,d\n";
  for (int i = 0; i < 50; ++i)
    train += std::to_string(i * 0.37 - 3) + "," + std::to_string(i % 7) + ",k" + std::to_string(i % 5) + ",w" +
             std::to_string(i % 3) + " w" + std::to_string(i % 4) + "\n";
  write_file(e, "train.csv", train);
  write_file(e, "test.csv", train);
  // the training side is slowed down, so the test frames reach apply before its state
  // does and are held until it comes (the result must not depend on that order)
  auto g = fit_apply_graph(R"(      transforms:
        - {column: a, op: standardize}
        - {column: a, op: minmax, output: am}
        - {column: b, op: bucketize, bins: 3}
        - {column: b, op: log, output: bl}
        - {column: c, op: one_hot, max_categories: 3}
        - {column: c, op: ordinal, output: co}
        - {column: c, op: hash, buckets: 5, output: ch}
        - {column: d, op: tfidf, ngrams: [1, 2]}
        - {column: d, op: hashing, buckets: 6, output: dh}
)", ", frame_rows: 7");
  auto at = g.find("inputs: train.out");
  REQUIRE(at != std::string::npos);
  g.replace(at, 17, "inputs: slow.out");
  g += "  - {id: slow, op: test.slow, inputs: train.out, with: {sleep_ms: 20}}\n";
  auto r = e.run(e.graph(g));
  REQUIRE(r.state == "succeeded");
  auto fitted = read_file(e, "train_out.csv");
  CHECK(fitted.size() > 1000);
  CHECK(fitted == read_file(e, "test_out.csv"));
}

TEST_CASE("rejected rows go to rejects, are counted and are not fitted on", "[featurize][rejects]") {
  env e;
  write_file(e, "train.csv", "x,y\n1,3\n-2,100\n3,inf\n5,4\n");
  write_file(e, "test.csv", "x,y\n-1,1\n0,2\n");
  auto r = e.run(e.graph(fit_apply_graph(R"(      transforms:
        - {column: x, op: log}
        - {column: y, op: standardize}
)")));
  REQUIRE(r.state == "succeeded");
  auto& fit = node(r, "fit");
  CHECK(fit.rows_in == 4);
  CHECK(fit.rows_out == 2);
  CHECK(fit.rows_rejected == 2);
  CHECK(fit.rows_in == fit.rows_out + fit.rows_rejected);
  CHECK(fit.metrics.at("rows_fitted") == 2);
  auto rej = read_csv(e, "fit_rejects.csv");
  CHECK(rej.header == std::vector<std::string>{"reason", "x", "y"});
  REQUIRE(rej.rows.size() == 2);
  CHECK(rej.at(0, "reason").find("negative value -2") != std::string::npos);
  CHECK(rej.at(0, "reason").find("'x'") != std::string::npos);
  CHECK(rej.at(0, "y") == "100");
  CHECK(rej.at(1, "reason").find("not finite") != std::string::npos);
  CHECK(rej.at(1, "reason").find("'y'") != std::string::npos);
  // y fitted on 3 and 4 only: mean 3.5, std 0.5
  auto test = read_csv(e, "test_out.csv");
  REQUIRE(test.rows.size() == 1);
  CHECK(test.num(0, "x") == 0.0);
  CHECK(test.num(0, "y") == Approx((2 - 3.5) / 0.5));
  auto& apply = node(r, "apply");
  CHECK(apply.rows_rejected == 1);
  CHECK(apply.rows_in == apply.rows_out + apply.rows_rejected);
  CHECK(e.lines("apply_rejects.csv").size() == 2);
}

TEST_CASE("log: on_negative null keeps the row with a null, error fails the run", "[featurize][rejects]") {
  env e;
  write_file(e, "train.csv", "x\n1\n-2\n");
  write_file(e, "test.csv", "x\n-1\n");
  auto r = e.run(e.graph(fit_apply_graph("      transforms: [{column: x, op: log, on_negative: null}]\n")));
  REQUIRE(r.state == "succeeded");
  auto train = read_csv(e, "train_out.csv");
  REQUIRE(train.rows.size() == 2);
  CHECK(train.num(0, "x") == Approx(std::log(2.0)).epsilon(1e-12));
  CHECK(train.at(1, "x").empty());
  CHECK(e.lines("test_out.csv") == std::vector<std::string>{"x", ""});
  CHECK(node(r, "fit").rows_rejected == 0);
  CHECK(node(r, "apply").rows_rejected == 0);

  auto err = failure(e, fit_apply_graph("      transforms: [{column: x, op: log, on_negative: error}]\n"));
  CHECK(err.find("negative value -2") != std::string::npos);
  CHECK(err.find("'x'") != std::string::npos);
  CHECK(err.find("row 2") != std::string::npos);
}

TEST_CASE("drop_input and keep_input decide which input columns remain", "[featurize]") {
  env e;
  write_file(e, "train.csv", "a,b,label\n1,u,yes\n3,v,no\n");
  write_file(e, "test.csv", "a,b,label\n2,u,no\n");
  auto r = e.run(e.graph(fit_apply_graph(R"(      drop_input: true
      transforms:
        - {column: a, op: minmax, output: a01, keep_input: true}
        - {column: b, op: ordinal}
)")));
  REQUIRE(r.state == "succeeded");
  CHECK(e.lines("test_out.csv") == std::vector<std::string>{"a,a01,b", "2,0.5,0"});
  CHECK(e.lines("train_out.csv") == std::vector<std::string>{"a,a01,b", "1,0,0", "3,1,1"});
}

TEST_CASE("bad parameters and inputs fail naming what is wrong", "[featurize][errors]") {
  env e;
  write_file(e, "train.csv", "price,city\n1,a\n2,b\n");
  write_file(e, "test.csv", "price,city\n1,a\n");
  auto err = [&](const std::string& transforms) {
    return failure(e, fit_apply_graph("      transforms: " + transforms + "\n"));
  };
  auto has = [](const std::string& text, const std::string& part) {
    INFO(text);
    CHECK(text.find(part) != std::string::npos);
  };
  auto e1 = err("[{column: price, op: standardise}]");
  has(e1, "unknown op 'standardise'");
  has(e1, "transforms[0]");
  auto e2 = err("[{column: price, op: standardize}, {column: cost, op: minmax}]");
  has(e2, "no column 'cost'");
  has(e2, "transforms[1]");
  has(e2, "price (i64)");
  has(err("[{column: city, op: standardize}]"), "column 'city' is a string column");
  has(err("[{column: city, op: hash}]"), "missing 'buckets'");
  has(err("[{column: city, op: hash, buckets: 0}]"), "'buckets' must be an integer >= 1");
  has(err("[{column: price, op: bucketize}]"), "either 'boundaries'");
  has(err("[{column: price, op: bucketize, bins: 3, boundaries: [1]}]"), "either 'boundaries'");
  has(err("[{column: price, op: bucketize, boundaries: [2, 1]}]"), "strictly increasing");
  has(err("[{column: price, op: standardize, scale: 2}]"), "unknown key 'scale'");
  has(err("[{op: standardize}]"), "missing 'column'");
  has(err("[price]"), "expected a map");
  has(err("[]"), "non-empty list");
  has(err("[{column: price, op: log, on_negative: drop}]"), "on_negative");
  has(err("[{column: city, op: tfidf, ngrams: [2, 1]}]"), "'ngrams' must be [min, max]");
  has(err("[{column: price, op: minmax, output: city}]"), "output column 'city'");

  // the state port must carry a featurizer
  auto e3 = failure(e, R"(name: f
nodes:
  - {id: m, op: test.model_src}
  - {id: test, op: ingest.csv, with: {path: test.csv}}
  - {id: apply, op: featurize.apply, inputs: {state: m.model, data: test.out}}
  - {id: out, op: sink.csv, inputs: apply.out, with: {path: o.csv}}
)");
  has(e3, "kind 'dummy'");

  // apply checks the data against the fitted transforms
  write_file(e, "test.csv", "cost,city\n1,a\n");
  auto e4 = err("[{column: price, op: standardize}]");
  has(e4, "node 'apply'");
  has(e4, "no column 'price'");
}

// ---- featurize.tokenize ----------------------------------------------------------------------

TEST_CASE("featurize.tokenize: tokens, n-grams, stop words, nulls and in-place columns", "[featurize][tokenize]") {
  env e;
  write_file(e, "docs.csv",
             "id,text,title\n"
             "1,\"The Cat, of the HAT!\",Intro\n"
             "2,,Empty\n"
             "3,\"...\",Dots\n"
             "4,Café au lait 42x,Menu\n");
  auto r = e.run(e.graph(R"(
name: tok
nodes:
  - {id: load, op: ingest.csv, with: {path: docs.csv, frame_rows: 2, schema: {text: string}}}
  - id: tok
    op: featurize.tokenize
    inputs: load.out
    with: {columns: [text], ngrams: [1, 2], stop_words: [The, of], min_token_length: 2}
  - id: inplace
    op: featurize.tokenize
    inputs: load.out
    with: {columns: [text, title], suffix: "", separator: "|", lowercase: false}
  - {id: s1, op: sink.csv, inputs: tok.out, with: {path: tok.csv}}
  - {id: s2, op: sink.csv, inputs: inplace.out, with: {path: inplace.csv}}
)"));
  REQUIRE(r.state == "succeeded");
  // "the" and "of" dropped (after lower-casing) before the bigrams are formed; "42x" is one
  // token, "au" has 2 bytes (kept), UTF-8 stays whole
  CHECK(e.lines("tok.csv") == std::vector<std::string>{
                                "id,text,text_tokens,title",
                                "1,\"The Cat, of the HAT!\",cat hat cat hat,Intro",
                                "2,,,Empty",
                                "3,...,,Dots",
                                "4,Café au lait 42x,café au lait 42x café au au lait lait 42x,Menu",
                              });
  CHECK(e.lines("inplace.csv") == std::vector<std::string>{
                                    "id,text,title",
                                    "1,The|Cat|of|the|HAT,Intro",
                                    "2,,Empty",
                                    "3,,Dots",
                                    "4,Café|au|lait|42x,Menu",
                                  });
  CHECK(node(r, "tok").rows_in == 4);
  CHECK(node(r, "tok").rows_out == 4);
  CHECK(node(r, "tok").metrics.at("tokens") == 3 + 7);
  CHECK(node(r, "tok").metrics.at("empty") == 1); // "..." (the null is not counted)
  CHECK(node(r, "inplace").metrics.at("tokens") == 5 + 4 + 4);
}

TEST_CASE("featurize.tokenize: bad columns and parameters fail naming them", "[featurize][tokenize]") {
  struct kase {
    std::string with, message;
  };
  for (auto& k : std::vector<kase>{
         {"{columns: [n]}", "columns: 'n' is i64, not a string column"},
         {"{columns: [nope]}", "no column 'nope'"},
         {"{columns: [t, t]}", "'t' is listed twice"},
         {"{columns: [t], suffix: _x}", "the new column 't_x' is already a column of the input"},
         {"{columns: [t], ngrams: [2, 1]}", "ngrams must be [min, max] with 1 <= min <= max <= 16, found [2,1]"},
         {"{columns: [t], min_token_length: 0}", "min_token_length must be at least 1, got 0"},
         {"{columns: []}", "columns: name at least one string column"},
       }) {
    DYNAMIC_SECTION(k.with) {
      env e;
      write_file(e, "in.csv", "n,t,t_x\n1,a b,c\n");
      auto r = e.run(e.graph("name: bad\nnodes:\n  - {id: load, op: ingest.csv, with: {path: in.csv}}\n"
                             "  - {id: tok, op: featurize.tokenize, inputs: load.out, with: " +
                             k.with + "}\n"));
      CHECK(r.state == "failed");
      INFO(node(r, "tok").error);
      CHECK(contains(node(r, "tok").error, k.message));
    }
  }
}
