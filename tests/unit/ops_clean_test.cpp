// The clean operator through the real executor: every rule with exact outputs, its
// metrics, reject reasons, rows in = rows out + rows rejected, and bad parameters.
#include "run_env.hpp"

#include <cmath>
#include <string>
#include <vector>

using namespace loom;
using loom::test::env;
using loom::test::node;

namespace {

using lines_t = std::vector<std::string>;

std::string graph(const std::string& with, const std::string& load_extra = "", int frame_rows = 1000) {
  return "name: c\nnodes:\n"
         "  - {id: load, op: ingest.csv, with: {path: in.csv, frame_rows: " + std::to_string(frame_rows) + load_extra + "}}\n"
         "  - {id: clean, op: clean, inputs: load.out, with: " + with + "}\n"
         "  - {id: out, op: sink.csv, inputs: clean.out, with: {path: out/out.csv}}\n"
         "  - {id: rej, op: sink.csv, inputs: clean.rejects, with: {path: out/rejects.csv}}\n";
}

struct result {
  run_result r;
  lines_t out, rejects;
  const node_record& clean() const { return node(r, "clean"); }
  double metric(const std::string& name) const {
    auto& m = clean().metrics;
    auto it = m.find(name);
    INFO("metric " << name);
    REQUIRE(it != m.end());
    return it->second;
  }
};

result run_clean(const std::string& csv, const std::string& with, const std::string& load_extra = "",
                 int frame_rows = 1000) {
  env e;
  loom::test::write_file(e, "in.csv", csv);
  result res;
  res.r = e.run(e.graph(graph(with, load_extra, frame_rows)));
  INFO(res.r.error);
  REQUIRE(res.r.state == "succeeded");
  res.out = e.lines("out/out.csv");
  res.rejects = e.lines("out/rejects.csv");
  auto& n = res.clean();
  CHECK(n.rows_in == n.rows_out + n.rows_rejected); // nothing lost
  CHECK(n.rows_out + 1 == res.out.size());
  return res;
}

std::string run_error(const std::string& csv, const std::string& with, const std::string& load_extra = "") {
  env e;
  loom::test::write_file(e, "in.csv", csv);
  auto r = e.run(e.graph(graph(with, load_extra)));
  CHECK(r.state == "failed");
  return r.error;
}

void has(const std::string& text, const std::string& part) {
  INFO(text);
  CHECK(text.find(part) != std::string::npos);
}

} // namespace

TEST_CASE("clean trims, folds case and converts types; unparseable values are rejected", "[clean]") {
  auto res = run_clean("id,name,qty\n1,  Alice ,3\n2,BOB,x\n3,carol , 4\n4,,5\n",
                       "{columns: {name: {trim: true, case: lower}, qty: {trim: true, type: i64}}}",
                       ", schema: {qty: string}");
  CHECK(res.out == lines_t{"id,name,qty", "1,alice,3", "3,carol,4", "4,,5"});
  CHECK(res.rejects == lines_t{"reason,id,name,qty", "column 'qty': 'x' is not a valid i64,2,BOB,x"});
  CHECK(res.metric("name.trim") == 2);
  CHECK(res.metric("name.case") == 2); // Alice, BOB
  CHECK(res.metric("qty.trim") == 1);
  CHECK(res.metric("qty.type_rejected") == 1);
  CHECK(res.clean().rows_rejected == 1);

  auto up = run_clean("s,f,b\nab,1.0,1\nCd,2.5,no\n", "{columns: {s: {case: upper}, f: {type: i64}, b: {type: bool}}}",
                      ", schema: {b: string}");
  CHECK(up.out == lines_t{"s,f,b", "AB,1,true"});
  CHECK(up.rejects == lines_t{"reason,s,f,b", "column 'f': '2.5' is not a valid i64,Cd,2.5,no"});
  CHECK(up.metric("s.case") == 1); // columns go in name order: row 2 failed at f before s

  auto str = run_clean("n\n7\n-2\n", "{columns: {n: {type: string, regex: \"-?[0-9]\"}}}");
  CHECK(str.out == lines_t{"n", "7", "-2"});
}

TEST_CASE("clean nulls: drop, reject and constant stream", "[clean][nulls]") {
  auto res = run_clean("id,a,b,c\n1,1,x,p\n2,,y,q\n3,3,,\n4,4,z,\n",
                       "{columns: {a: {nulls: drop}, b: {nulls: reject}, c: {nulls: constant, fill: none}}}");
  CHECK(res.out == lines_t{"id,a,b,c", "1,1,x,p", "4,4,z,none"});
  CHECK(res.rejects == lines_t{"reason,id,a,b,c", "column 'a' is null (dropped),2,,y,q", "column 'b' is null,3,3,,"});
  CHECK(res.clean().rows_in == 4);
  CHECK(res.clean().rows_rejected == 2); // one dropped, one rejected
  CHECK(res.metric("a.null_dropped") == 1);
  CHECK(res.metric("b.null_rejected") == 1);
  CHECK(res.metric("c.null_filled") == 1);

  auto num = run_clean("id,x\n1,1.5\n2,\n", "{columns: {x: {nulls: constant, fill: 0}}}");
  CHECK(num.out == lines_t{"id,x", "1,1.5", "2,0"});
}

TEST_CASE("clean nulls: mean, median and most frequent hold the table", "[clean][nulls]") {
  const std::string csv = "id,m,md,mf,t\n1,1,1,x,b\n2,,2,y,a\n3,2,,y,\n4,9,9,,\n";
  const std::string with = "{columns: {m: {nulls: mean}, md: {nulls: median}, mf: {nulls: most_frequent}, "
                           "t: {nulls: most_frequent}}}";
  // mean(1,2,9) = 4, median(1,2,9) = 2, y is most frequent, b and a tie: b was first
  lines_t expect{"id,m,md,mf,t", "1,1,1,x,b", "2,4,2,y,a", "3,2,2,y,b", "4,9,9,y,b"};
  for (int frame_rows : {1, 1000}) {
    auto res = run_clean(csv, with, "", frame_rows);
    CHECK(res.out == expect);
    CHECK(res.metric("m.null_filled") == 1);
    CHECK(res.metric("md.null_filled") == 1);
    CHECK(res.metric("mf.null_filled") == 1);
    CHECK(res.metric("t.null_filled") == 2);
  }
  auto f = run_clean("id,x\n1,1\n2,\n3,2\n", "{columns: {x: {type: f64, nulls: mean}}}");
  CHECK(f.out == lines_t{"id,x", "1,1", "2,1.5", "3,2"});
  auto even = run_clean("id,x\n1,1.0\n2,\n3,2.0\n4,4.0\n5,10.0\n", "{columns: {x: {nulls: median}}}");
  CHECK(even.out == lines_t{"id,x", "1,1", "2,3", "3,2", "4,4", "5,10"}); // (2 + 4) / 2
}

TEST_CASE("clean ranges: clip, reject or null outside min and max", "[clean][range]") {
  const std::string csv = "id,x\n1,-5\n2,5\n3,50\n4,\n";
  auto clip = run_clean(csv, "{columns: {x: {min: 0, max: 10, out_of_range: clip}}}");
  CHECK(clip.out == lines_t{"id,x", "1,0", "2,5", "3,10", "4,"});
  CHECK(clip.metric("x.range_clipped") == 2);

  auto rej = run_clean(csv, "{columns: {x: {min: 0, max: 10}}}"); // reject is the default
  CHECK(rej.out == lines_t{"id,x", "2,5", "4,"});
  CHECK(rej.rejects == lines_t{"reason,id,x", "column 'x': -5 is below min 0,1,-5", "column 'x': 50 is above max 10,3,50"});
  CHECK(rej.metric("x.range_rejected") == 2);
  CHECK(rej.clean().rows_rejected == 2);

  auto nul = run_clean(csv, "{columns: {x: {max: 10, out_of_range: null}}}");
  CHECK(nul.out == lines_t{"id,x", "1,-5", "2,5", "3,", "4,"});
  CHECK(nul.metric("x.range_nulled") == 1);

  // a null made by the range rule is then handled by the null rule
  auto fill = run_clean(csv, "{columns: {x: {max: 10, out_of_range: null, nulls: constant, fill: -1}}}");
  CHECK(fill.out == lines_t{"id,x", "1,-5", "2,5", "3,-1", "4,-1"});
  CHECK(fill.metric("x.null_filled") == 2);
}

TEST_CASE("clean allowed categories: reject or null the others", "[clean][allowed]") {
  const std::string csv = "id,color,n\n1,red,1\n2,blue,2\n3,green,3\n4,,1\n";
  auto rej = run_clean(csv, "{columns: {color: {allowed: [red, blue]}, n: {allowed: [1, 2, 3]}}}");
  CHECK(rej.out == lines_t{"id,color,n", "1,red,1", "2,blue,2", "4,,1"});
  CHECK(rej.rejects == lines_t{"reason,id,color,n", "column 'color': 'green' is not an allowed value,3,green,3"});
  CHECK(rej.metric("color.allowed_rejected") == 1);
  CHECK(rej.metric("n.allowed_rejected") == 0);

  auto nul = run_clean(csv, "{columns: {color: {allowed: [red], on_other: null}, n: {allowed: [1, 2]}}}");
  CHECK(nul.out == lines_t{"id,color,n", "1,red,1", "2,,2", "4,,1"});
  CHECK(nul.rejects == lines_t{"reason,id,color,n", "column 'n': '3' is not an allowed value,3,green,3"});
  CHECK(nul.metric("color.allowed_nulled") == 2); // blue, and green (whose row n then rejected)
}

TEST_CASE("clean regex: values must match the whole pattern", "[clean][regex]") {
  auto res = run_clean("id,email\n1,a@b.co\n2,nope\n3,x@y\n4,\n5,pre a@b.co\n",
                       "{columns: {email: {regex: \"[^@ ]+@[^@ ]+\\\\.[a-z]+\"}}}");
  CHECK(res.out == lines_t{"id,email", "1,a@b.co", "4,"});
  REQUIRE(res.rejects.size() == 4);
  CHECK(res.rejects[1] == "column 'email': 'nope' does not match regex '[^@ ]+@[^@ ]+\\.[a-z]+',2,nope");
  CHECK(res.rejects[3].rfind("column 'email': 'pre a@b.co' does not match", 0) == 0);
  CHECK(res.metric("email.regex_rejected") == 3);
}

TEST_CASE("clean dedupe: first occurrence kept, later ones rejected as duplicate", "[clean][dedupe]") {
  auto keys = run_clean("id,k,v\n1,a,1\n2,b,2\n3,a,3\n4,b,2\n5,c,1\n", "{dedupe: [k]}", "", 2);
  CHECK(keys.out == lines_t{"id,k,v", "1,a,1", "2,b,2", "5,c,1"});
  CHECK(keys.rejects == lines_t{"reason,id,k,v", "duplicate,3,a,3", "duplicate,4,b,2"});
  CHECK(keys.metric("dedupe.dropped") == 2);
  CHECK(keys.clean().rows_rejected == 2);

  auto two = run_clean("id,k,v\n1,a,1\n2,b,2\n3,a,3\n4,b,2\n5,c,1\n", "{dedupe: [k, v]}");
  CHECK(two.out == lines_t{"id,k,v", "1,a,1", "2,b,2", "3,a,3", "5,c,1"});

  // whole rows, compared after the rules (A folds to a)
  auto all = run_clean("k,v\na,1\nA,1\na,2\n,\n,\n", "{columns: {k: {case: lower}}, dedupe: [\"*\"]}");
  CHECK(all.out == lines_t{"k,v", "a,1", "a,2", ","});
  CHECK(all.rejects == lines_t{"reason,k,v", "duplicate,A,1", "duplicate,,"});
  CHECK(all.metric("dedupe.dropped") == 2);
}

TEST_CASE("clean outliers: zscore and iqr, with clip, reject and null", "[clean][outliers]") {
  const std::string csv = "id,x\n1,10\n2,11\n3,9\n4,10\n5,12\n6,8\n7,10\n8,100\n";
  const std::string f64 = ", schema: {x: f64}";
  // sorted 8 9 10 10 10 11 12 100: Q1 = 9.75, Q3 = 11.25, IQR 1.5 -> bounds [7.5, 13.5]
  auto clip = run_clean(csv, "{columns: {x: {outliers: iqr, action: clip}}}", f64);
  CHECK(clip.out == lines_t{"id,x", "1,10", "2,11", "3,9", "4,10", "5,12", "6,8", "7,10", "8,13.5"});
  CHECK(clip.metric("x.outliers_clipped") == 1);

  auto tight = run_clean(csv, "{columns: {x: {outliers: iqr, threshold: 1.0}}}", f64); // [8.25, 12.75]
  CHECK(tight.out == lines_t{"id,x", "1,10", "2,11", "3,9", "4,10", "5,12", "7,10"});
  REQUIRE(tight.rejects.size() == 3);
  CHECK(tight.rejects[1] == "column 'x': 8 is an outlier (iqr bounds 8.25 .. 12.75),6,8");
  CHECK(tight.metric("x.outliers_rejected") == 2);

  // zscore: mean 21.25, sample std 31.84 -> threshold 3 keeps 100, threshold 2 does not
  auto z3 = run_clean(csv, "{columns: {x: {outliers: zscore, action: null}}}", f64);
  CHECK(z3.out.back() == "8,100");
  CHECK(z3.metric("x.outliers_nulled") == 0);
  auto z2 = run_clean(csv, "{columns: {x: {outliers: zscore, threshold: 2, action: null, nulls: median}}}", f64);
  // 100 becomes null, then the median of the rest (8 9 10 10 10 11 12) fills it
  CHECK(z2.out.back() == "8,10");
  CHECK(z2.metric("x.outliers_nulled") == 1);
  CHECK(z2.metric("x.null_filled") == 1);

  auto zc = run_clean(csv, "{columns: {x: {outliers: zscore, threshold: 2, action: clip}}}", f64);
  double m = 21.25, s = std::sqrt(7097.5 / 7);
  CHECK(std::stod(zc.out.back().substr(2)) == Approx(m + 2 * s));
}

TEST_CASE("clean keeps rows in = rows out + rows rejected on messy input", "[clean]") {
  const std::string csv =
    "id,name,age,city,email\n"
    "1, Ann ,34,Paris,ann@x.org\n"
    "2,bob,abc,rome,bob@x.org\n"
    "3,Cy,200,Paris,cy@x.org\n"
    "4,Di,,Oslo,di@x.org\n"
    "5,Ed,40,,bad-email\n"
    "6,Fay,29,ROME,ann@x.org\n"
    "7,,31,rome,gus@x.org\n";
  auto res = run_clean(csv,
                       "{columns: {name: {trim: true, nulls: reject}, age: {type: i64, max: 120, nulls: median}, "
                       "city: {case: lower, allowed: [paris, rome], on_other: null, nulls: most_frequent}, "
                       "email: {regex: \"[^@]+@[^@]+\"}}, dedupe: [email]}",
                       ", schema: {age: string}", 3);
  // 2: age abc; 3: age 200; 5: email; 6: duplicate email; 7: name null
  CHECK(res.out == lines_t{"id,name,age,city,email", "1,Ann,34,paris,ann@x.org", "4,Di,31,rome,di@x.org"});
  CHECK(res.clean().rows_in == 7);
  CHECK(res.clean().rows_out == 2);
  CHECK(res.clean().rows_rejected == 5);
  CHECK(res.rejects.size() == 6);
  CHECK(res.metric("age.type_rejected") == 1);
  CHECK(res.metric("age.range_rejected") == 1);
  CHECK(res.metric("email.regex_rejected") == 1);
  CHECK(res.metric("dedupe.dropped") == 1);
  CHECK(res.metric("name.null_rejected") == 1);
  CHECK(res.metric("city.allowed_nulled") == 1);
  CHECK(res.metric("rows_rejected") == 5);
}

TEST_CASE("clean rejects bad parameters, naming them", "[clean][errors]") {
  const std::string csv = "id,s,x\n1,a,1.5\n";
  has(run_error(csv, "{columns: {s: {tirm: true}}}"), "columns.s: unknown rule 'tirm'");
  has(run_error(csv, "{columns: {nope: {trim: true}}}"), "columns.nope: no column 'nope' in the input (columns: id (i64)");
  has(run_error(csv, "{columns: {x: {trim: true}}}"), "columns.x: trim and case need a string column, but 'x' is f64");
  has(run_error(csv, "{columns: {s: {min: 0}}}"), "columns.s: min and max need a numeric column");
  has(run_error(csv, "{columns: {x: {min: 5, max: 1}}}"), "columns.x: min (5) is greater than max (1)");
  has(run_error(csv, "{columns: {x: {nulls: constant}}}"), "columns.x.fill: nulls: constant needs a fill value");
  has(run_error(csv, "{columns: {id: {nulls: constant, fill: abc}}}"), "columns.id.fill: \"abc\" is not a valid i64");
  has(run_error(csv, "{columns: {s: {nulls: mean}}}"), "columns.s.nulls: mean and median need a numeric column");
  has(run_error(csv, "{columns: {s: {nulls: sometimes}}}"), "columns.s.nulls: unknown mode 'sometimes'");
  has(run_error(csv, "{columns: {s: {regex: \"([a\"}}}"), "columns.s.regex: invalid pattern '([a'");
  has(run_error(csv, "{columns: {s: {type: int128}}}"), "columns.s.type: unknown type 'int128'");
  has(run_error(csv, "{columns: {x: {outliers: mad}}}"), "columns.x.outliers: unknown method 'mad'");
  has(run_error(csv, "{columns: {x: {outliers: iqr, threshold: -1}}}"), "columns.x.threshold: must be positive");
  has(run_error(csv, "{columns: {x: {threshold: 2}}}"), "threshold and action need outliers");
  has(run_error(csv, "{columns: {x: {min: 0, out_of_range: wrap}}}"), "columns.x.out_of_range: unknown action 'wrap'");
  has(run_error(csv, "{columns: {s: {allowed: [a], on_other: clip}}}"), "columns.s.on_other: unknown action 'clip'");
  has(run_error(csv, "{columns: {s: {case: title}}}"), "columns.s.case: unknown case 'title'");
  has(run_error(csv, "{dedupe: [id, zz]}"), "dedupe: no column 'zz' in the input");
  has(run_error(csv, "{dedupe: []}"), "dedupe: name the key columns");
}
