// The executor on real CAF actors with the fixture operators (tests/fixtures):
// ordering, flow control, retries, timeouts, cancellation, failure isolation, and
// what ends up in the run store.
#include "run_env.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

using namespace loom;

namespace {

using loom::test::env;
using loom::test::node;

/// Expected collect file of test.gen with `frames` frames of `rows` rows.
std::vector<std::string> gen_lines(int frames, int rows) {
  std::vector<std::string> out;
  for (int i = 0; i < frames; ++i)
    out.push_back(std::to_string(i) + " " + std::to_string(rows) + " " + std::to_string(i * rows));
  return out;
}

} // namespace

TEST_CASE("frames arrive in order and every row is counted", "[executor]") {
  env e;
  auto g = e.graph(R"(
name: order
nodes:
  - {id: gen, op: test.gen, with: {frames: 60, rows: 7}}
  - {id: slow, op: test.slow, inputs: gen, with: {sleep_ms: 1}}
  - {id: sink, op: test.collect, inputs: slow, with: {path: out.txt}}
)");
  auto r = e.run(g);
  REQUIRE(r.state == "succeeded");
  CHECK(e.lines("out.txt") == gen_lines(60, 7));
  CHECK(node(r, "gen").rows_out == 420);
  CHECK(node(r, "gen").frames_out == 60);
  CHECK(node(r, "slow").rows_in == 420);
  CHECK(node(r, "slow").rows_out == 420);
  CHECK(node(r, "sink").rows_in == 420);
  CHECK(node(r, "sink").metrics.at("rows") == 420);
  for (auto& n : r.nodes) {
    CHECK(n.state == "succeeded");
    CHECK(n.attempts == 1);
  }
}

TEST_CASE("credit bounds what waits on an edge, whatever the data size", "[executor][flow]") {
  env e;
  auto g = e.graph(R"(
name: flow
nodes:
  - {id: gen, op: test.gen, with: {frames: 300, rows: 50}}
  - {id: slow, op: test.slow, inputs: gen, with: {sleep_ms: 1}}
  - {id: sink, op: test.collect, inputs: slow, with: {path: out.txt}}
)");
  run_options opts;
  opts.credit = 3;
  auto r = e.run(g, opts);
  REQUIRE(r.state == "succeeded");
  CHECK(e.lines("out.txt").size() == 300);
  REQUIRE(r.max_queued.count("gen.out->slow.data") == 1);
  // the fast producer filled the slow consumer's window, and never more
  CHECK(r.max_queued.at("gen.out->slow.data") <= 3);
  CHECK(r.max_queued.at("gen.out->slow.data") >= 2);
  for (auto& [edge, q] : r.max_queued)
    CHECK(q <= 3);
}

TEST_CASE("fan-out shares frames and the slowest consumer paces the producer", "[executor][flow]") {
  env e;
  auto g = e.graph(R"(
name: fanout
nodes:
  - {id: gen, op: test.gen, with: {frames: 40, rows: 5}}
  - {id: slow, op: test.slow, inputs: gen, with: {sleep_ms: 2}}
  - {id: a, op: test.collect, inputs: slow, with: {path: a.txt}}
  - {id: b, op: test.collect, inputs: gen, with: {path: b.txt}}
)");
  run_options opts;
  opts.credit = 2;
  auto r = e.run(g, opts);
  REQUIRE(r.state == "succeeded");
  CHECK(e.lines("a.txt") == gen_lines(40, 5));
  CHECK(e.lines("b.txt") == gen_lines(40, 5));
  for (auto& [edge, q] : r.max_queued)
    CHECK(q <= 2);
}

TEST_CASE("a failing node is retried and its output is delivered exactly once", "[executor][retry]") {
  env e;
  auto g = e.graph(R"(
name: retry
nodes:
  - {id: gen, op: test.gen, with: {frames: 20, rows: 3}}
  - id: flaky
    op: test.fail
    inputs: gen
    with: {after: 7, attempts: 2}
    retries: {max: 3, backoff: 10ms}
  - {id: sink, op: test.collect, inputs: flaky, with: {path: out.txt}}
)");
  auto r = e.run(g);
  REQUIRE(r.state == "succeeded");
  CHECK(node(r, "flaky").attempts == 3);
  CHECK(node(r, "flaky").state == "succeeded");
  // attempts 1 and 2 delivered frames 0..6 before failing; attempt 3 replays its
  // input and the duplicates are suppressed
  CHECK(e.lines("out.txt") == gen_lines(20, 3));
  CHECK(node(r, "sink").rows_in == 60);
}

TEST_CASE("a source that fails mid-stream is retried without duplicates", "[executor][retry]") {
  env e;
  auto g = e.graph(R"(
name: source-retry
nodes:
  - id: gen
    op: test.gen
    with: {frames: 10, rows: 4, fail_at: 6, fail_attempts: 1}
    retries: {max: 1, backoff: 10ms}
  - {id: sink, op: test.collect, inputs: gen, with: {path: out.txt}}
)");
  auto r = e.run(g);
  REQUIRE(r.state == "succeeded");
  CHECK(node(r, "gen").attempts == 2);
  CHECK(e.lines("out.txt") == gen_lines(10, 4));
}

TEST_CASE("retries run out: the node fails with the operator's message", "[executor][retry]") {
  env e;
  auto g = e.graph(R"(
name: exhausted
nodes:
  - {id: gen, op: test.gen, with: {frames: 5, rows: 2}}
  - id: bad
    op: test.fail
    inputs: gen
    with: {after: 1, message: "disk on fire"}
    retries: {max: 2, backoff: 5ms}
  - {id: sink, op: test.collect, inputs: bad, with: {path: out.txt}}
)");
  auto r = e.run(g);
  CHECK(r.state == "failed");
  CHECK(r.error.find("node 'bad' failed") != std::string::npos);
  CHECK(r.error.find("disk on fire") != std::string::npos);
  CHECK(node(r, "bad").state == "failed");
  CHECK(node(r, "bad").attempts == 3);
  CHECK(node(r, "gen").state == "succeeded");
  CHECK(node(r, "sink").state == "skipped");
  CHECK(node(r, "sink").error.find("'bad'") != std::string::npos);
}

TEST_CASE("a failure fails only what depends on it", "[executor][isolation]") {
  env e;
  auto g = e.graph(R"(
name: isolation
nodes:
  - {id: gen, op: test.gen, with: {frames: 30, rows: 10}}
  - {id: bad, op: test.fail, inputs: gen, with: {after: 3}}
  - {id: after_bad, op: test.collect, inputs: bad, with: {path: bad.txt}}
  - {id: good, op: test.collect, inputs: gen, with: {path: good.txt}}
  - {id: other, op: test.gen, with: {frames: 3, rows: 1}}
  - {id: merged, op: test.merge, inputs: {a: other, b: bad}}
  - {id: merged_sink, op: test.collect, inputs: merged, with: {path: merged.txt}}
)");
  auto r = e.run(g);
  CHECK(r.state == "failed");
  CHECK(node(r, "bad").state == "failed");
  CHECK(node(r, "after_bad").state == "skipped");
  CHECK(node(r, "merged").state == "skipped");
  CHECK(node(r, "merged_sink").state == "skipped");
  CHECK(node(r, "gen").state == "succeeded");
  CHECK(node(r, "other").state == "succeeded");
  CHECK(node(r, "good").state == "succeeded");
  // the healthy branch got everything although its sibling stopped reading
  CHECK(e.lines("good.txt") == gen_lines(30, 10));
  CHECK_FALSE(std::filesystem::exists(e.dir + "/bad.txt"));
}

TEST_CASE("exceptions in create become a node failure, not a crash", "[executor]") {
  env e;
  auto g = e.graph(R"(
name: create-fails
nodes:
  - {id: gen, op: test.gen, with: {frames: 2}}
  - {id: bad, op: test.fail, inputs: gen, with: {fail_in: create, message: "cannot connect"}}
)");
  auto r = e.run(g);
  CHECK(r.state == "failed");
  CHECK(node(r, "bad").error.find("cannot connect") != std::string::npos);
  CHECK(node(r, "gen").state == "succeeded");
}

TEST_CASE("a message that does not match its port type fails the node", "[executor]") {
  env e;
  auto g = e.graph(R"(
name: bad-emit
nodes:
  - {id: src, op: test.bad_emit}
  - {id: sink, op: test.collect, inputs: src, with: {path: out.txt}}
)");
  auto r = e.run(g);
  CHECK(r.state == "failed");
  CHECK(node(r, "src").error.find("carries frame") != std::string::npos);
  CHECK(node(r, "sink").state == "skipped");
}

TEST_CASE("a node past its timeout fails (and is retried)", "[executor][timeout]") {
  env e;
  auto g = e.graph(R"(
name: timeout
nodes:
  - {id: hang, op: test.hang, with: {sleep_ms: 60000}, timeout: 200ms, retries: {max: 1, backoff: 10ms}}
  - {id: quick, op: test.gen, with: {frames: 2, rows: 1}}
  - {id: sink, op: test.collect, inputs: quick, with: {path: out.txt}}
)");
  auto t0 = std::chrono::steady_clock::now();
  auto r = e.run(g);
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(r.state == "failed");
  CHECK(node(r, "hang").state == "failed");
  CHECK(node(r, "hang").attempts == 2);
  CHECK(node(r, "hang").error.find("timed out after 0.2s") != std::string::npos);
  CHECK(node(r, "sink").state == "succeeded");
  CHECK(secs < 30); // not the 60 s the operator wanted: the timeout stopped it
}

TEST_CASE("cancelling a run stops every node and records it as cancelled", "[executor][cancel]") {
  env e;
  auto g = e.graph(R"(
name: cancel
nodes:
  - {id: hang, op: test.hang, with: {sleep_ms: 60000}}
  - {id: gen, op: test.gen, with: {frames: 100000, rows: 10, sleep_ms: 5}}
  - {id: sink, op: test.collect, inputs: gen, with: {path: out.txt}}
)");
  std::atomic<bool> cancel{false};
  std::thread trigger([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cancel = true;
  });
  run_options opts;
  opts.cancel = &cancel;
  auto r = e.run(g, opts);
  trigger.join();
  CHECK(r.state == "cancelled");
  for (auto& n : r.nodes)
    CHECK(n.state == "cancelled");
  CHECK(node(r, "gen").rows_out < 1000000);
}

TEST_CASE("the run record holds states, counters, metrics, logs and artifacts", "[executor][store]") {
  env e;
  auto store = run_store::open(e.dir + "/home");
  REQUIRE(store);
  auto g = e.graph(R"(
name: recorded
params: {n: 4}
nodes:
  - {id: p, op: test.params, with: {s: hello, i: "${params.n}"}}
  - {id: gen, op: test.gen, with: {frames: "${params.n}", rows: 5}}
  - {id: sink, op: test.collect, inputs: gen, with: {path: out.txt}}
)");
  run_record rec;
  rec.graph_name = g.name;
  rec.graph_hash = g.hash;
  rec.graph_text = g.text;
  rec.params = g.params;
  REQUIRE_FALSE((*store)->create_run(rec));
  run_options opts;
  opts.run_id = rec.id;
  opts.store = store->get();
  opts.record = &rec;
  auto r = e.run(g, opts);
  REQUIRE(r.state == "succeeded");
  auto back = (*store)->get_run(rec.id);
  REQUIRE(back);
  CHECK(back->state == "succeeded");
  CHECK(back->ended_ms >= back->started_ms);
  CHECK(back->graph_hash == g.hash);
  REQUIRE(back->nodes.size() == 3);
  for (auto& n : back->nodes) {
    CHECK(n.state == "succeeded");
    CHECK(n.started_ms > 0);
    CHECK(n.ended_ms >= n.started_ms);
  }
  CHECK(back->nodes[2].rows_in == 20);
  CHECK(back->nodes[2].metrics.at("rows") == 20);
  auto art = (*store)->get_artifact(rec.id, "summary.txt");
  REQUIRE(art);
  CHECK(art->data == "rows=20\n");
  CHECK(art->node == "sink");
  auto logs = (*store)->logs(rec.id);
  REQUIRE(logs);
  bool saw_params = false;
  for (auto& l : *logs)
    saw_params = saw_params || (l.node == "p" && l.message.find("\"s\":\"hello\"") != std::string::npos &&
                                l.message.find("\"i\":4") != std::string::npos);
  CHECK(saw_params);
}

TEST_CASE("the CSV operators round-trip a table through map", "[executor][operators]") {
  env e;
  {
    std::ofstream out(e.dir + "/in.csv", std::ios::binary);
    out << "\xEF\xBB\xBFid,name,score,ok\r\n"
        << "1,\"Smith, J\",1.5,true\r\n"
        << "2,\"say \"\"hi\"\"\",,false\r\n"
        << "3,\"two\nlines\",2.25,\r\n"
        << "4,broken\r\n"
        << "x,bad id,1,true\r\n";
  }
  auto g = e.graph(R"(
name: csv
nodes:
  - {id: load, op: ingest.csv, with: {path: in.csv, infer_rows: 2}}
  - {id: tidy, op: map, inputs: load.out, with: {select: [name, score, id], rename: {score: points}}}
  - {id: out, op: sink.csv, inputs: tidy, with: {path: out/out.csv}}
  - {id: rejects, op: sink.csv, inputs: load.rejects, with: {path: out/rejects.csv}}
)");
  auto r = e.run(g);
  REQUIRE(r.state == "succeeded");
  std::ifstream in(e.dir + "/out/out.csv");
  std::stringstream ss;
  ss << in.rdbuf();
  CHECK(ss.str() == "name,points,id\n\"Smith, J\",1.5,1\n\"say \"\"hi\"\"\",,2\n\"two\nlines\",2.25,3\n");
  // rows in = rows out + rows rejected
  CHECK(node(r, "load").rows_out == 3); // rejects are not rows out
  CHECK(node(r, "load").rows_rejected == 2);
  CHECK(node(r, "tidy").rows_out == 3);
  auto rej = e.lines("out/rejects.csv");
  REQUIRE(rej.size() == 3);
  CHECK(rej[0] == "file,line,reason,raw");
  CHECK(rej[1].find(",6,\"expected 4 fields, found 2\",\"4,broken\"") != std::string::npos);
  CHECK(rej[2].find(",7,column 'id': 'x' is not a valid i64,\"x,bad id,1,true\"") != std::string::npos);
}

TEST_CASE("deterministic: a fast producer fills exactly the credit window", "[executor][flow][deterministic]") {
  for (size_t credit : {1, 2, 5}) {
    env e(true);
    auto g = e.graph(R"(
name: window
nodes:
  - {id: gen, op: test.gen, with: {frames: 25, rows: 4}}
  - {id: sink, op: test.collect, inputs: gen, with: {path: out.txt}}
)");
    run_options opts;
    opts.credit = credit;
    auto r = e.run(g, opts);
    REQUIRE(r.state == "succeeded");
    CHECK(e.lines("out.txt") == gen_lines(25, 4));
    // one thread, one message at a time: the producer runs until its window is full,
    // never further
    CHECK(r.max_queued.at("gen.out->sink.data") == credit);
  }
}

TEST_CASE("deterministic: retry backoff is a timer, not a sleep", "[executor][retry][deterministic]") {
  env e(true);
  auto g = e.graph(R"(
name: backoff
nodes:
  - {id: gen, op: test.gen, with: {frames: 12, rows: 2}}
  - id: flaky
    op: test.fail
    inputs: gen
    with: {after: 4, attempts: 2}
    retries: {max: 2, backoff: 1h}
  - {id: sink, op: test.collect, inputs: flaky, with: {path: out.txt}}
)");
  auto t0 = std::chrono::steady_clock::now();
  auto r = e.run(g);
  REQUIRE(r.state == "succeeded");
  // two hours of backoff went by in virtual time
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));
  CHECK(node(r, "flaky").attempts == 3);
  CHECK(e.lines("out.txt") == gen_lines(12, 2));
}

TEST_CASE("deterministic: a failed branch leaves the others complete", "[executor][isolation][deterministic]") {
  env e(true);
  auto g = e.graph(R"(
name: branches
nodes:
  - {id: gen, op: test.gen, with: {frames: 15, rows: 3}}
  - {id: bad, op: test.fail, inputs: gen, with: {after: 2}}
  - {id: skipped, op: test.collect, inputs: bad, with: {path: skipped.txt}}
  - {id: good, op: test.collect, inputs: gen, with: {path: good.txt}}
)");
  run_options opts;
  opts.credit = 1;
  auto r = e.run(g, opts);
  CHECK(r.state == "failed");
  CHECK(node(r, "bad").state == "failed");
  CHECK(node(r, "skipped").state == "skipped");
  CHECK(node(r, "good").state == "succeeded");
  CHECK(e.lines("good.txt") == gen_lines(15, 3));
}
