// The loom-io operators through the real executor: ingest.csv (globs, gzip, nulls),
// ingest.jsonl, ingest.text, ingest.idx, sink.jsonl and ingest.http (against servers on loopback).
#include "run_env.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

using namespace loom;
using loom::test::env;
using loom::test::node;
using loom::test::read_file;
using loom::test::write_file;
using loom::test::contains;

namespace {

void gzip(const env& e, const std::string& name) {
  REQUIRE(std::system(("gzip -f '" + e.dir + "/" + name + "'").c_str()) == 0);
}

/// rows in = rows out + rows rejected for a source: every data record is one or the other.
void check_accounting(const run_result& r, const std::string& id, uint64_t records) {
  CHECK(node(r, id).rows_out + node(r, id).rows_rejected == records);
}

} // namespace

// ---- ingest.csv ------------------------------------------------------------------------

TEST_CASE("ingest.csv: a glob reads files in sorted order as one table, gzip included", "[io][csv]") {
  env e;
  write_file(e, "in/b.csv", "id,name,score\n3,c,3.5\n4,d,x\n");
  write_file(e, "in/a.csv", "\xEF\xBB\xBFid,name,score\r\n1,a,1.5\r\n2,b,2\r\n");
  write_file(e, "in/c.csv", "id,name,score\n5,e,5.25\n6,\"f\n");
  write_file(e, "in/d.csv", "id,name,score\n\n7,g,7\n8,h\n");
  gzip(e, "in/d.csv");
  write_file(e, "in/notes.txt", "not csv");
  auto r = e.run(e.graph(R"(
name: glob
nodes:
  - {id: load, op: ingest.csv, with: {path: "in/*.csv*", infer_rows: 2}}
  - {id: out, op: sink.csv, inputs: load.out, with: {path: out.csv}}
  - {id: rej, op: sink.csv, inputs: load.rejects, with: {path: rej.csv}}
)"));
  REQUIRE(r.state == "succeeded");
  // score inferred from the first two records of a.csv: 1.5, 2 -> f64
  CHECK(read_file(e, "out.csv") == "id,name,score\n1,a,1.5\n2,b,2\n3,c,3.5\n5,e,5.25\n7,g,7\n");
  CHECK(read_file(e, "rej.csv") ==
        "file,line,reason,raw\n" +
        e.dir + "/in/b.csv,3,column 'score': 'x' is not a valid f64,\"4,d,x\"\n" +
        e.dir + "/in/c.csv,3,unterminated quoted field,\"6,\"\"f\n\"\n" +
        e.dir + "/in/d.csv.gz,4,\"expected 3 fields, found 2\",\"8,h\"\n");
  CHECK(node(r, "load").rows_out == 5);
  CHECK(node(r, "load").rows_rejected == 3);
  check_accounting(r, "load", 8);
}

TEST_CASE("ingest.csv: files of one glob must share the header", "[io][csv]") {
  env e;
  write_file(e, "in/1.csv", "id,name\n1,a\n");
  write_file(e, "in/2.csv", "id,label\n2,b\n");
  auto r = e.run(e.graph(R"(
name: mismatch
nodes:
  - {id: load, op: ingest.csv, with: {path: "in/?.csv"}}
  - {id: out, op: sink.csv, inputs: load.out, with: {path: out.csv}}
)"));
  CHECK(r.state == "failed");
  auto err = node(r, "load").error;
  CHECK(contains(err, e.dir + "/in/2.csv:1: the header (id,label) differs from the header of " + e.dir + "/in/1.csv (id,name)"));
  CHECK(!std::filesystem::exists(e.dir + "/out.csv"));
}

TEST_CASE("ingest.csv: missing files, empty globs and broken gzip are errors", "[io][csv]") {
  env e;
  write_file(e, "bad.csv", "id,name\n" + std::string(2000, 'x') + "\n");
  gzip(e, "bad.csv");
  {
    // cut the gzip file in half
    auto gz = read_file(e, "bad.csv.gz");
    write_file(e, "bad.csv.gz", gz.substr(0, gz.size() / 2));
  }
  struct row {
    std::string path, message;
  } cases[] = {
    {"nope.csv", "cannot open " + e.dir + "/nope.csv"},
    {"none/*.csv", "path: no file matches " + e.dir + "/none/*.csv"},
    {"bad.csv.gz", e.dir + "/bad.csv.gz: cannot decompress"},
  };
  for (auto& c : cases) {
    INFO(c.path);
    auto r = e.run(e.graph("name: missing\nnodes:\n  - {id: load, op: ingest.csv, with: {path: \"" + c.path + "\"}}\n"));
    CHECK(r.state == "failed");
    CHECK(contains(node(r, "load").error, c.message));
  }
}

TEST_CASE("ingest.csv: null_values, delimiters, no header and schema", "[io][csv]") {
  env e;
  write_file(e, "semi.csv", "a;b;c\n1;NA;x\nnull;2.5;\n3;;NA\n");
  write_file(e, "tab.tsv", "1\tyes\t-\n2\tno\t4\n");
  write_file(e, "pipe.csv", "k|v\n01|true\n2|false\n");
  auto r = e.run(e.graph(R"(
name: options
nodes:
  - {id: semi, op: ingest.csv, with: {path: semi.csv, delimiter: ";"}}
  - {id: semi_out, op: sink.jsonl, inputs: semi.out, with: {path: semi.jsonl}}
  - {id: raw, op: ingest.csv, with: {path: semi.csv, delimiter: ";", null_values: []}}
  - {id: raw_out, op: sink.jsonl, inputs: raw.out, with: {path: raw.jsonl}}
  - {id: tab, op: ingest.csv, with: {path: tab.tsv, delimiter: tab, header: false, null_values: ["-"]}}
  - {id: tab_out, op: sink.jsonl, inputs: tab.out, with: {path: tab.jsonl}}
  - {id: pipe, op: ingest.csv, with: {path: pipe.csv, delimiter: "|", schema: {k: string}}}
  - {id: pipe_out, op: sink.jsonl, inputs: pipe.out, with: {path: pipe.jsonl}}
)"));
  REQUIRE(r.state == "succeeded");
  // default nulls: "", NA, null
  CHECK(read_file(e, "semi.jsonl") == "{\"a\":1,\"b\":null,\"c\":\"x\"}\n"
                                      "{\"a\":null,\"b\":2.5,\"c\":null}\n"
                                      "{\"a\":3,\"b\":null,\"c\":null}\n");
  // no null values: everything is text, and a is not a number column any more
  CHECK(read_file(e, "raw.jsonl") == "{\"a\":\"1\",\"b\":\"NA\",\"c\":\"x\"}\n"
                                     "{\"a\":\"null\",\"b\":\"2.5\",\"c\":\"\"}\n"
                                     "{\"a\":\"3\",\"b\":\"\",\"c\":\"NA\"}\n");
  CHECK(read_file(e, "tab.jsonl") == "{\"c0\":1,\"c1\":\"yes\",\"c2\":null}\n{\"c0\":2,\"c1\":\"no\",\"c2\":4}\n");
  // schema keeps the leading zero of k
  CHECK(read_file(e, "pipe.jsonl") == "{\"k\":\"01\",\"v\":true}\n{\"k\":\"2\",\"v\":false}\n");
  CHECK(node(r, "semi").rows_out == 3);
  CHECK(node(r, "tab").rows_out == 2);
}

TEST_CASE("ingest.csv: max_errors and bad parameters fail the node with a precise message", "[io][csv]") {
  env e;
  write_file(e, "in.csv", "a,b\n1,2\n3\n4,5,6\n7,8\n");
  struct row {
    std::string with, message;
  } cases[] = {
    {"{path: in.csv, max_errors: 1}", e.dir + "/in.csv:4: expected 2 fields, found 3 (2 records rejected, more than max_errors = 1)"},
    {"{path: in.csv, max_errors: 0}", e.dir + "/in.csv:3: expected 2 fields, found 1 (1 records rejected"},
    {"{path: in.csv, delimiter: \"ab\"}", "delimiter must be one character"},
    {"{path: in.csv, frame_rows: 0}", "frame_rows must be positive"},
    {"{path: in.csv, schema: {zz: i64}}", "schema names column 'zz', which is not in"},
    {"{path: in.csv, schema: {a: decimal}}", "schema: unknown type 'decimal' for column 'a'"},
  };
  for (auto& c : cases) {
    INFO(c.with);
    auto r = e.run(e.graph("name: bad\nnodes:\n  - {id: load, op: ingest.csv, with: " + c.with + "}\n"));
    CHECK(r.state == "failed");
    CHECK(contains(node(r, "load").error, c.message));
  }
  auto r = e.run(e.graph("name: ok\nnodes:\n  - {id: load, op: ingest.csv, with: {path: in.csv, max_errors: 2}}\n"));
  CHECK(r.state == "succeeded");
  CHECK(node(r, "load").rows_out == 2);
  CHECK(node(r, "load").rows_rejected == 2);
}

namespace {

/// sink.csv's way of writing a field.
std::string csv_field(const std::string& v) {
  if (v.find_first_of(",\"\n\r") == std::string::npos)
    return v;
  std::string out = "\"";
  for (char ch : v) {
    if (ch == '"')
      out += '"';
    out += ch;
  }
  return out + "\"";
}

/// A CSV file made to exercise the block-parallel reader: records with quoted line
/// breaks and doubled quotes, CRLF ends, stray quotes in unquoted fields (which fool
/// the quote parity used to cut blocks), text after closing quotes, empty values, blank
/// lines and two kinds of bad records; and, for each of infer_rows 1, 2 and 3, a tricky
/// spot exactly where the first block of a one-thread parse ends (the bytes of the
/// header and the sample, plus 2 MiB). It knows what ingest.csv + sink.csv must give.
struct messy_csv {
  std::string text;
  std::string rows = "seq,text,score,note\n";           // expected sink.csv of the rows
  std::string rejects = "file,line,reason,raw\n";       // ... and of the rejects (file: FILE)
  std::vector<int64_t> seqs;                            // of the good rows, in order
  uint64_t records = 0;                                 // data records (good + rejected)
  uint64_t line = 1;

  void add(const std::string& rec, const std::string& end = "\n") {
    text += rec + end;
    line += static_cast<uint64_t>(std::count(rec.begin(), rec.end(), '\n')) + 1;
  }
  void good(int64_t seq, const std::string& rec, const std::string& txt, const std::string& score,
            const std::string& note, const std::string& end = "\n") {
    add(rec, end);
    ++records;
    seqs.push_back(seq);
    rows += std::to_string(seq) + "," + csv_field(txt) + "," + score + "," + csv_field(note) + "\n";
  }
  void bad(const std::string& rec, const std::string& reason) {
    rejects += "FILE," + std::to_string(line) + "," + csv_field(reason) + "," + csv_field(rec) + "\n";
    add(rec);
    ++records;
  }
  /// A record whose seq is `seq`, of one of several kinds.
  void any(int64_t i) {
    auto s = std::to_string(i);
    auto score = std::to_string(i % 1000) + ".25";
    if (i % 101 == 0)
      return bad(s + ",short", "expected 4 fields, found 2");
    if (i % 103 == 0)
      return bad(s + ",x,oops,y", "column 'score': 'oops' is not a valid f64");
    if (i % 211 == 0)
      add(""); // a blank line
    if (i % 97 == 5)
      return good(i, s + ",it\"s " + s + "," + score + ",x", "it\"s " + s, score, "x");
    switch (i % 6) {
      case 0: return good(i, s + ",name" + s + "," + score + ",plain", "name" + s, score, "plain");
      case 1:
        return good(i, s + ",\"multi\nline \"\"" + s + "\"\"\"," + score + ",\"a,b\"", "multi\nline \"" + s + "\"",
                    score, "a,b");
      case 2: return good(i, s + ",crlf" + s + "," + score + ",y", "crlf" + s, score, "y", "\r\n");
      case 3: return good(i, s + ",\"ab\"cd" + s + "," + score + ",z", "abcd" + s, score, "z");
      case 4: return good(i, s + ",,,", "", "", "");
      default: return good(i, s + ",\"lone\rcr\"," + score + ",\"\"", "lone\rcr", score, "");
    }
  }
  /// Adds records, the last one padded, so that byte `at` - 1 of the text will be byte
  /// `digits(i) + k` of the record added next (i is then its seq, digits(i) the length of
  /// its first field).
  void fill_to(int64_t& i, size_t at, size_t k) {
    while (text.size() + 400 < at)
      any(i++);
    const int64_t filler = i++;
    const size_t start = at - 1 - (std::to_string(i).size() + k); // of the next record
    std::string rec = std::to_string(filler) + ",pad,1.25,";
    REQUIRE(start > text.size() + rec.size());
    std::string pad(start - text.size() - 1 - rec.size(), 'p'); // and the LF
    good(filler, rec + pad, "pad", "1.25", pad);
    REQUIRE(text.size() == start);
  }
};

messy_csv make_messy_csv(int64_t n) {
  messy_csv m;
  m.add("seq,text,score,note");
  // three sample records; the 2nd and 3rd are long, so that the three tricky spots (at
  // the end of the sample of 1, 2 or 3 records, plus 2 MiB) lie apart
  m.good(1, "1,first,1.25,n", "first", "1.25", "n");
  const size_t after1 = m.text.size();
  m.good(2, "2,second,2.25," + std::string(1000, 'b'), "second", "2.25", std::string(1000, 'b'));
  const size_t after2 = m.text.size();
  m.good(3, "3,third,3.25," + std::string(1000, 'c'), "third", "3.25", std::string(1000, 'c'));
  const size_t after3 = m.text.size();
  const size_t block = size_t{2} << 20;
  int64_t i = 4;
  // infer_rows 1: the block ends between the quotes of a doubled quote
  m.fill_to(i, after1 + block, 5); // i,"dq ""
  m.good(i, std::to_string(i) + ",\"dq \"\"q\"\"\",4.25,n", "dq \"q\"", "4.25", "n");
  ++i;
  // infer_rows 2: between the CR and the LF of a CRLF
  m.fill_to(i, after2 + block, 12); // i,crlf,5.25,e\r
  m.good(i, std::to_string(i) + ",crlf,5.25,e", "crlf", "5.25", "e", "\r\n");
  ++i;
  // infer_rows 3: right after a line break inside quotes
  m.fill_to(i, after3 + block, 4); // i,"in\n
  m.good(i, std::to_string(i) + ",\"in\nquotes\",6.25,n", "in\nquotes", "6.25", "n");
  ++i;
  while (i < n)
    m.any(i++);
  // the last record has no line break
  m.good(i, std::to_string(i) + ",last,7.25,end", "last", "7.25", "end", "");
  return m;
}

} // namespace

TEST_CASE("ingest.csv: quoting, line ends and rejects, in the sample and after it", "[io][csv]") {
  env e;
  write_file(e, "q.csv",
             "id,text,n\r\n"
             "1,\"multi\nline \"\"q\"\"\",10\r\n"
             "2,it\"s,20\n"
             "3,\"ab\"cd,30\n"
             "4,lone\rcr,40\n"
             "5,\"\",\n"
             "\n"
             "7,\"a\nb\",zz\n"
             "8,x\n"
             "6,\"x,y\",60");
  // infer_rows 1: only the first record is read on its own, the rest by the block reader
  for (std::string infer : {"1", "1000"})
    for (std::string threads : {"1", "2"}) {
      INFO("infer_rows " << infer << ", threads " << threads);
      auto r = e.run(e.graph(R"(
name: quoting
nodes:
  - {id: load, op: ingest.csv, with: {path: q.csv, schema: {n: i64}, infer_rows: )" + infer + ", threads: " + threads + R"(}}
  - {id: out, op: sink.csv, inputs: load.out, with: {path: out.csv}}
  - {id: rej, op: sink.csv, inputs: load.rejects, with: {path: rej.csv}}
)"));
      REQUIRE(r.state == "succeeded");
      CHECK(read_file(e, "out.csv") == "id,text,n\n"
                                       "1,\"multi\nline \"\"q\"\"\",10\n"
                                       "2,\"it\"\"s\",20\n"
                                       "3,abcd,30\n"
                                       "4,\"lone\rcr\",40\n"
                                       "5,,\n"
                                       "6,\"x,y\",60\n");
      CHECK(read_file(e, "rej.csv") == "file,line,reason,raw\n" +
                                         e.dir + "/q.csv,9,column 'n': 'zz' is not a valid i64,\"7,\"\"a\nb\"\",zz\"\n" +
                                         e.dir + "/q.csv,11,\"expected 3 fields, found 2\",\"8,x\"\n");
      check_accounting(r, "load", 8);
    }
}

TEST_CASE("ingest.csv: block-parallel parsing gives the same frames and rejects for any number of threads",
          "[io][csv][parallel]") {
  env e;
  auto m = make_messy_csv(60000); // about 5 MB: several blocks, cut at quoted line breaks
  write_file(e, "big.csv", m.text);
  std::string expected_rejects = m.rejects;
  for (size_t at = 0; (at = expected_rejects.find("FILE,", at)) != std::string::npos;)
    expected_rejects.replace(at, 4, e.dir + "/big.csv");
  // frames of exactly frame_rows rows, numbered from 0, the last one shorter
  std::string expected_frames;
  for (size_t f = 0, row = 0; row < m.seqs.size(); ++f, row += 1000)
    expected_frames += std::to_string(f) + " " + std::to_string(std::min<size_t>(1000, m.seqs.size() - row)) + " " +
                       std::to_string(m.seqs[row]) + "\n";
  std::string first_rejects;
  for (std::string infer : {"1", "2", "3", "1000"})
    for (std::string threads : {"1", "2", "3", "4", "0"}) {
      if (infer != "1" && threads != "1" && threads != "2")
        continue;
      INFO("infer_rows " << infer << ", threads " << threads);
      auto r = e.run(e.graph(R"(
name: parallel
nodes:
  - id: load
    op: ingest.csv
    with: {path: big.csv, schema: {seq: i64, score: f64, text: string, note: string}, frame_rows: 1000, infer_rows: )" +
                             infer + ", threads: " + threads + R"(}
  - {id: out, op: sink.csv, inputs: load.out, with: {path: out.csv}}
  - {id: frames, op: test.collect, inputs: load.out, with: {path: frames.txt}}
  - {id: rej, op: sink.csv, inputs: load.rejects, with: {path: rej.csv}}
  - {id: rej_frames, op: test.collect, inputs: load.rejects, with: {path: rej_frames.txt}}
)"));
      REQUIRE(r.state == "succeeded");
      CHECK(read_file(e, "out.csv") == m.rows);
      CHECK(read_file(e, "rej.csv") == expected_rejects);
      CHECK(read_file(e, "frames.txt") == expected_frames);
      // the rejects go out with the frame whose rows they come between: the same grouping
      if (first_rejects.empty())
        first_rejects = read_file(e, "rej_frames.txt");
      CHECK(read_file(e, "rej_frames.txt") == first_rejects);
      CHECK(node(r, "load").rows_out == m.seqs.size());
      check_accounting(r, "load", m.records);
    }
}

TEST_CASE("ingest.csv: records longer than a block, quoted and not", "[io][csv][parallel]") {
  env e;
  // rows, then a 3 MiB quoted field with line breaks and doubled quotes, rows, a 5 MiB
  // unquoted field, rows: each long record is read over several blocks
  std::string quoted, plain(5 << 20, 'p'), text = "id,text\n", expected = "id,text\n";
  for (int i = 0; i < (3 << 20) / 16; ++i)
    quoted += i % 7 == 0 ? "line\nbreak \"q\" " : "0123456789abcde ";
  auto rows = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      text += std::to_string(i) + ",row" + std::to_string(i) + "\n";
      expected += std::to_string(i) + ",row" + std::to_string(i) + "\n";
    }
  };
  rows(0, 20000);
  std::string escaped;
  for (char ch : quoted)
    escaped += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  text += "20000,\"" + escaped + "\"\n";
  expected += "20000,\"" + escaped + "\"\n";
  rows(20001, 40000);
  text += "40000," + plain + "\r\n";
  expected += "40000," + plain + "\n";
  rows(40001, 60000);
  text += "60000,\"unterminated";
  write_file(e, "long.csv", text);
  const uint64_t line = 60000 + 2 + static_cast<uint64_t>(std::count(quoted.begin(), quoted.end(), '\n'));
  for (std::string threads : {"1", "2", "3"}) {
    INFO("threads " << threads);
    auto r = e.run(e.graph(R"(
name: long
nodes:
  - {id: load, op: ingest.csv, with: {path: long.csv, infer_rows: 10, threads: )" + threads + R"(}}
  - {id: out, op: sink.csv, inputs: load.out, with: {path: out.csv}}
  - {id: rej, op: sink.csv, inputs: load.rejects, with: {path: rej.csv}}
)"));
    REQUIRE(r.state == "succeeded");
    CHECK(read_file(e, "out.csv") == expected);
    CHECK(read_file(e, "rej.csv") == "file,line,reason,raw\n" + e.dir + "/long.csv," + std::to_string(line) +
                                       ",unterminated quoted field,\"60000,\"\"unterminated\"\n");
    check_accounting(r, "load", 60001);
  }
}

TEST_CASE("ingest.csv: max_errors stops a parallel parse at the same record", "[io][csv][parallel]") {
  env e;
  auto m = make_messy_csv(30000);
  write_file(e, "big.csv", m.text);
  // the 40th reject: its line is in the expected rejects
  std::string rej = m.rejects;
  size_t at = 0;
  for (int k = 0; k < 40; ++k)
    at = rej.find("\nFILE,", at) + 1;
  std::string line = rej.substr(at + 5, rej.find(',', at + 5) - (at + 5));
  for (std::string threads : {"1", "2", "4"}) {
    INFO("threads " << threads);
    auto r = e.run(e.graph("name: max\nnodes:\n  - {id: load, op: ingest.csv, with: {path: big.csv, max_errors: 39, "
                           "schema: {score: f64}, threads: " + threads + "}}\n"));
    CHECK(r.state == "failed");
    CHECK(contains(node(r, "load").error, e.dir + "/big.csv:" + line + ": "));
    CHECK(contains(node(r, "load").error, "(40 records rejected, more than max_errors = 39)"));
  }
  auto r = e.run(e.graph("name: bad\nnodes:\n  - {id: load, op: ingest.csv, with: {path: big.csv, threads: -1}}\n"));
  CHECK(r.state == "failed");
  CHECK(contains(node(r, "load").error, "threads must be 0 (one per core) or positive, got -1"));
}

// ---- ingest.jsonl -----------------------------------------------------------------------

TEST_CASE("ingest.jsonl: flattening, arrays as text, inferred types, missing keys", "[io][jsonl]") {
  env e;
  write_file(e, "in.jsonl",
             "\xEF\xBB\xBF{\"id\": 1, \"user\": {\"name\": \"Ann\", \"geo\": {\"cc\": \"DE\"}}, \"score\": 1, \"ok\": true, \"tags\": [1, \"a\"]}\r\n"
             "\n"
             "{\"id\": 2, \"user\": {\"name\": \"Bob \\\"B\\\"\"}, \"score\": 2.5, \"ok\": false, \"tags\": [], \"mixed\": 7}\n"
             "   \n"
             "{\"id\": 3, \"score\": null, \"ok\": null, \"mixed\": \"seven\", \"extra\": {}}\n");
  auto r = e.run(e.graph(R"(
name: jsonl
nodes:
  - {id: load, op: ingest.jsonl, with: {path: in.jsonl}}
  - {id: out, op: sink.csv, inputs: load.out, with: {path: out.csv}}
)"));
  REQUIRE(r.state == "succeeded");
  // columns in order of first appearance; id i64, score f64 (1 and 2.5), ok bool,
  // tags string (JSON text), mixed string (7 kept as its JSON text)
  CHECK(read_file(e, "out.csv") ==
        "id,user.name,user.geo.cc,score,ok,tags,mixed\n"
        "1,Ann,DE,1,true,\"[1,\"\"a\"\"]\",\n"
        "2,\"Bob \"\"B\"\"\",,2.5,false,[],7\n"
        "3,,,,,,seven\n");
  CHECK(node(r, "load").rows_out == 3);
  CHECK(node(r, "load").rows_rejected == 0);
}

TEST_CASE("ingest.jsonl: every reject reason, with file and line", "[io][jsonl]") {
  env e;
  write_file(e, "in.jsonl",
             "{\"a\": 1, \"b\": \"x\", \"c\": true}\n"          // 1 ok
             "{\"a\": 2, \"b\": \"y\"}\n"                       // 2 ok (c null)
             "{\"a\": 3, \"b\": \"z\", \"late\": 1}\n"          // 3 unknown key
             "{\"a\": 1.5}\n"                                   // 4 not an i64
             "not json\n"                                       // 5
             "[1, 2]\n"                                         // 6 not an object
             "{\"a\": 4, \"c\": \"yes\"}\n"                     // 7 not a bool
             "{\"a\": 5, \"b\": {\"q\": 1}, \"b.q\": 2}\n"      // 8 duplicate after flattening
             "{\"a\": 6, \"b\": 12, \"c\": false}\n"            // 9 ok: number into string column
             "{\"a\": 7\n");                                    // 10 truncated
  auto r = e.run(e.graph(R"(
name: rejects
nodes:
  - {id: load, op: ingest.jsonl, with: {path: in.jsonl, infer_rows: 2}}
  - {id: out, op: sink.jsonl, inputs: load.out, with: {path: out.jsonl}}
  - {id: rej, op: sink.csv, inputs: load.rejects, with: {path: rej.csv}}
)"));
  REQUIRE(r.state == "succeeded");
  CHECK(read_file(e, "out.jsonl") == "{\"a\":1,\"b\":\"x\",\"c\":true}\n"
                                     "{\"a\":2,\"b\":\"y\",\"c\":null}\n"
                                     "{\"a\":6,\"b\":\"12\",\"c\":false}\n");
  auto rej = e.lines("rej.csv");
  REQUIRE(rej.size() == 8);
  std::string f = e.dir + "/in.jsonl";
  CHECK(rej[1] == f + ",3,\"key 'late' is not a column (it is not in the first infer_rows = 2 records; name it in schema, or set unknown_keys: ignore)\",\"{\"\"a\"\": 3, \"\"b\"\": \"\"z\"\", \"\"late\"\": 1}\"");
  CHECK(rej[2] == f + ",4,column 'a': 1.5 is not a valid i64,\"{\"\"a\"\": 1.5}\"");
  CHECK(contains(rej[3], f + ",5,\"not valid JSON: parse error at line 1, column 2: syntax error"));
  CHECK(contains(rej[3], ",not json"));
  CHECK(rej[4] == f + ",6,not a JSON object but array,\"[1, 2]\"");
  CHECK(rej[5] == f + ",7,\"column 'c': \"\"yes\"\" is not a valid bool\",\"{\"\"a\"\": 4, \"\"c\"\": \"\"yes\"\"}\"");
  CHECK(contains(rej[6], f + ",8,key 'b.q' appears twice once nested objects are flattened,"));
  CHECK(contains(rej[7], f + ",10,\"not valid JSON: parse error at line 1, column 8"));
  CHECK(node(r, "load").rows_out == 3);
  CHECK(node(r, "load").rows_rejected == 7);
  check_accounting(r, "load", 10);
}

TEST_CASE("ingest.jsonl: unknown_keys ignore, schema columns and types, glob with gzip", "[io][jsonl]") {
  env e;
  write_file(e, "d/1.jsonl", "{\"id\": \"007\", \"v\": 1}\n{\"id\": \"008\", \"v\": 2}\n");
  write_file(e, "d/2.jsonl", "{\"id\": \"009\", \"v\": 3, \"late\": \"x\", \"later\": 4}\n");
  gzip(e, "d/2.jsonl");
  auto r = e.run(e.graph(R"(
name: opts
nodes:
  - {id: ignore, op: ingest.jsonl, with: {path: "d/*", infer_rows: 1, unknown_keys: ignore}}
  - {id: i_out, op: sink.jsonl, inputs: ignore.out, with: {path: ignore.jsonl}}
  - {id: schema, op: ingest.jsonl, with: {path: "d/*", infer_rows: 1, schema: {v: f64, later: i64}}}
  - {id: s_out, op: sink.jsonl, inputs: schema.out, with: {path: schema.jsonl}}
  - {id: s_rej, op: sink.csv, inputs: schema.rejects, with: {path: schema_rej.csv}}
)"));
  REQUIRE(r.state == "succeeded");
  CHECK(read_file(e, "ignore.jsonl") == "{\"id\":\"007\",\"v\":1}\n{\"id\":\"008\",\"v\":2}\n{\"id\":\"009\",\"v\":3}\n");
  // schema makes v f64 and adds 'later'; 'late' is still unknown -> the gz line is rejected
  CHECK(read_file(e, "schema.jsonl") == "{\"id\":\"007\",\"v\":1.0,\"later\":null}\n{\"id\":\"008\",\"v\":2.0,\"later\":null}\n");
  CHECK(contains(read_file(e, "schema_rej.csv"), e.dir + "/d/2.jsonl.gz,1,\"key 'late' is not a column"));
  CHECK(node(r, "ignore").rows_rejected == 0);
  CHECK(node(r, "schema").rows_rejected == 1);
  check_accounting(r, "schema", 3);
}

TEST_CASE("ingest.jsonl: max_errors, bad parameters and empty input", "[io][jsonl]") {
  env e;
  write_file(e, "in.jsonl", "{\"a\": 1}\nnope\n{\"a\": 2}\n");
  write_file(e, "empty.jsonl", "\n\n");
  struct row {
    std::string with, message;
  } cases[] = {
    {"{path: in.jsonl, max_errors: 0}", e.dir + "/in.jsonl:2: not valid JSON"},
    {"{path: in.jsonl, unknown_keys: keep}", "unknown_keys must be reject or ignore, got 'keep'"},
    {"{path: in.jsonl, infer_rows: -1}", "infer_rows must be positive"},
    {"{path: in.jsonl, schema: {a: [i64]}}", "schema: the type of column 'a' must be a string"},
    {"{path: empty.jsonl}", e.dir + "/empty.jsonl: no records"},
  };
  for (auto& c : cases) {
    INFO(c.with);
    auto r = e.run(e.graph("name: bad\nnodes:\n  - {id: load, op: ingest.jsonl, with: " + c.with + "}\n"));
    CHECK(r.state == "failed");
    CHECK(contains(node(r, "load").error, c.message));
  }
}

// ---- sink.jsonl ---------------------------------------------------------------------------

TEST_CASE("sink.jsonl: escapes, nulls, numbers, and a round trip through ingest.jsonl", "[io][sink]") {
  env e;
  write_file(e, "in.csv",
             "i,f,b,s\n"
             "1,1.0,true,\"quote \"\" back\\slash\"\n"
             "-2,0.1,false,\"tab\tnew\nline\"\n"
             ",1e300,,\x01 ctrl \xC3\xA9\n"
             "4,nan,true,\xFF bad\n");
  auto r = e.run(e.graph(R"(
name: sink
nodes:
  - {id: load, op: ingest.csv, with: {path: in.csv}}
  - {id: out, op: sink.jsonl, inputs: load.out, with: {path: out/rows.jsonl}}
)"));
  REQUIRE(r.state == "succeeded");
  std::string expected =
    "{\"i\":1,\"f\":1.0,\"b\":true,\"s\":\"quote \\\" back\\\\slash\"}\n"
    "{\"i\":-2,\"f\":0.1,\"b\":false,\"s\":\"tab\\tnew\\nline\"}\n"
    "{\"i\":null,\"f\":1e+300,\"b\":null,\"s\":\"\\u0001 ctrl \xC3\xA9\"}\n"
    "{\"i\":4,\"f\":null,\"b\":true,\"s\":\"\xEF\xBF\xBD bad\"}\n";
  CHECK(read_file(e, "out/rows.jsonl") == expected);
  // what was written reads back with the same types and values
  auto r2 = e.run(e.graph(R"(
name: back
nodes:
  - {id: load, op: ingest.jsonl, with: {path: out/rows.jsonl}}
  - {id: out, op: sink.jsonl, inputs: load.out, with: {path: again.jsonl}}
)"));
  REQUIRE(r2.state == "succeeded");
  CHECK(read_file(e, "again.jsonl") == expected);
}

TEST_CASE("sink.jsonl: a failed run leaves no file behind", "[io][sink]") {
  env e;
  write_file(e, "in.csv", "a\n1\n2\nx\n");
  auto r = e.run(e.graph(R"(
name: fail
nodes:
  - {id: load, op: ingest.csv, with: {path: in.csv, max_errors: 0, frame_rows: 1, infer_rows: 2}}
  - {id: out, op: sink.jsonl, inputs: load.out, with: {path: out/rows.jsonl}}
)"));
  CHECK(r.state == "failed");
  CHECK(contains(node(r, "load").error, "column 'a': 'x' is not a valid i64"));
  CHECK(!std::filesystem::exists(e.dir + "/out/rows.jsonl"));
  REQUIRE(std::filesystem::exists(e.dir + "/out")); // the sink did start
  for (auto& entry : std::filesystem::directory_iterator(e.dir + "/out"))
    FAIL("left behind: " << entry.path());
}

// ---- ingest.text ----------------------------------------------------------------------------

TEST_CASE("ingest.text files: labels from folders, extensions, size and UTF-8 rejects", "[io][text]") {
  env e;
  write_file(e, "docs/pos/a.txt", "great film\nloved it");
  write_file(e, "docs/pos/b.txt", "\xEF\xBB\xBF" "caf\xC3\xA9 ok");
  write_file(e, "docs/neg/c.txt", "boring");
  write_file(e, "docs/neg/big.txt", std::string(50, 'z'));
  write_file(e, "docs/neg/latin1.txt", "caf\xE9");
  write_file(e, "docs/neg/notes.md", "not a review");
  write_file(e, "docs/top.txt", "no label");
  auto r = e.run(e.graph(R"(
name: text
nodes:
  - {id: load, op: ingest.text, with: {path: docs, extensions: [.txt], max_bytes: 40, frame_rows: 2}}
  - {id: out, op: sink.jsonl, inputs: load.out, with: {path: out.jsonl}}
  - {id: rej, op: sink.csv, inputs: load.rejects, with: {path: rej.csv}}
  - {id: all, op: ingest.text, with: {path: docs}}
)"));
  REQUIRE(r.state == "succeeded");
  CHECK(read_file(e, "out.jsonl") == "{\"path\":\"neg/c.txt\",\"label\":\"neg\",\"text\":\"boring\"}\n"
                                     "{\"path\":\"pos/a.txt\",\"label\":\"pos\",\"text\":\"great film\\nloved it\"}\n"
                                     "{\"path\":\"pos/b.txt\",\"label\":\"pos\",\"text\":\"caf\xC3\xA9 ok\"}\n"
                                     "{\"path\":\"top.txt\",\"label\":null,\"text\":\"no label\"}\n");
  auto rej = e.lines("rej.csv");
  REQUIRE(rej.size() == 3);
  CHECK(rej[1] == e.dir + "/docs/neg/big.txt,0,\"document is 50 bytes, more than max_bytes = 40\",");
  CHECK(rej[2] == e.dir + "/docs/neg/latin1.txt,0,not valid UTF-8 (byte 0xE9 at offset 3),caf\xEF\xBF\xBD");
  CHECK(node(r, "load").rows_out == 4);
  CHECK(node(r, "load").rows_rejected == 2);
  CHECK(node(r, "load").frames_out == 3); // two of documents (frame_rows: 2), one of rejects
  // no filter, default max_bytes: the .md file is read too; only latin1.txt is rejected
  CHECK(node(r, "all").rows_out == 6);
  CHECK(node(r, "all").rows_rejected == 1);
}

TEST_CASE("ingest.text lines: one document per line, blanks, CRLF, rejects with line numbers", "[io][text]") {
  env e;
  write_file(e, "corpus.txt", "\xEF\xBB\xBF" "first line\r\n\r\n  \nsecond \xC3\xA9\n\xC0\xAF overlong\n" + std::string(30, 'y') + "\nlast");
  auto r = e.run(e.graph(R"(
name: lines
nodes:
  - {id: load, op: ingest.text, with: {path: corpus.txt, mode: lines, max_bytes: 20}}
  - {id: out, op: sink.csv, inputs: load.out, with: {path: out.csv}}
  - {id: rej, op: sink.csv, inputs: load.rejects, with: {path: rej.csv}}
  - {id: blanks, op: ingest.text, with: {path: corpus.txt, mode: lines, skip_blank: false, max_bytes: 100}}
  - {id: b_out, op: sink.csv, inputs: blanks.out, with: {path: blanks.csv}}
)"));
  REQUIRE(r.state == "succeeded");
  std::string f = e.dir + "/corpus.txt";
  CHECK(read_file(e, "out.csv") == "path,line,text\n" + f + ",1,first line\n" + f + ",4,second \xC3\xA9\n" + f + ",7,last\n");
  auto rej = e.lines("rej.csv");
  REQUIRE(rej.size() == 3);
  CHECK(rej[1] == f + ",5,not valid UTF-8 (byte 0xC0 at offset 0),\xEF\xBF\xBD\xEF\xBF\xBD overlong");
  CHECK(rej[2] == f + ",6,\"document is 30 bytes, more than max_bytes = 20\"," + std::string(30, 'y'));
  CHECK(node(r, "load").rows_out == 3);
  CHECK(node(r, "load").rows_rejected == 2);
  CHECK(e.lines("blanks.csv").size() == 1 + 6);
  CHECK(node(r, "blanks").rows_rejected == 1);
}

TEST_CASE("ingest.text: bad parameters", "[io][text]") {
  env e;
  write_file(e, "one.txt", "x");
  struct row {
    std::string with, message;
  } cases[] = {
    {"{path: one.txt}", "is not a folder"},
    {"{path: one.txt, mode: words}", "mode must be files or lines, got 'words'"},
    {"{path: ., max_bytes: 0}", "max_bytes must be positive"},
    {"{path: ., extensions: [\"\"]}", "extensions: an entry is empty"},
    {"{path: nothing.txt, mode: lines}", "cannot open " + e.dir + "/nothing.txt"},
  };
  for (auto& c : cases) {
    INFO(c.with);
    auto r = e.run(e.graph("name: bad\nnodes:\n  - {id: load, op: ingest.text, with: " + c.with + "}\n"));
    CHECK(r.state == "failed");
    CHECK(contains(node(r, "load").error, c.message));
  }
}

// ---- ingest.idx ----------------------------------------------------------------------------

namespace {

/// An IDX file: magic 0x0000TTDD, big-endian dimensions, then `data` as given.
std::string idx_file(uint8_t type, const std::vector<uint32_t>& dims, const std::string& data) {
  std::string s{'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
  for (auto d : dims)
    for (int shift = 24; shift >= 0; shift -= 8)
      s.push_back(static_cast<char>((d >> shift) & 0xFF));
  return s + data;
}

std::string bytes(std::initializer_list<int> v) {
  std::string s;
  for (int x : v)
    s.push_back(static_cast<char>(x));
  return s;
}

/// Splits a CSV line without quotes.
std::vector<std::string> fields(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string f;
  while (std::getline(ss, f, ','))
    out.push_back(f);
  return out;
}

const std::string fashion_dir = "/usr/share/datasets/fashion-mnist";

} // namespace

TEST_CASE("ingest.idx: u8 images and labels, plain and gzip, raw and normalized, class names", "[io][idx]") {
  env e;
  // 5 images of 2x3 pixels, labels 0..2
  std::string pixels = bytes({0, 51, 102, 153, 204, 255,     //
                              255, 0, 0, 0, 0, 1,            //
                              10, 20, 30, 40, 50, 60,        //
                              1, 2, 3, 4, 5, 6,              //
                              128, 128, 128, 128, 128, 128});
  write_file(e, "imgs.idx", idx_file(0x08, {5, 2, 3}, pixels));
  write_file(e, "labels.idx", idx_file(0x08, {5}, bytes({2, 0, 1, 1, 0})));
  write_file(e, "imgs2.idx", idx_file(0x08, {5, 2, 3}, pixels));
  write_file(e, "labels2.idx", idx_file(0x08, {5}, bytes({2, 0, 1, 1, 0})));
  gzip(e, "imgs2.idx");
  gzip(e, "labels2.idx");
  auto r = e.run(e.graph(R"(
name: idx
nodes:
  - {id: raw, op: ingest.idx, with: {images: imgs.idx, labels: labels.idx, normalize: false, rows_per_frame: 2}}
  - {id: raw_out, op: sink.csv, inputs: raw.out, with: {path: raw.csv}}
  - id: gz
    op: ingest.idx
    with: {images: imgs2.idx.gz, labels: labels2.idx.gz, class_names: [cat, dog, "bird, small"]}
  - {id: gz_out, op: sink.csv, inputs: gz.out, with: {path: gz.csv}}
  - {id: first, op: ingest.idx, with: {images: imgs2.idx.gz, limit: 2}}
  - {id: first_out, op: sink.csv, inputs: first.out, with: {path: first.csv}}
)"));
  REQUIRE(r.state == "succeeded");
  std::string header = "pixel_0,pixel_1,pixel_2,pixel_3,pixel_4,pixel_5";
  CHECK(read_file(e, "raw.csv") == header + ",label\n"
                                   "0,51,102,153,204,255,2\n"
                                   "255,0,0,0,0,1,0\n"
                                   "10,20,30,40,50,60,1\n"
                                   "1,2,3,4,5,6,1\n"
                                   "128,128,128,128,128,128,0\n");
  CHECK(node(r, "raw").rows_out == 5);
  CHECK(node(r, "raw").frames_out == 3); // 2 + 2 + 1
  auto gz = e.lines("gz.csv");
  REQUIRE(gz.size() == 6);
  CHECK(gz[0] == header + ",label");
  CHECK(gz[1] == "0,0.2,0.4,0.6,0.8,1,\"bird, small\"");
  CHECK(gz[2] == "1,0,0,0,0,0.003921569,cat");
  CHECK(gz[4].ends_with(",dog"));
  CHECK(node(r, "gz").frames_out == 1);
  // limit: the first records only, no label column without labels
  CHECK(read_file(e, "first.csv") == header + "\n0,0.2,0.4,0.6,0.8,1\n1,0,0,0,0,0.003921569\n");
}

TEST_CASE("ingest.idx: other value types and one-dimensional records", "[io][idx]") {
  env e;
  // 3 records of 2 i16 values (big-endian), labels i32
  write_file(e, "v.idx", idx_file(0x0B, {3, 2}, bytes({0x01, 0x00, 0xFF, 0xFE, 0x7F, 0xFF, 0x80, 0x00, 0, 0, 0, 7})));
  write_file(e, "l.idx", idx_file(0x0C, {3}, bytes({0, 0, 0, 5, 0, 0, 1, 0, 0xFF, 0xFF, 0xFF, 0xFF})));
  // 2 f32 scalars: 1.5 = 0x3FC00000, -2.25 = 0xC0100000
  write_file(e, "f.idx", idx_file(0x0D, {2}, bytes({0x3F, 0xC0, 0, 0, 0xC0, 0x10, 0, 0})));
  auto r = e.run(e.graph(R"(
name: types
nodes:
  - {id: i16, op: ingest.idx, with: {images: v.idx, labels: l.idx}}
  - {id: i16_out, op: sink.csv, inputs: i16.out, with: {path: i16.csv}}
  - {id: f32, op: ingest.idx, with: {images: f.idx}}
  - {id: f32_out, op: sink.csv, inputs: f32.out, with: {path: f32.csv}}
)"));
  REQUIRE(r.state == "succeeded");
  // normalize divides u8 only
  CHECK(read_file(e, "i16.csv") == "pixel_0,pixel_1,label\n256,-2,5\n32767,-32768,256\n0,7,-1\n");
  CHECK(read_file(e, "f32.csv") == "pixel_0\n1.5\n-2.25\n");
}

TEST_CASE("ingest.idx: bad magic, truncation, count mismatch, bad labels and parameters fail naming the file",
          "[io][idx]") {
  env e;
  std::string six = bytes({1, 2, 3, 4, 5, 6});
  write_file(e, "imgs.idx", idx_file(0x08, {3, 1, 2}, six));
  write_file(e, "labels.idx", idx_file(0x08, {3}, bytes({0, 1, 2})));
  write_file(e, "labels4.idx", idx_file(0x08, {4}, bytes({0, 1, 2, 3})));
  write_file(e, "labels2d.idx", idx_file(0x08, {3, 1}, bytes({0, 1, 2})));
  write_file(e, "short.idx", idx_file(0x08, {3, 1, 2}, six.substr(0, 5)));
  write_file(e, "long.idx", idx_file(0x08, {3, 1, 2}, six + "x"));
  write_file(e, "tiny.idx", std::string("\0\0", 2));
  write_file(e, "text.csv", "a,b\n1,2\n");
  write_file(e, "f64.idx", idx_file(0x0E, {3}, std::string(24, '\0')));
  // a complete gzip stream of an IDX file that ends within its records
  write_file(e, "short_gz.idx", idx_file(0x08, {3, 1, 2}, six.substr(0, 3)));
  gzip(e, "short_gz.idx");
  // a gzip stream cut short
  write_file(e, "big.idx", idx_file(0x08, {2000, 2, 2}, std::string(8000, '\x07')));
  gzip(e, "big.idx");
  {
    auto gz = read_file(e, "big.idx.gz");
    write_file(e, "big.idx.gz", gz.substr(0, gz.size() / 2));
  }
  struct row {
    std::string with, message;
  } cases[] = {
    {"{images: text.csv}", e.dir + "/text.csv: not an IDX file (magic number 0x612C620A; expected 0x00000803"},
    {"{images: tiny.idx}", e.dir + "/tiny.idx: truncated: the file ends within its header"},
    {"{images: short.idx}", e.dir + "/short.idx: truncated: the header declares 3 records of 1x2 u8 (22 bytes with "
                            "the header), but the file has 21 bytes"},
    {"{images: long.idx}", e.dir + "/long.idx: 1 bytes after the 3 records the header declares"},
    {"{images: short_gz.idx.gz}", e.dir + "/short_gz.idx.gz: truncated: the file ends within record 1 of the 3"},
    {"{images: big.idx.gz}", e.dir + "/big.idx.gz: cannot decompress"},
    {"{images: imgs.idx, labels: labels4.idx}",
     e.dir + "/labels4.idx has 4 labels but " + e.dir + "/imgs.idx has 3 images: the counts must match"},
    {"{images: imgs.idx, labels: labels2d.idx}", e.dir + "/labels2d.idx: a labels file holds one integer per image"},
    {"{images: imgs.idx, labels: f64.idx}", e.dir + "/f64.idx: a labels file holds one integer per image"},
    {"{images: imgs.idx, labels: labels.idx, class_names: [a, b]}",
     e.dir + "/labels.idx: label 2 of record 3 has no name: class_names names 2 classes (labels 0..1)"},
    {"{images: imgs.idx, class_names: [a, b]}", "class_names is set but labels is not"},
    {"{images: imgs.idx, labels: labels.idx, class_names: []}", "class_names: the list is empty"},
    {"{images: imgs.idx, rows_per_frame: 0}", "rows_per_frame must be positive, got 0"},
    {"{images: imgs.idx, limit: -1}", "limit must be 0 (all records) or positive, got -1"},
    {"{images: nope.idx.gz}", "cannot open " + e.dir + "/nope.idx.gz"},
  };
  for (auto& c : cases) {
    INFO(c.with);
    auto r = e.run(e.graph("name: bad\nnodes:\n  - {id: load, op: ingest.idx, with: " + c.with + "}\n"));
    CHECK(r.state == "failed");
    CHECK(contains(node(r, "load").error, c.message));
  }
}

TEST_CASE("ingest.idx: Debian's Fashion-MNIST test set", "[io][idx][fashion]") {
  auto images = fashion_dir + "/t10k-images-idx3-ubyte.gz", labels = fashion_dir + "/t10k-labels-idx1-ubyte.gz";
  if (!std::filesystem::exists(images) || !std::filesystem::exists(labels)) {
    WARN("dataset-fashion-mnist is not installed; skipped");
    return;
  }
  env e;
  auto r = e.run(e.graph("name: fashion\nnodes:\n"
                         "  - {id: all, op: ingest.idx, with: {images: " + images + ", labels: " + labels + "}}\n"
                         "  - {id: head, op: ingest.idx, with: {images: " + images + ", labels: " + labels +
                         ", limit: 3}}\n"
                         "  - {id: head_out, op: sink.csv, inputs: head.out, with: {path: head.csv}}\n"));
  REQUIRE(r.state == "succeeded");
  CHECK(node(r, "all").rows_out == 10000);
  CHECK(node(r, "all").frames_out == 10); // ceil(10000 / 1024)
  // the first records against the file read independently (gzip -dc)
  REQUIRE(std::system(("gzip -dc " + images + " > " + e.dir + "/img.raw && gzip -dc " + labels + " > " + e.dir +
                       "/lab.raw").c_str()) == 0);
  auto img = read_file(e, "img.raw"), lab = read_file(e, "lab.raw");
  REQUIRE(img.size() == 16 + 10000 * 784);
  REQUIRE(lab.size() == 8 + 10000);
  auto csv = e.lines("head.csv");
  REQUIRE(csv.size() == 4);
  auto head = fields(csv[0]);
  REQUIRE(head.size() == 785);
  CHECK(head[0] == "pixel_0");
  CHECK(head[783] == "pixel_783");
  CHECK(head[784] == "label");
  for (size_t row = 0; row < 3; ++row) {
    auto f = fields(csv[row + 1]);
    REQUIRE(f.size() == 785);
    for (size_t c = 0; c < 784; ++c) {
      auto px = static_cast<unsigned char>(img[16 + row * 784 + c]);
      INFO("row " << row << " pixel " << c);
      CHECK(std::stof(f[c]) == static_cast<float>(px) / 255.0f);
    }
    CHECK(f[784] == std::to_string(static_cast<unsigned char>(lab[8 + row])));
  }
}

// ---- ingest.http ----------------------------------------------------------------------------

namespace {

std::string http_response(int status, const std::string& reason, const std::string& content_type,
                          const std::string& body, const std::string& extra = "") {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: " + content_type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra + "Connection: close\r\n\r\n" + body;
}

/// A tiny HTTP server on 127.0.0.1 (ephemeral port) answering each path with a canned
/// response (404 for others). The path "/hang" accepts and never answers.
class test_server {
public:
  explicit test_server(std::map<std::string, std::string> responses) : responses_(std::move(responses)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~test_server() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port) + path; }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

  int port = 0;

private:
  void loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0)
        continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0)
        continue;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        auto n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0)
          break;
        req.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(req);
      }
      auto sp1 = req.find(' '), sp2 = req.find(' ', sp1 + 1);
      std::string path = sp1 == std::string::npos ? "" : req.substr(sp1 + 1, sp2 - sp1 - 1);
      if (path == "/hang") {
        while (!stop_)
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
      } else {
        auto it = responses_.find(path);
        std::string res = it != responses_.end() ? it->second
                                                 : http_response(404, "Not Found", "text/plain", "no such thing: " + path);
        size_t sent = 0;
        while (sent < res.size()) {
          auto n = ::send(c, res.data() + sent, res.size() - sent, MSG_NOSIGNAL);
          if (n <= 0)
            break;
          sent += static_cast<size_t>(n);
        }
      }
      ::close(c);
    }
  }

  std::map<std::string, std::string> responses_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> requests_;
};

/// A port on 127.0.0.1 that nothing listens on (bound, then closed).
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

run_result run_http(env& e, const std::string& with) {
  return e.run(e.graph("name: http\nnodes:\n"
                       "  - {id: load, op: ingest.http, with: " + with + "}\n"
                       "  - {id: out, op: sink.csv, inputs: load.out, with: {path: out.csv}}\n"
                       "  - {id: rej, op: sink.csv, inputs: load.rejects, with: {path: rej.csv}}\n"));
}

} // namespace

TEST_CASE("ingest.http: CSV and JSONL bodies, format detection, rejects name the URL", "[io][http]") {
  test_server server({
    {"/data.csv", http_response(200, "OK", "text/csv; charset=utf-8", "id,name\n1,a\n2,\"b,c\"\nx,d\n3\n")},
    {"/events", http_response(200, "OK", "application/x-ndjson", "{\"id\": 1, \"u\": {\"n\": \"a\"}}\n{\"id\": \"x\"}\n")},
    {"/export.jsonl?day=1", http_response(200, "OK", "application/octet-stream", "{\"k\": true}\n")},
    {"/plain", http_response(200, "OK", "text/plain", "a;b\n1;2\n")},
    {"/old", http_response(302, "Found", "text/plain", "", "Location: /data.csv\r\n")},
  });
  {
    env e;
    auto r = run_http(e, "{url: \"" + server.url("/data.csv") + "\", infer_rows: 2, headers: {X-Token: s3cret}}");
    REQUIRE(r.state == "succeeded");
    CHECK(read_file(e, "out.csv") == "id,name\n1,a\n2,\"b,c\"\n");
    auto rej = e.lines("rej.csv");
    REQUIRE(rej.size() == 3);
    CHECK(rej[1] == server.url("/data.csv") + ",4,column 'id': 'x' is not a valid i64,\"x,d\"");
    CHECK(rej[2] == server.url("/data.csv") + ",5,\"expected 2 fields, found 1\",3");
    check_accounting(r, "load", 4);
    CHECK(node(r, "load").metrics.at("http_status") == 200);
    auto reqs = server.requests();
    REQUIRE(!reqs.empty());
    CHECK(reqs.back().rfind("GET /data.csv HTTP/1.1\r\n", 0) == 0);
    CHECK(contains(reqs.back(), "X-Token: s3cret\r\n"));
    CHECK(contains(reqs.back(), "Host: 127.0.0.1:" + std::to_string(server.port) + "\r\n"));
  }
  {
    env e; // by Content-Type
    auto r = run_http(e, "{url: \"" + server.url("/events") + "\", infer_rows: 1}");
    REQUIRE(r.state == "succeeded");
    CHECK(read_file(e, "out.csv") == "id,u.n\n1,a\n");
    CHECK(contains(read_file(e, "rej.csv"), server.url("/events") + ",2,\"column 'id': \"\"x\"\" is not a valid i64\""));
  }
  {
    env e; // by the URL's extension
    auto r = run_http(e, "{url: \"" + server.url("/export.jsonl?day=1") + "\"}");
    REQUIRE(r.state == "succeeded");
    CHECK(read_file(e, "out.csv") == "k\ntrue\n");
  }
  {
    env e; // text/plain: only an explicit format tells
    auto r = run_http(e, "{url: \"" + server.url("/plain") + "\"}");
    CHECK(r.state == "failed");
    CHECK(contains(node(r, "load").error, "cannot tell whether the body is CSV or JSON Lines (Content-Type: 'text/plain')"));
    auto r2 = run_http(e, "{url: \"" + server.url("/plain") + "\", format: csv, delimiter: \";\"}");
    REQUIRE(r2.state == "succeeded");
    CHECK(read_file(e, "out.csv") == "a,b\n1,2\n");
  }
  {
    env e; // a redirect is followed
    auto r = run_http(e, "{url: \"" + server.url("/old") + "\", infer_rows: 2}");
    REQUIRE(r.state == "succeeded");
    CHECK(read_file(e, "out.csv") == "id,name\n1,a\n2,\"b,c\"\n");
  }
}

TEST_CASE("ingest.http: gzip bodies (Content-Encoding or a .gz file), truncated and unknown encodings",
          "[io][http][gzip]") {
  env g; // gzip-compressed bodies made by gzip(1); two files concatenated are two members
  std::string csv = "id,name\n";
  for (int i = 0; i < 5000; ++i)
    csv += std::to_string(i) + ",name" + std::to_string(i % 7) + "\n";
  write_file(g, "a.csv", csv);
  gzip(g, "a.csv");
  const std::string gz = read_file(g, "a.csv.gz");
  write_file(g, "b.csv", "5000,last\n");
  gzip(g, "b.csv");
  const std::string two_members = gz + read_file(g, "b.csv.gz");
  test_server server({
    {"/enc", http_response(200, "OK", "text/csv", gz, "Content-Encoding: gzip\r\n")},
    {"/two", http_response(200, "OK", "text/csv", two_members, "Content-Encoding: gzip\r\n")},
    {"/file.csv.gz", http_response(200, "OK", "application/gzip", gz)},
    {"/cut", http_response(200, "OK", "text/csv", gz.substr(0, gz.size() / 2), "Content-Encoding: gzip\r\n")},
    {"/br", http_response(200, "OK", "text/csv", "id\n1\n", "Content-Encoding: br\r\n")},
  });
  for (const char* path : {"/enc", "/file.csv.gz"}) {
    DYNAMIC_SECTION(path) {
      env e;
      auto r = run_http(e, "{url: \"" + server.url(path) + "\"}");
      REQUIRE(r.state == "succeeded");
      CHECK(read_file(e, "out.csv") == csv);
      check_accounting(r, "load", 5000);
      CHECK(node(r, "load").metrics.at("bytes") == static_cast<double>(gz.size()));
      CHECK(node(r, "load").metrics.at("bytes_decompressed") == static_cast<double>(csv.size()));
      auto reqs = server.requests();
      REQUIRE(!reqs.empty());
      CHECK(contains(reqs.back(), "Accept-Encoding: gzip\r\n"));
    }
  }
  {
    env e;
    auto r = run_http(e, "{url: \"" + server.url("/two") + "\"}");
    REQUIRE(r.state == "succeeded");
    CHECK(read_file(e, "out.csv") == csv + "5000,last\n");
  }
  {
    env e;
    auto r = run_http(e, "{url: \"" + server.url("/cut") + "\"}");
    CHECK(r.state == "failed");
    CHECK(contains(node(r, "load").error, "GET " + server.url("/cut") + ": cannot decompress the gzip body: it is truncated"));
    // max_bytes bounds the body as sent and as decompressed
    REQUIRE(gz.size() < 20000);
    REQUIRE(csv.size() > 20000);
    auto big = run_http(e, "{url: \"" + server.url("/enc") + "\", max_bytes: 20000}");
    CHECK(big.state == "failed");
    CHECK(contains(node(big, "load").error, "the decompressed body is larger than max_bytes = 20000"));
    auto small = run_http(e, "{url: \"" + server.url("/enc") + "\", max_bytes: 1000}");
    CHECK(small.state == "failed");
    CHECK(contains(node(small, "load").error, "the response body is larger than max_bytes = 1000"));
    auto br = run_http(e, "{url: \"" + server.url("/br") + "\"}");
    CHECK(br.state == "failed");
    CHECK(contains(node(br, "load").error, "unsupported Content-Encoding 'br' (gzip and identity are)"));
  }
}

TEST_CASE("ingest.http: 404, connection refused, timeout and bad URLs fail clearly", "[io][http]") {
  test_server server({});
  env e;
  int port = closed_port();
  struct row {
    std::string with, message;
  } cases[] = {
    {"{url: \"" + server.url("/missing.csv") + "\"}",
     "GET " + server.url("/missing.csv") + ": HTTP 404 Not Found: no such thing: /missing.csv"},
    {"{url: \"http://127.0.0.1:" + std::to_string(port) + "/x.csv\"}",
     "cannot connect to 127.0.0.1:" + std::to_string(port) + ": Connection refused"},
    {"{url: \"" + server.url("/hang") + "\", timeout_ms: 300}", "reading the response: timed out after 300 ms"},
    {"{url: \"ftp://example.com/x.csv\"}", "url: 'ftp://example.com/x.csv' must start with http:// or https://"},
    {"{url: \"http://127.0.0.1:99999/x.csv\"}", "bad port '99999'"},
    {"{url: \"http:///x.csv\"}", "has no host"},
    {"{url: \"" + server.url("/x.csv") + "\", format: xml}", "format must be csv, jsonl or auto, got 'xml'"},
    {"{url: \"" + server.url("/x.csv") + "\", timeout_ms: 0}", "timeout_ms must be positive"},
  };
  for (auto& c : cases) {
    INFO(c.with);
    auto r = run_http(e, c.with);
    CHECK(r.state == "failed");
    CHECK(contains(node(r, "load").error, c.message));
  }
}

TEST_CASE("ingest.http: https with certificate verification on loopback", "[io][http][tls]") {
  env e;
  // needs the openssl command (Debian's openssl package) to make a certificate and serve TLS
  REQUIRE(std::system("command -v openssl >/dev/null 2>&1") == 0);
  // a self-signed certificate for 127.0.0.1, and `openssl s_server -HTTP`, which answers
  // GET /name with the file ./name (a whole HTTP response)
  std::string cmd = "cd '" + e.dir + "' && openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem "
                    "-days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  write_file(e, "data.csv", http_response(200, "OK", "text/csv", "a,b\n1,x\n2,y\n"));
  int port = closed_port();
  cmd = "cd '" + e.dir + "' && (openssl s_server -accept 127.0.0.1:" + std::to_string(port) +
        " -cert cert.pem -key key.pem -HTTP -quiet >server.log 2>&1 & echo $! > server.pid)";
  REQUIRE(std::system(cmd.c_str()) == 0);
  int pid = std::stoi(read_file(e, "server.pid"));
  struct stopper {
    int pid;
    ~stopper() { ::kill(pid, SIGTERM); }
  } stop{pid};
  // wait until it listens
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    up = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (!up)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(up);
  std::string url = "https://127.0.0.1:" + std::to_string(port) + "/data.csv";

  auto ok = run_http(e, "{url: \"" + url + "\", ca_file: cert.pem}");
  INFO(node(ok, "load").error);
  REQUIRE(ok.state == "succeeded");
  CHECK(read_file(e, "out.csv") == "a,b\n1,x\n2,y\n");

  // the system's CAs do not know this certificate
  auto untrusted = run_http(e, "{url: \"" + url + "\"}");
  CHECK(untrusted.state == "failed");
  CHECK(contains(node(untrusted, "load").error, "TLS handshake with 127.0.0.1: certificate verify failed"));

  std::filesystem::remove(e.dir + "/out.csv");
  auto unchecked = run_http(e, "{url: \"" + url + "\", verify_tls: false}");
  REQUIRE(unchecked.state == "succeeded");
  CHECK(read_file(e, "out.csv") == "a,b\n1,x\n2,y\n");

  auto missing_ca = run_http(e, "{url: \"" + url + "\", ca_file: nope.pem}");
  CHECK(missing_ca.state == "failed");
  CHECK(contains(node(missing_ca, "load").error, "ca_file: cannot load " + e.dir + "/nope.pem"));
}
