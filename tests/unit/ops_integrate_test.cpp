// The loom-integrate operators (join, union, select, rename, derive) on real graphs
// through the executor: ingest.csv -> operator -> sink.csv, outputs compared exactly.
#include "run_env.hpp"

#include <algorithm>

using namespace loom;
using loom::test::env;
using loom::test::node;
using loom::test::write_file;
using Catch::Matchers::Contains;

namespace {

/// A graph: in.csv (frames of `frame_rows`) -> `op` with `with` (YAML block, indented
/// by 6) -> out.csv, and the operator's rejects (when it has them) -> rejects.csv.
std::string one_op(const std::string& op, const std::string& with, bool rejects = false, int frame_rows = 2) {
  std::string g = "name: t\nnodes:\n"
                  "  - {id: load, op: ingest.csv, with: {path: in.csv, frame_rows: " +
                  std::to_string(frame_rows) +
                  "}}\n"
                  "  - id: op\n    op: " +
                  op + "\n    inputs: load.out\n    with:\n" + with +
                  "  - {id: sink, op: sink.csv, inputs: op.out, with: {path: out.csv}}\n";
  if (rejects)
    g += "  - {id: rej, op: sink.csv, inputs: op.rejects, with: {path: rejects.csv}}\n";
  return g;
}

/// Runs derive with `columns` (YAML lines "name: expression", indented by 8).
run_result derive(env& e, const std::string& csv, const std::string& columns, bool rejects = false) {
  write_file(e, "in.csv", csv);
  return e.run(e.graph(one_op("derive", "      columns:\n" + columns, rejects)));
}

/// The error of a failed run at node `op`.
std::string failure(const run_result& r, const std::string& id = "op") {
  CHECK(r.state == "failed");
  CHECK(node(r, id).state == "failed");
  return node(r, id).error;
}

std::string derive_error(const std::string& csv, const std::string& columns) {
  env e;
  return failure(derive(e, csv, columns));
}

/// A join graph: left.csv and right.csv (frames of `frame_rows`) -> join -> out.csv.
/// `slow_right` puts a test.slow node on the right, so that left frames surely arrive
/// before the right input ends.
std::string join_graph(const std::string& with, int frame_rows = 2, bool slow_right = false) {
  std::string fr = std::to_string(frame_rows);
  std::string g = "name: j\nnodes:\n"
                  "  - {id: l, op: ingest.csv, with: {path: left.csv, frame_rows: " + fr + "}}\n"
                  "  - {id: r, op: ingest.csv, with: {path: right.csv, frame_rows: " + fr + "}}\n";
  std::string right = "r.out";
  if (slow_right) {
    g += "  - {id: slow, op: test.slow, inputs: r.out, with: {sleep_ms: 30}}\n";
    right = "slow.out";
  }
  g += "  - id: op\n    op: join\n    inputs: {left: l.out, right: " + right + "}\n    with: " + with +
       "\n  - {id: sink, op: sink.csv, inputs: op.out, with: {path: out.csv}}\n";
  return g;
}

const char* people = "id,name\n1,ann\n2,bob\n2,bea\n3,cid\n,nul\n";
const char* scores = "id,score\n2,20\n2,21\n4,40\n1,10\n,99\n";

} // namespace

// ---- derive -------------------------------------------------------------------------

TEST_CASE("derive: arithmetic, integer and float results, nulls and division by zero", "[integrate][derive]") {
  env e;
  auto r = derive(e, "a,b,s\n1,2,x\n3,0,y\n,4,z\n",
                  "        sum: \"a + b\"\n"
                  "        div: \"a / b\"\n"
                  "        mod: \"a % b\"\n"
                  "        neg: \"-a * 2\"\n"
                  "        prec: \"1 + 2 * 3 - (4 - 1) * 2\"\n"
                  "        mixed: \"a + 0.5\"\n");
  REQUIRE(r.state == "succeeded");
  // new columns follow the input's, in the order the graph file lists them
  CHECK(e.lines("out.csv") == std::vector<std::string>{"a,b,s,sum,div,mod,neg,prec,mixed",
                                                        "1,2,x,3,0.5,1,-2,1,1.5",
                                                        "3,0,y,3,,,-6,1,3.5",
                                                        ",4,z,,,,,1,"});
  CHECK(node(r, "op").rows_in == 3);
  CHECK(node(r, "op").rows_out == 3);
  CHECK(node(r, "op").rows_rejected == 0);
}

TEST_CASE("derive: inferred result types show in type errors downstream", "[integrate][derive]") {
  // i64 + i64 stays i64, / gives f64, comparisons give bool, string functions give string
  CHECK_THAT(derive_error("a,b\n1,2\n", "        p: \"a + b\"\n        q: \"lower(p)\"\n"),
             Contains("lower() needs a string, got i64"));
  CHECK_THAT(derive_error("a,b\n1,2\n", "        p: \"a / b\"\n        q: \"lower(p)\"\n"),
             Contains("lower() needs a string, got f64"));
  CHECK_THAT(derive_error("a,b\n1,2\n", "        p: \"a * 1.0\"\n        q: \"lower(p)\"\n"),
             Contains("lower() needs a string, got f64"));
  CHECK_THAT(derive_error("a,b\n1,2\n", "        p: \"a < b\"\n        q: \"p + 1\"\n"),
             Contains("'+' needs numbers, got bool"));
  CHECK_THAT(derive_error("a,b\n1,2\n", "        p: \"upper('x')\"\n        q: \"p + 1\"\n"),
             Contains("'+' needs numbers, got string"));
}

TEST_CASE("derive: comparisons and three-valued logic", "[integrate][derive]") {
  env e;
  auto r = derive(e, "x,y,s,flag\n1,1.5,abc,true\n2,2.0,b,false\n3,,,\n",
                  "        gt: \"x > y\"\n"
                  "        ge: \"x >= y\"\n"
                  "        eq: \"s == 'abc'\"\n"
                  "        ne: \"s != \\\"abc\\\"\"\n"
                  "        lt: \"s < 'b'\"\n"
                  "        and_: \"x > 1 and flag\"\n"
                  "        andf: \"flag and false\"\n"
                  "        or_: \"flag or x > 2\"\n"
                  "        not_: \"not flag\"\n");
  REQUIRE(r.state == "succeeded");
  CHECK(e.lines("out.csv") ==
        std::vector<std::string>{
            "x,y,s,flag,gt,ge,eq,ne,lt,and_,andf,or_,not_",
            "1,1.5,abc,true,false,false,true,false,true,false,false,true,false",
            "2,2,b,false,false,true,false,true,false,false,false,false,true",
            "3,,,,,,,,,,false,true,"});
}

TEST_CASE("derive: numeric functions", "[integrate][derive]") {
  env e;
  auto r = derive(e, "v,n\n-2.5,-7\n4,16\n,0\n",
                  "        abs_v: \"abs(v)\"\n"
                  "        abs_n: \"abs(n)\"\n"
                  "        sq: \"sqrt(n)\"\n"
                  "        lg: \"round(log(v), 4)\"\n"
                  "        ex: \"round(exp(1), 3)\"\n"
                  "        rnd: \"round(v)\"\n"
                  "        rnd2: \"round(3.14159, 2)\"\n"
                  "        rndneg: \"round(n, -1)\"\n"
                  "        fl: \"floor(v)\"\n"
                  "        ce: \"ceil(v)\"\n"
                  "        mn: \"min(n, v, 3)\"\n"
                  "        mx: \"max(n, v)\"\n"
                  "        co: \"coalesce(v, n * 10)\"\n"
                  "        isn: \"is_null(v)\"\n");
  REQUIRE(r.state == "succeeded");
  CHECK(e.lines("out.csv") ==
        std::vector<std::string>{
            "v,n,abs_v,abs_n,sq,lg,ex,rnd,rnd2,rndneg,fl,ce,mn,mx,co,isn",
            "-2.5,-7,2.5,7,,,2.718,-3,3.14,-10,-3,-2,-7,-2.5,-2.5,false",
            "4,16,4,16,4,1.3863,2.718,4,3.14,20,4,4,3,16,4,false",
            ",0,,0,0,,2.718,,3.14,0,,,0,0,0,true"});
}

TEST_CASE("derive: string functions", "[integrate][derive]") {
  env e;
  auto r = derive(e, "s,t\n\"  Hello World \",lo\nabc,\n",
                  "        up: \"upper(s)\"\n"
                  "        low: \"lower(s)\"\n"
                  "        tr: \"trim(s)\"\n"
                  "        len: \"length(trim(s))\"\n"
                  "        cat: \"concat(t, '-', 1, true, null)\"\n"
                  "        sub: \"substr(trim(s), 2, 3)\"\n"
                  "        sub2: \"substr(s, 3)\"\n"
                  "        has: \"contains(s, t)\"\n"
                  "        sw: \"starts_with(trim(s), 'He')\"\n"
                  "        ew: \"ends_with(s, 'c')\"\n"
                  "        rep: \"replace(s, 'l', 'L')\"\n"
                  "        ts: \"to_string(length(s) * 1.5)\"\n"
                  "        tn: \"to_number(' 2.5e1 ') + 1\"\n"
                  "        u8: \"concat(length('h\xC3\xA9llo'), substr('h\xC3\xA9llo', 2, 2))\"\n");
  REQUIRE(r.state == "succeeded");
  CHECK(
      e.lines("out.csv") ==
      std::vector<std::string>{
          "s,t,up,low,tr,len,cat,sub,sub2,has,sw,ew,rep,ts,tn,u8",
          "  Hello World ,lo,  HELLO WORLD ,  hello world ,Hello "
          "World,11,lo-1true,ell,Hello World ,true,true,false,  HeLLo WorLd "
          ",21,26,5\xC3\xA9l",
          "abc,,ABC,abc,abc,3,-1true,bc,c,,false,true,abc,4.5,26,5\xC3\xA9l"});
}

TEST_CASE("derive: precedence, if, quoted names, replacing columns, dependency order", "[integrate][derive]") {
  env e;
  auto r = derive(e, "a b,x\n1,10\n2,\n",
                  "        x: \"x * 2\"\n"                       // replaces x in place
                  "        y: \"x + 1\"\n"                       // sees the derived x
                  "        a0: \"y * 10\"\n"                     // depends on y: computed after it
                  "        z: \"if(`a b` > 1, 'big', 'small')\"\n"
                  "        p1: \"2 + 3 * 4 % 5\"\n"
                  "        p2: \"-2 * -3\"\n"
                  "        p3: \"not 1 > 2 and true\"\n"
                  "        p4: \"1 + 2 == 3 or false\"\n"
                  "        p5: \"10 - 4 - 3\"\n"
                  "        p6: \"2 * (3 + 4) / 4\"\n"
                  "        p7: \"-7 % 3\"\n"
                  "        p8: \"if(null, 1, 2) + if(true, 1, 2.5) * 0.5\"\n"
                  "        p9: \"if(x > 25, 'yes', null)\"\n");
  REQUIRE(r.state == "succeeded");
  CHECK(
      e.lines("out.csv") ==
      std::vector<std::string>{"a b,x,y,a0,z,p1,p2,p3,p4,p5,p6,p7,p8,p9",
                               "1,20,21,210,small,4,6,true,true,3,3.5,-1,2.5,",
                               "2,,,,big,4,6,true,true,3,3.5,-1,2.5,"});
}

TEST_CASE("derive: rows whose values fail go to rejects and are counted", "[integrate][derive]") {
  env e;
  auto r = derive(e, "s,i\n12,1\nabc,1\n,2\n 7 ,3\n5,9223372036854775807\n",
                  "        n: \"to_number(s)\"\n"
                  "        big: \"i * 2\"\n",
                  true);
  REQUIRE(r.state == "succeeded");
  CHECK(e.lines("out.csv") == std::vector<std::string>{"s,i,n,big", "12,1,12,2",
                                                       ",2,,4", " 7 ,3,7,6"});
  CHECK(e.lines("rejects.csv") ==
        std::vector<std::string>{"reason,s,i",
                                 "derive: column 'n': to_number(): 'abc' is not a number,abc,1",
                                 "derive: column 'big': integer overflow in '*' at position 2,5,9223372036854775807"});
  auto& n = node(r, "op");
  CHECK(n.rows_in == 5);
  CHECK(n.rows_out == 3);
  CHECK(n.rows_rejected == 2);
  CHECK(n.rows_in == n.rows_out + n.rows_rejected);
}

TEST_CASE("derive: syntax errors name the column, the expression and the position", "[integrate][derive]") {
  const char* csv = "a,b,s\n1,2,x\n";
  CHECK_THAT(derive_error(csv, "        z: \"a + (b *\"\n"),
             Contains("derive: column 'z': expected a value but found end of expression at position 8 in 'a + (b *'"));
  CHECK_THAT(derive_error(csv, "        z: \"a + (b\"\n"),
             Contains("derive: column 'z': expected ')' but found end of expression at position 6 in 'a + (b'"));
  CHECK_THAT(derive_error(csv, "        z: \"a + foo(1)\"\n"),
             Contains("unknown function 'foo' (functions: abs, ceil,"));
  CHECK_THAT(derive_error(csv, "        z: \"a + foo(1)\"\n"), Contains("at position 4 in 'a + foo(1)'"));
  CHECK_THAT(derive_error(csv, "        z: \"a = 1\"\n"),
             Contains("unexpected '=': compare with '==' at position 2 in 'a = 1'"));
  CHECK_THAT(derive_error(csv, "        z: \"1 < a < 3\"\n"), Contains("comparisons do not chain"));
  CHECK_THAT(derive_error(csv, "        z: \"1 < a < 3\"\n"), Contains("at position 6"));
  CHECK_THAT(derive_error(csv, "        z: \"round(a, 1, 2)\"\n"),
             Contains("round() takes 1 or 2 arguments, got 3 at position 0"));
  CHECK_THAT(derive_error(csv, "        z: \"'abc\"\n"), Contains("unterminated string at position 0 in ''abc'"));
  CHECK_THAT(derive_error(csv, "        z: \"a b\"\n"), Contains("unexpected 'b' at position 2 in 'a b'"));
  CHECK_THAT(derive_error(csv, "        z: \"\"\n"), Contains("derive: column 'z': empty expression"));
  CHECK_THAT(derive_error(csv, "        z: \"a +\"\n"), Contains("at position 3 in 'a +'"));
  CHECK_THAT(derive_error(csv, "        z: \"99999999999999999999\"\n"), Contains("out of range"));
}

TEST_CASE("derive: type errors, unknown columns and cycles fail the node", "[integrate][derive]") {
  const char* csv = "a,b,s\n1,2,x\n";
  // visible from the literals alone
  CHECK_THAT(derive_error(csv, "        z: \"'abc' * 2\"\n"),
             Contains("derive: column 'z': '*' needs numbers, got string at position 6 in ''abc' * 2'"));
  CHECK_THAT(derive_error(csv, "        z: \"1 == 'one'\"\n"), Contains("cannot compare i64 with string"));
  CHECK_THAT(derive_error(csv, "        z: \"if(true, 1, 'x')\"\n"), Contains("if() mixes i64 and string"));
  CHECK_THAT(derive_error(csv, "        z: \"not 3\"\n"), Contains("'not' needs a bool, got i64"));
  // visible once the input's types are known
  CHECK_THAT(derive_error(csv, "        z: \"a + s\"\n"),
             Contains("derive: column 'z': '+' needs numbers, got string at position 2 in 'a + s'"));
  CHECK_THAT(derive_error(csv, "        z: \"upper(a)\"\n"), Contains("upper() needs a string, got i64"));
  CHECK_THAT(derive_error(csv, "        z: \"a + q\"\n"),
             Contains("derive: column 'z': unknown column 'q' at position 4 in 'a + q' (columns: a (i64), b (i64), s (string))"));
  CHECK_THAT(derive_error(csv, "        x: \"y + 1\"\n        y: \"x + 1\"\n"), Contains("cycle"));
}

// ---- select / rename ------------------------------------------------------------------

TEST_CASE("select keeps the listed columns in order", "[integrate][select]") {
  env e;
  write_file(e, "in.csv", "a,b,c\n1,x,true\n2,y,false\n3,,true\n");
  auto r = e.run(e.graph(one_op("select", "      columns: [c, a]\n")));
  REQUIRE(r.state == "succeeded");
  CHECK(e.lines("out.csv") == std::vector<std::string>{"c,a", "true,1", "false,2", "true,3"});
  CHECK(node(r, "op").rows_out == 3);

  env e2;
  write_file(e2, "in.csv", "a,b,c\n1,x,true\n");
  auto r2 = e2.run(e2.graph(one_op("select", "      columns: [a, nope]\n")));
  CHECK_THAT(failure(r2), Contains("no column 'nope' in the input (columns: a (i64), b (string), c (bool))"));

  env e3;
  write_file(e3, "in.csv", "a,b,c\n1,x,true\n");
  CHECK_THAT(failure(e3.run(e3.graph(one_op("select", "      columns: [a, a]\n")))), Contains("'a' is listed twice"));
}

TEST_CASE("rename renames, swaps, and refuses missing or colliding names", "[integrate][rename]") {
  env e;
  write_file(e, "in.csv", "a,b,c\n1,x,true\n2,y,false\n");
  auto r = e.run(e.graph(one_op("rename", "      columns: {a: b, b: a, c: \"see ya\"}\n")));
  REQUIRE(r.state == "succeeded");
  CHECK(e.lines("out.csv") == std::vector<std::string>{"b,a,see ya", "1,x,true", "2,y,false"});

  env e2;
  write_file(e2, "in.csv", "a,b\n1,2\n");
  CHECK_THAT(failure(e2.run(e2.graph(one_op("rename", "      columns: {q: z}\n")))),
             Contains("no column 'q' in the input (columns: a (i64), b (i64))"));
  env e3;
  write_file(e3, "in.csv", "a,b\n1,2\n");
  CHECK_THAT(failure(e3.run(e3.graph(one_op("rename", "      columns: {a: b}\n")))),
             Contains("two columns named 'b'"));
}

// ---- join ---------------------------------------------------------------------------

TEST_CASE("join inner, left, right, outer on one key with duplicates and null keys", "[integrate][join]") {
  const std::vector<std::string> inner{"id,name,score", "1,ann,10", "2,bob,20", "2,bob,21", "2,bea,20", "2,bea,21"};
  auto with = [](std::vector<std::string> v, std::vector<std::string> more) {
    v.insert(v.end(), more.begin(), more.end());
    return v;
  };
  struct kase {
    std::string how;
    std::vector<std::string> expected;
  };
  for (auto& k : {kase{"inner", inner}, kase{"left", with(inner, {"3,cid,", ",nul,"})},
                  kase{"right", with(inner, {"4,,40", ",,99"})},
                  kase{"outer", with(inner, {"3,cid,", ",nul,", "4,,40", ",,99"})}}) {
    DYNAMIC_SECTION(k.how) {
      env e;
      write_file(e, "left.csv", people);
      write_file(e, "right.csv", scores);
      auto r = e.run(e.graph(join_graph("{on: [id], how: " + k.how + "}")));
      REQUIRE(r.state == "succeeded");
      CHECK(e.lines("out.csv") == k.expected);
      CHECK(node(r, "op").rows_in == 10);
      CHECK(node(r, "op").rows_out == k.expected.size() - 1);
      CHECK(node(r, "op").rows_rejected == 0);
    }
  }
}

TEST_CASE("join: left frames that arrive before the right side ends are held, then probed", "[integrate][join]") {
  env e;
  // many small frames on both sides; the right side is slowed down
  std::string left = "k,l\n", right = "k,r\n";
  std::vector<std::string> expected{"k,l,r"};
  for (int i = 0; i < 30; ++i) {
    left += std::to_string(i % 10) + ",l" + std::to_string(i) + "\n";
    if (i % 10 < 5)
      expected.push_back(std::to_string(i % 10) + ",l" + std::to_string(i) + ",r" + std::to_string(i % 10));
    else
      expected.push_back(std::to_string(i % 10) + ",l" + std::to_string(i) + ",");
  }
  for (int k = 0; k < 5; ++k)
    right += std::to_string(k) + ",r" + std::to_string(k) + "\n";
  write_file(e, "left.csv", left);
  write_file(e, "right.csv", right);
  auto r = e.run(e.graph(join_graph("{on: [k], how: left}", 1, true)));
  REQUIRE(r.state == "succeeded");
  CHECK(e.lines("out.csv") == expected); // left row order is kept
  CHECK(node(r, "op").rows_out == 30);
}

TEST_CASE("join: the matches of one left frame come out in frames of at most frame_rows rows",
          "[integrate][join]") {
  // every left row matches every right row: one left frame of 40 rows gives 40 x 25 rows
  std::string left = "k,l\n", right = "k,r\n";
  for (int i = 0; i < 40; ++i)
    left += "1,l" + std::to_string(i) + "\n";
  for (int i = 0; i < 25; ++i)
    right += "1,r" + std::to_string(i) + "\n";
  for (const char* how : {"inner", "outer"}) {
    DYNAMIC_SECTION(how) {
      env e;
      write_file(e, "left.csv", left + "2,lonely\n");
      write_file(e, "right.csv", right + "3,alone\n");
      auto r = e.run(e.graph(join_graph(std::string("{on: [k], how: ") + how + ", frame_rows: 300}", 1000)));
      REQUIRE(r.state == "succeeded");
      const bool outer = std::string(how) == "outer";
      const uint64_t rows = 40 * 25 + (outer ? 2 : 0);
      CHECK(node(r, "op").rows_out == rows);
      // 1000 matches of the one left frame: 300 + 300 + 300 + 100 (+ the lonely left row
      // in that last frame, + a frame for the unmatched right row)
      CHECK(node(r, "op").frames_out == (outer ? 5u : 4u));
      auto lines = e.lines("out.csv");
      REQUIRE(lines.size() == rows + 1);
      CHECK(lines[1] == "1,l0,r0");
      CHECK(lines[25] == "1,l0,r24"); // left row order, then right arrival order
      CHECK(lines[26] == "1,l1,r0");
      CHECK(lines[1000] == "1,l39,r24");
      if (outer) {
        CHECK(lines[1001] == "2,lonely,");
        CHECK(lines[1002] == "3,,alone");
      }
    }
  }
  env e;
  CHECK_THAT(failure(e.run(e.graph(join_graph("{on: [k], frame_rows: 0}")))),
             Contains("frame_rows must be positive, got 0"));
}

TEST_CASE("join on several keys with left_on/right_on, promotion and suffixes", "[integrate][join]") {
  const char* l = "a,b,v\n1,x,l1\n1,y,l2\n2,x,l3\n";
  const char* rt = "ka,kb,v\n1.0,x,r1\n2.5,x,r2\n1,y,r3\n";
  {
    env e;
    write_file(e, "left.csv", l);
    write_file(e, "right.csv", rt);
    auto r = e.run(e.graph(join_graph("{left_on: [a, b], right_on: [ka, kb]}")));
    REQUIRE(r.state == "succeeded");
    // i64 1 matches f64 1.0; both key columns are kept (different names)
    CHECK(e.lines("out.csv") == std::vector<std::string>{"a,b,v_left,ka,kb,v_right", "1,x,l1,1,x,r1", "1,y,l2,1,y,r3"});
  }
  {
    env e;
    write_file(e, "left.csv", l);
    write_file(e, "right.csv", rt);
    auto r = e.run(e.graph(join_graph("{left_on: [a, b], right_on: [ka, kb], how: outer, suffixes: [\"\", _r]}")));
    REQUIRE(r.state == "succeeded");
    CHECK(e.lines("out.csv") ==
          std::vector<std::string>{"a,b,v,ka,kb,v_r", "1,x,l1,1,x,r1", "1,y,l2,1,y,r3", "2,x,l3,,,", ",,,2.5,x,r2"});
  }
  {
    // same-named keys of i64 and f64 merge into one f64 column
    env e;
    write_file(e, "left.csv", "id,k2,p\n1,a,p1\n2,a,p2\n");
    write_file(e, "right.csv", "id,k2,q\n1.0,a,q1\n3.5,a,q2\n1.0,b,q3\n");
    auto r = e.run(e.graph(join_graph("{on: [id, k2], how: outer}")));
    REQUIRE(r.state == "succeeded");
    CHECK(e.lines("out.csv") == std::vector<std::string>{"id,k2,p,q", "1,a,p1,q1", "2,a,p2,", "3.5,a,,q2", "1,b,,q3"});
  }
}

TEST_CASE("join: bad parameters and incompatible keys fail with clear messages", "[integrate][join]") {
  auto run = [](const std::string& with, const char* l = people, const char* r = scores) {
    env e;
    write_file(e, "left.csv", l);
    write_file(e, "right.csv", r);
    return failure(e.run(e.graph(join_graph(with))));
  };
  CHECK_THAT(run("{on: [id], how: sideways}"), Contains("how must be inner, left, right or outer, not 'sideways'"));
  CHECK_THAT(run("{how: inner}"), Contains("name the key columns with on"));
  CHECK_THAT(run("{on: [id], left_on: [id], right_on: [id]}"), Contains("either on or left_on and right_on"));
  CHECK_THAT(run("{left_on: [id, name], right_on: [id]}"), Contains("left_on names 2 columns but right_on names 1"));
  CHECK_THAT(run("{on: [id], suffixes: [_x]}"), Contains("suffixes must be two strings"));
  CHECK_THAT(run("{on: [nope]}"), Contains("join: no key column 'nope' in the"));
  CHECK_THAT(run("{left_on: [id], right_on: [name]}", people, "name,x\nann,1\n"),
             Contains("join: key 'id' is i64 on the left but 'name' is string on the right"));
  CHECK_THAT(run("{on: [id], suffixes: [\"\", \"\"]}", "id,v\n1,a\n", "id,v\n1,b\n"),
             Contains("two columns named 'v'"));
}

// ---- union --------------------------------------------------------------------------

namespace {
std::string union_graph(int frame_rows = 10, bool check_types = false) {
  std::string fr = std::to_string(frame_rows);
  return "name: u\nnodes:\n"
         "  - {id: a, op: ingest.csv, with: {path: a.csv, frame_rows: " + fr + "}}\n"
         "  - {id: b, op: ingest.csv, with: {path: b.csv, frame_rows: " + fr + "}}\n"
         "  - {id: op, op: union, inputs: {a: a.out, b: b.out}}\n"
         + std::string(check_types ? "  - {id: chk, op: derive, inputs: op.out, with: {columns: {chk: \"s + 1\"}}}\n"
                                   : "  - {id: sink, op: sink.csv, inputs: op.out, with: {path: out.csv}}\n");
}
} // namespace

TEST_CASE("union aligns columns by name and promotes types", "[integrate][union]") {
  env e;
  write_file(e, "a.csv", "id,x,s,f\n1,1.5,p,true\n2,2.5,q,false\n");
  write_file(e, "b.csv", "extra,f,s,x,id\ne,5,7,4,3.5\n");
  auto r = e.run(e.graph(union_graph()));
  // id: i64+f64 -> f64, x: f64+i64 -> f64, s: string+i64 -> string, f: bool+i64 -> i64
  REQUIRE(node(r, "sink").state == "succeeded");
  CHECK(e.lines("out.csv") == std::vector<std::string>{"id,x,s,f,extra", "1,1.5,p,1,", "2,2.5,q,0,", "3.5,4,7,5,e"});
  CHECK(node(r, "op").rows_in == 3);
  CHECK(node(r, "op").rows_out == 3);
  // s became a string column: arithmetic on it is refused downstream
  env e2;
  write_file(e2, "a.csv", "id,x,s,f\n1,1.5,p,true\n");
  write_file(e2, "b.csv", "s\n7\n");
  CHECK_THAT(failure(e2.run(e2.graph(union_graph(10, true))), "chk"), Contains("'+' needs numbers, got string"));
}

TEST_CASE("union: missing columns become nulls; many frames interleave; an empty side", "[integrate][union]") {
  {
    env e;
    std::string a = "k,v\n", b = "w,k\n";
    std::vector<std::string> expected;
    for (int i = 0; i < 7; ++i) {
      a += std::to_string(i) + ",a" + std::to_string(i) + "\n";
      b += "b" + std::to_string(i) + "," + std::to_string(100 + i) + "\n";
      expected.push_back(std::to_string(i) + ",a" + std::to_string(i) + ",");
      expected.push_back(std::to_string(100 + i) + ",,b" + std::to_string(i));
    }
    write_file(e, "a.csv", a);
    write_file(e, "b.csv", b);
    auto r = e.run(e.graph(union_graph(2)));
    REQUIRE(node(r, "sink").state == "succeeded");
    auto lines = e.lines("out.csv");
    REQUIRE(!lines.empty());
    CHECK(lines[0] == "k,v,w");
    lines.erase(lines.begin());
    std::sort(lines.begin(), lines.end());
    std::sort(expected.begin(), expected.end());
    CHECK(lines == expected);
    CHECK(node(r, "op").rows_out == 14);
  }
  {
    env e;
    write_file(e, "a.csv", "k,v\n1,x\n");
    write_file(e, "b.csv", "k,w\n"); // a header and no rows: no frames at all
    auto r = e.run(e.graph(union_graph()));
    REQUIRE(node(r, "sink").state == "succeeded");
    CHECK(e.lines("out.csv") == std::vector<std::string>{"k,v", "1,x"});
  }
}
