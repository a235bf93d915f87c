// The loom CLI as a user runs it: real processes, real files, real signals.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "sink_table.hpp"

#include <chrono>
#include <cmath>
#include <csignal>
#include <fcntl.h>
#include <map>
#include <set>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <spawn.h>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace fs = std::filesystem;

namespace {

const std::string loom_bin = std::string(LOOM_BINARY_DIR) + "/bin/loom";
const std::string fixtures = std::string(LOOM_FIXTURE_DIR);

struct result {
  int rc = -1;
  std::string out;
  std::string err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/loom-cli-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    auto p = path + "/" + name;
    fs::create_directories(fs::path(p).parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
};

/// A running loom process with stdout/stderr going to files.
struct process {
  pid_t pid = -1;
  std::string out_file, err_file;

  process(const std::vector<std::string>& args, const std::string& dir) {
    static int counter = 0;
    auto tag = std::to_string(::getpid()) + "-" + std::to_string(counter++);
    out_file = dir + "/stdout-" + tag;
    err_file = dir + "/stderr-" + tag;
    std::vector<std::string> all{loom_bin};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(posix_spawn(&pid, loom_bin.c_str(), &fa, nullptr, argv.data(), environ) == 0);
    posix_spawn_file_actions_destroy(&fa);
  }

  result wait() {
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    result r;
    r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(out_file);
    r.err = slurp(err_file);
    return r;
  }
};

result run_loom(const std::vector<std::string>& args, const temp_dir& dir) {
  auto r = process(args, dir.path).wait();
  INFO("loom exit " << r.rc << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
  return r;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("every graph in graphs/ validates and runs", "[cli][graphs]") {
  temp_dir tmp;
  int count = 0;
  for (auto& entry : fs::directory_iterator(std::string(LOOM_SOURCE_DIR) + "/graphs")) {
    if (entry.path().extension() != ".yaml")
      continue;
    ++count;
    auto file = entry.path().string();
    INFO(file);
    auto v = run_loom({"validate", file}, tmp);
    CHECK(v.rc == 0);
    CHECK(contains(v.out, ": ok: graph"));
    std::vector<std::string> args{"run", file, "--home", tmp.path + "/home"};
    if (entry.path().filename() == "fashion_mnist.yaml") {
      // Debian's dataset-fashion-mnist (scripts/setup.sh --bench); a few rows and one
      // epoch here, the full training is bench/train_mnist.sh
      if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
        WARN("dataset-fashion-mnist is not installed; " << file << " validated, not run");
        continue;
      }
      for (auto s : {"train_rows=2000", "test_rows=500", "epochs=1"})
        args.insert(args.end(), {"--set", s});
    }
    auto r = run_loom(args, tmp);
    CHECK(r.rc == 0);
    CHECK(contains(r.out, "succeeded"));
  }
  CHECK(count >= 1);
}

TEST_CASE("the demo graph writes its outputs and records the run", "[cli][graphs]") {
  temp_dir tmp;
  auto graph = std::string(LOOM_SOURCE_DIR) + "/graphs/iris.yaml";
  auto r = run_loom({"run", graph, "--home", tmp.path, "--set", "out_dir=" + tmp.path + "/out"}, tmp);
  REQUIRE(r.rc == 0);
  CHECK(contains(r.err, "load"));      // progress lines
  CHECK(contains(r.err, "succeeded"));
  auto tidy = slurp(tmp.path + "/out/iris_tidy.csv");
  CHECK(tidy.rfind("sepal_length,sepal_width,petal_length,petal_width,label\n5.1,3.5,1.4,0.2,setosa\n", 0) == 0);
  CHECK(std::count(tidy.begin(), tidy.end(), '\n') == 151);
  auto copy = slurp(tmp.path + "/out/iris_copy.csv");
  CHECK(copy.rfind("sepal_length\tsepal_width\t", 0) == 0);

  auto list = run_loom({"runs", "list", "--json", "--home", tmp.path}, tmp);
  REQUIRE(list.rc == 0);
  auto runs = nlohmann::json::parse(list.out);
  REQUIRE(runs.size() == 1);
  CHECK(runs[0]["state"] == "succeeded");
  CHECK(runs[0]["graph_name"] == "iris");
  CHECK(runs[0]["params"]["out_dir"] == tmp.path + "/out");
  auto id = runs[0]["id"].get<std::string>();

  auto show = run_loom({"runs", "show", id, "--json", "--home", tmp.path}, tmp);
  REQUIRE(show.rc == 0);
  auto run = nlohmann::json::parse(show.out);
  CHECK(run["graph_text"].get<std::string>().find("name: iris") != std::string::npos);
  CHECK(run["graph_hash"].get<std::string>().size() == 64);
  std::map<std::string, nlohmann::json> nodes;
  for (auto& n : run["nodes"])
    nodes[n["id"]] = n;
  CHECK(nodes.at("load")["rows_out"] == 150);
  CHECK(nodes.at("tidy")["rows_in"] == 150);
  CHECK(nodes.at("keep")["rows_in"] == 150);
  for (auto& [id_, n] : nodes)
    CHECK(n["state"] == "succeeded");

  auto text = run_loom({"runs", "show", id, "--home", tmp.path}, tmp);
  CHECK(text.rc == 0);
  CHECK(contains(text.out, "succeeded"));
  CHECK(contains(text.out, "ingest.csv"));
}

TEST_CASE("validate reports every error as FILE:LINE:COL and exits 2", "[cli][validate]") {
  temp_dir tmp;
  auto file = tmp.write("bad.yaml", R"(name: bad
nodes:
  - id: load
    op: ingest.cvs
    with: {path: x.csv}
  - id: keep
    op: sink.csv
    inputs: nowhere
    with: {path: out.csv, colour: red}
)");
  auto r = run_loom({"validate", file}, tmp);
  CHECK(r.rc == 2);
  CHECK(contains(r.err, file + ":4:9: error: unknown operator 'ingest.cvs' (did you mean 'ingest.csv'?)"));
  CHECK(contains(r.err, file + ":8:13: error:"));
  CHECK(contains(r.err, "nowhere"));
  CHECK(contains(r.err, file + ":9:27: error:"));
  CHECK(contains(r.err, "colour"));

  auto j = run_loom({"validate", file, "--json"}, tmp);
  CHECK(j.rc == 2);
  auto doc = nlohmann::json::parse(j.out);
  CHECK(doc["valid"] == false);
  CHECK(doc["diagnostics"].size() >= 3);
  CHECK(doc["diagnostics"][0]["line"] == 4);

  auto run = run_loom({"run", file, "--home", tmp.path}, tmp);
  CHECK(run.rc == 2);
  CHECK_FALSE(fs::exists(tmp.path + "/store")); // nothing ran, nothing recorded
}

TEST_CASE("hostile graph files are refused quickly", "[cli][validate]") {
  temp_dir tmp;
  std::string bomb = "name: bomb\na: &a [x, x, x, x, x, x, x, x, x, x]\n";
  std::string prev = "a";
  for (int i = 0; i < 9; ++i) {
    std::string cur(1, static_cast<char>('b' + i));
    bomb += cur + ": &" + cur + " [";
    for (int k = 0; k < 10; ++k)
      bomb += (k ? ", *" : "*") + prev;
    bomb += "]\n";
    prev = cur;
  }
  bomb += "nodes:\n  - {id: x, op: map, with: {select: *" + prev + "}}\n";
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_loom({"validate", tmp.write("bomb.yaml", bomb)}, tmp);
  CHECK(r.rc == 2);
  auto deep = std::string(100000, '[') + std::string(100000, ']');
  auto d = run_loom({"validate", tmp.write("deep.yaml", "name: deep\nnodes: " + deep + "\n")}, tmp);
  CHECK(d.rc == 2);
  auto big = run_loom({"validate", tmp.write("big.yaml", "name: big\n#" + std::string(5 << 20, 'x') + "\n")}, tmp);
  CHECK(big.rc == 2);
  CHECK(contains(big.err, "limit"));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20));
}

TEST_CASE("set overrides parameters and bad overrides are invalid input", "[cli][params]") {
  temp_dir tmp;
  auto data = tmp.write("in.csv", "a,b\n1,x\n2,y\n");
  auto graph = tmp.write("g.yaml", R"(name: p
params: {src: in.csv, dst: out.csv}
nodes:
  - {id: load, op: ingest.csv, with: {path: "${params.src}"}}
  - {id: keep, op: sink.csv, inputs: load.out, with: {path: "${params.dst}"}}
)");
  (void)data;
  auto r = run_loom({"run", graph, "--home", tmp.path, "--set", "dst=copy.csv", "-q"}, tmp);
  CHECK(r.rc == 0);
  CHECK(slurp(tmp.path + "/copy.csv") == "a,b\n1,x\n2,y\n");
  auto bad = run_loom({"run", graph, "--home", tmp.path, "--set", "dts=copy.csv"}, tmp);
  CHECK(bad.rc == 2);
  CHECK(contains(bad.err, "dts"));
  auto malformed = run_loom({"run", graph, "--home", tmp.path, "--set", "novalue"}, tmp);
  CHECK(malformed.rc == 2);
}

TEST_CASE("a failing run exits 1 and names the node", "[cli][run]") {
  temp_dir tmp;
  auto graph = tmp.write("fail.yaml", R"(name: failing
nodes:
  - {id: gen, op: test.gen, with: {frames: 3}}
  - {id: bad, op: test.fail, inputs: gen, with: {message: "no space left on the tape"}}
  - {id: fine, op: test.collect, inputs: gen, with: {path: fine.txt}}
)");
  auto r = run_loom({"run", graph, "--home", tmp.path, "--plugin-path", fixtures + "/good"}, tmp);
  CHECK(r.rc == 1);
  CHECK(contains(r.out, "failed: node 'bad' failed"));
  CHECK(contains(r.out, "no space left on the tape"));
  CHECK(fs::exists(tmp.path + "/fine.txt"));
  auto show = run_loom({"runs", "show", "1", "--json", "--home", tmp.path}, tmp);
  auto run = nlohmann::json::parse(show.out);
  CHECK(run["state"] == "failed");
}

TEST_CASE("SIGINT and SIGTERM cancel a run cleanly and record it", "[cli][signals]") {
  for (int sig : {SIGINT, SIGTERM}) {
    temp_dir tmp;
    auto graph = tmp.write("hang.yaml", R"(name: hang
nodes:
  - {id: wait, op: test.hang, with: {sleep_ms: 60000}}
)");
    process p({"run", graph, "--home", tmp.path, "--plugin-path", fixtures + "/good"}, tmp.path);
    // wait until the run is recorded as running
    bool running = false;
    for (int i = 0; i < 100 && !running; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      running = contains(slurp(p.err_file), "wait  running");
    }
    CHECK(running);
    ::kill(p.pid, sig);
    auto r = p.wait();
    INFO("stderr: " << r.err);
    CHECK(r.rc == 130);
    CHECK(contains(r.out, "cancelled"));
    auto show = run_loom({"runs", "show", "1", "--json", "--home", tmp.path}, tmp);
    auto run = nlohmann::json::parse(show.out);
    CHECK(run["state"] == "cancelled");
    CHECK(run["nodes"][0]["state"] == "cancelled");
  }
}

TEST_CASE("a running run's metrics are visible before it ends, even with -q", "[cli][store]") {
  temp_dir tmp;
  auto graph = tmp.write("long.yaml", R"(name: long
nodes:
  - {id: gen, op: test.gen, with: {frames: 40, rows: 10, sleep_ms: 150}}
)");
  process p({"run", graph, "--home", tmp.path, "--plugin-path", fixtures + "/good", "-q"}, tmp.path);
  // a second process reads the store while the first still runs
  double seen = 0;
  std::string state;
  for (int i = 0; i < 100 && seen < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto show = process({"runs", "show", "1", "--json", "--home", tmp.path}, tmp.path).wait();
    if (show.rc != 0)
      continue; // not created yet
    auto run = nlohmann::json::parse(show.out);
    state = run["state"];
    if (state != "running")
      break;
    seen = run["nodes"][0]["metrics"].value("frames_emitted", 0.0);
  }
  CHECK(state == "running");
  CHECK(seen >= 3);
  CHECK(seen < 40);
  auto r = p.wait();
  CHECK(r.rc == 0);
  auto run = nlohmann::json::parse(run_loom({"runs", "show", "1", "--json", "--home", tmp.path}, tmp).out);
  CHECK(run["nodes"][0]["metrics"]["frames_emitted"] == 40);
}

TEST_CASE("two runs on one home at once are both recorded", "[cli][store]") {
  temp_dir tmp;
  auto graph = tmp.write("two.yaml", R"(name: two
params: {out: a.txt}
nodes:
  - {id: gen, op: test.gen, with: {frames: 40, rows: 10, sleep_ms: 5}}
  - {id: sink, op: test.collect, inputs: gen, with: {path: "${params.out}"}}
)");
  std::vector<std::string> common{"run", graph, "--home", tmp.path, "--plugin-path", fixtures + "/good", "-q"};
  auto a_args = common, b_args = common;
  a_args.insert(a_args.end(), {"--set", "out=a.txt"});
  b_args.insert(b_args.end(), {"--set", "out=b.txt"});
  process a(a_args, tmp.path), b(b_args, tmp.path);
  CHECK(a.wait().rc == 0);
  CHECK(b.wait().rc == 0);
  auto list = run_loom({"runs", "list", "--json", "--home", tmp.path}, tmp);
  auto runs = nlohmann::json::parse(list.out);
  REQUIRE(runs.size() == 2);
  CHECK(runs[0]["id"] != runs[1]["id"]);
  for (auto& run : runs) {
    CHECK(run["state"] == "succeeded");
    CHECK(run["nodes"][1]["rows_in"] == 400);
  }
}

TEST_CASE("ops list and describe document every operator", "[cli][ops]") {
  temp_dir tmp;
  auto list = run_loom({"ops", "list", "--json"}, tmp);
  REQUIRE(list.rc == 0);
  auto ops = nlohmann::json::parse(list.out);
  std::set<std::string> names;
  for (auto& op : ops) {
    names.insert(op["name"]);
    CHECK_FALSE(op["description"].get<std::string>().empty());
    for (auto& p : op["params"])
      CHECK_FALSE(p["description"].get<std::string>().empty());
  }
  CHECK(names.count("ingest.csv"));
  CHECK(names.count("sink.csv"));
  CHECK(names.count("map"));

  auto d = run_loom({"ops", "describe", "ingest.csv", "--json"}, tmp);
  REQUIRE(d.rc == 0);
  auto op = nlohmann::json::parse(d.out);
  CHECK(op["outputs"][0]["name"] == "out");
  CHECK(op["outputs"][0]["type"] == "frame");
  bool path_required = false;
  for (auto& p : op["params"])
    if (p["name"] == "path")
      path_required = p["required"] == true && p["type"] == "string";
  CHECK(path_required);

  auto text = run_loom({"ops", "describe", "sink.csv"}, tmp);
  CHECK(text.rc == 0);
  CHECK(contains(text.out, "Parameters:"));
  CHECK(contains(text.out, "Example:"));

  auto unknown = run_loom({"ops", "describe", "sink.cvs"}, tmp);
  CHECK(unknown.rc == 2);
  CHECK(contains(unknown.err, "did you mean 'sink.csv'"));
}

TEST_CASE("plugins inspect prints a library or one clear error line", "[cli][plugins]") {
  temp_dir tmp;
  auto ok = run_loom({"plugins", "inspect", fixtures + "/good/libtest_ops.so", "--json"}, tmp);
  REQUIRE(ok.rc == 0);
  auto doc = nlohmann::json::parse(ok.out);
  CHECK(doc["name"] == "loom-test-ops");
  CHECK(doc["abi"] == "1.1");
  CHECK(doc["operators"].size() >= 5);

  auto broken = run_loom({"plugins", "inspect", fixtures + "/broken/libabi_major.so"}, tmp);
  CHECK(broken.rc == 2);
  CHECK(contains(broken.err, "ABI"));
  CHECK(std::count(broken.err.begin(), broken.err.end(), '\n') == 1);

  // broken libraries on the plugin path are reported and skipped; the rest works
  auto list = run_loom({"ops", "list", "--plugin-path", fixtures + "/broken"}, tmp);
  CHECK(list.rc == 0);
  CHECK(contains(list.out, "ingest.csv"));
  CHECK(contains(list.err, "warning: plugin"));
}

TEST_CASE("runs show of an unknown run is invalid input", "[cli][store]") {
  temp_dir tmp;
  auto r = run_loom({"runs", "show", "42", "--home", tmp.path}, tmp);
  CHECK(r.rc == 2);
  CHECK(contains(r.err, "42"));
}

TEST_CASE("a graph names plugin libraries by path", "[cli][plugins]") {
  temp_dir tmp;
  fs::create_directories(tmp.path + "/lib");
  fs::copy_file(fixtures + "/good/libtest_ops.so", tmp.path + "/lib/libtest_ops.so");
  // `op: path#name` and `plugins:`, both relative to the graph file
  auto graph = tmp.write("g.yaml", R"(name: by-path
plugins: [lib/libtest_ops.so]
nodes:
  - {id: gen, op: "lib/libtest_ops.so#test.gen", with: {frames: 2, rows: 3}}
  - {id: sink, op: test.collect, inputs: gen, with: {path: out.txt}}
)");
  auto r = run_loom({"run", graph, "--home", tmp.path, "-q"}, tmp);
  CHECK(r.rc == 0);
  CHECK(slurp(tmp.path + "/out.txt") == "0 3 0\n1 3 3\n");

  auto ambiguous = tmp.write("a.yaml", R"(name: ambiguous
nodes:
  - {id: gen, op: lib/libtest_ops.so}
)");
  auto a = run_loom({"validate", ambiguous}, tmp);
  CHECK(a.rc == 2);
  CHECK(contains(a.err, ambiguous + ":3:19: error: plugin lib/libtest_ops.so provides"));
  CHECK(contains(a.err, "#NAME"));

  auto missing = tmp.write("m.yaml", R"(name: missing
nodes:
  - {id: gen, op: lib/nothing.so}
)");
  auto m = run_loom({"validate", missing}, tmp);
  CHECK(m.rc == 2);
  CHECK(contains(m.err, "no such file"));
}

TEST_CASE("the messy customers pipeline accounts for every row", "[cli][graphs]") {
  temp_dir tmp;
  auto graph = std::string(LOOM_SOURCE_DIR) + "/graphs/customers.yaml";
  auto r = run_loom({"run", graph, "--home", tmp.path, "--set", "out=" + tmp.path + "/out", "-q"}, tmp);
  REQUIRE(r.rc == 0);
  auto show = run_loom({"runs", "show", "1", "--json", "--home", tmp.path}, tmp);
  auto run = nlohmann::json::parse(show.out);
  std::map<std::string, nlohmann::json> n;
  for (auto& node : run["nodes"])
    n[node["id"]] = node;
  // 25 records: one has a missing field
  CHECK(n["load"]["rows_out"] == 24);
  CHECK(n["load"]["rows_rejected"] == 1);
  // clean: a non-numeric age, an age above 100, a duplicate id
  CHECK(n["clean"]["rows_in"] == 24);
  CHECK(n["clean"]["rows_out"] == 21);
  CHECK(n["clean"]["rows_rejected"] == 3);
  CHECK(n["clean"]["metrics"]["dedupe.dropped"] == 1);
  // every clean row is in exactly one split, and featurized there
  CHECK(n["split"]["rows_in"] == 21);
  CHECK(n["fit"]["rows_in"].get<int>() + n["apply"]["rows_in"].get<int>() == 21); // the state carries no rows
  auto train = slurp(tmp.path + "/out/train_features.csv");
  auto test = slurp(tmp.path + "/out/test_features.csv");
  CHECK(std::count(train.begin(), train.end(), '\n') - 1 + std::count(test.begin(), test.end(), '\n') - 1 == 21);
  CHECK(train.rfind("id,name,age,city=berlin,city=london,city=paris,city=__unknown__,", 0) == 0);
  auto rejects = slurp(tmp.path + "/out/rejects_clean.csv");
  CHECK(contains(rejects, "'thirty' is not a valid i64"));
  CHECK(contains(rejects, "210 is above max 100"));
  CHECK(contains(rejects, "duplicate,2,"));
  CHECK(contains(slurp(tmp.path + "/out/rejects_load.csv"), "data/customers_messy.csv,12,\"expected 8 fields, found 7\""));
}

TEST_CASE("an evaluation report is stored with the run and printed by runs show --artifact", "[cli][evaluate]") {
  temp_dir tmp;
  tmp.write("preds.csv", "y,prediction,prob_a,prob_b\na,a,0.8,0.2\nb,b,0.3,0.7\na,b,0.4,0.6\nb,b,0.1,0.9\n");
  auto graph = tmp.write("g.yaml", "name: eval\nplugins: [" + fixtures + R"(/good/libtest_ops.so]
nodes:
  - {id: load, op: ingest.csv, with: {path: preds.csv}}
  - {id: m, op: test.model, with: {classes: [a, b], history: [{epoch: 1, name: train_loss, value: 0.7}]}}
  - {id: score, op: evaluate, inputs: {predictions: load.out, model: m.model}, with: {target: y}}
)");
  auto r = run_loom({"run", graph, "--home", tmp.path, "-q"}, tmp);
  REQUIRE(r.rc == 0);
  auto show = run_loom({"runs", "show", "1", "--home", tmp.path}, tmp);
  CHECK(contains(show.out, "score.report.html"));
  CHECK(contains(show.out, "metric accuracy = 0.75"));
  auto html = run_loom({"runs", "show", "1", "--artifact", "score.report.html", "--home", tmp.path}, tmp);
  REQUIRE(html.rc == 0);
  CHECK(html.out.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(contains(html.out, "<td>accuracy</td><td class=\"num\" title=\"0.75\">0.7500</td>"));
  CHECK(contains(html.out, "<svg"));
  CHECK(contains(html.out, "</html>\n"));
  auto saved = run_loom({"runs", "show", "1", "--artifact", "score.report.html", "-o", tmp.path + "/report.html",
                     "--home", tmp.path}, tmp);
  CHECK(saved.rc == 0);
  CHECK(slurp(tmp.path + "/report.html") == html.out);

  auto d = run_loom({"ops", "describe", "evaluate"}, tmp);
  CHECK(d.rc == 0);
  for (auto part : {"predictions", "metrics", "rejects", "probability_prefix", "positive", "report", "Example:"})
    CHECK(contains(d.out, part));
  CHECK(contains(d.out, "model    (optional) the Model that made the predictions"));
}

// ---- the training example graphs ----------------------------------------------------------

namespace {

/// Runs `graph` (a file in graphs/) with `sets` into a fresh home, and returns run 1's
/// record with its nodes by id.
std::map<std::string, nlohmann::json> run_graph(const temp_dir& tmp, const std::string& graph,
                                                const std::vector<std::string>& sets) {
  std::vector<std::string> args{"run", std::string(LOOM_SOURCE_DIR) + "/graphs/" + graph, "--home", tmp.path, "-q"};
  for (auto& s : sets) {
    args.push_back("--set");
    args.push_back(s);
  }
  auto r = run_loom(args, tmp);
  REQUIRE(r.rc == 0);
  auto show = run_loom({"runs", "show", "1", "--json", "--home", tmp.path}, tmp);
  REQUIRE(show.rc == 0);
  auto run = nlohmann::json::parse(show.out);
  std::map<std::string, nlohmann::json> n;
  for (auto& node : run["nodes"]) {
    CHECK(node["state"] == "succeeded");
    n[node["id"]] = node;
  }
  return n;
}

double metric(const std::map<std::string, nlohmann::json>& n, const std::string& node, const std::string& name) {
  INFO(node << " metric " << name << " in " << n.at(node)["metrics"].dump());
  REQUIRE(n.at(node)["metrics"].contains(name));
  return n.at(node)["metrics"][name].get<double>();
}

} // namespace

TEST_CASE("the wine pipeline cleans, splits, trains a softmax model with its featurization and evaluates it",
          "[cli][graphs][train]") {
  temp_dir tmp;
  auto n = run_graph(tmp, "wine.yaml", {"out=" + tmp.path + "/out"});
  // rows in = rows out + rows rejected, down to the test split that predict scores
  CHECK(n["load"]["rows_out"] == 178);
  CHECK(n["clean"]["rows_out"].get<int>() + n["clean"]["rows_rejected"].get<int>() == 178);
  CHECK(n["split"]["rows_in"] == n["clean"]["rows_out"]);
  int train_rows = n["features"]["rows_in"].get<int>();
  int test_rows = n["predict"]["rows_in"].get<int>();
  CHECK(train_rows > 90);
  CHECK(test_rows > 30);
  CHECK(n["predict"]["rows_out"] == test_rows);
  CHECK(n["evaluate"]["rows_in"] == test_rows);
  // the model trained (train_loss recorded per epoch) and classifies held-out wines well
  CHECK(metric(n, "train", "epoch") >= 1);
  CHECK(metric(n, "train", "train_loss") < 0.5);
  double accuracy = metric(n, "evaluate", "accuracy");
  CHECK(accuracy >= 0.9);
  CHECK(metric(n, "evaluate", "f1_macro") >= 0.85);
  // the predictions file: raw columns (the featurization is applied inside predict),
  // a probability per class that sums to 1, the prediction its arg max, and
  // evaluate's accuracy recomputed from it
  auto p = loom::test::sink_table::parse(slurp(tmp.path + "/out/test_predictions.csv"));
  REQUIRE(p.rows.size() == static_cast<size_t>(test_rows));
  for (auto c : {"alcohol", "proline", "cultivar", "prediction", "prob_class_0", "prob_class_1", "prob_class_2"})
    CHECK(p.has(c));
  int correct = 0;
  for (size_t r = 0; r < p.rows.size(); ++r) {
    double sum = 0, best = -1;
    std::string argmax;
    for (auto c : {"class_0", "class_1", "class_2"}) {
      double v = std::stod(p.at(r, std::string("prob_") + c));
      sum += v;
      if (v > best) {
        best = v;
        argmax = c;
      }
    }
    CHECK(sum == Approx(1.0).epsilon(1e-6));
    CHECK(p.at(r, "prediction") == argmax);
    correct += p.at(r, "prediction") == p.at(r, "cultivar");
  }
  CHECK(accuracy == Approx(static_cast<double>(correct) / test_rows).epsilon(1e-12));
  // the report is stored with the run
  auto show = run_loom({"runs", "show", "1", "--home", tmp.path}, tmp);
  CHECK(contains(show.out, "evaluate.report.html"));
}

TEST_CASE("the diabetes pipeline trains a linear model and an MLP for regression and evaluates both",
          "[cli][graphs][train]") {
  temp_dir tmp;
  auto n = run_graph(tmp, "diabetes.yaml", {"out=" + tmp.path + "/out"});
  CHECK(n["load"]["rows_out"] == 442);
  CHECK(n["clean"]["rows_out"].get<int>() + n["clean"]["rows_rejected"].get<int>() == 442);
  int test_rows = n["predict_mlp"]["rows_in"].get<int>();
  CHECK(test_rows == n["predict_linear"]["rows_in"].get<int>());
  CHECK(test_rows >= 80); // 20% of 442
  // the target's standard deviation is about 77: both models must explain a good part
  // of it on held-out rows (a linear model reaches R^2 of about 0.5 on this data)
  for (auto node : {"evaluate_linear", "evaluate_mlp"}) {
    INFO(node);
    CHECK(metric(n, node, "r2") > 0.3);
    CHECK(metric(n, node, "rmse") < 65);
    CHECK(metric(n, node, "mae") < metric(n, node, "rmse"));
  }
  // evaluate's RMSE recomputed from the MLP's predictions
  auto p = loom::test::sink_table::parse(slurp(tmp.path + "/out/test_predictions.csv"));
  REQUIRE(p.rows.size() == static_cast<size_t>(test_rows));
  double se = 0;
  for (size_t r = 0; r < p.rows.size(); ++r) {
    double d = std::stod(p.at(r, "prediction")) - std::stod(p.at(r, "progression"));
    se += d * d;
  }
  CHECK(metric(n, "evaluate_mlp", "rmse") == Approx(std::sqrt(se / test_rows)).epsilon(1e-9));
}

TEST_CASE("the Fashion-MNIST graph trains an MLP on IDX images (reduced: 3000 rows, 2 epochs)",
          "[cli][graphs][train][fashion]") {
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
    WARN("dataset-fashion-mnist is not installed (scripts/setup.sh --bench); skipped");
    return;
  }
  temp_dir tmp;
  auto n = run_graph(tmp, "fashion_mnist.yaml", {"train_rows=3000", "test_rows=1000", "epochs=2"});
  CHECK(n["train_data"]["rows_out"] == 3000);
  CHECK(n["test_data"]["rows_out"] == 1000);
  CHECK(n["predict"]["rows_out"] == 1000);
  CHECK(metric(n, "train", "epoch") == 2);
  // ten balanced classes: chance is 0.1; 2 epochs on 3000 images reach about 0.75
  CHECK(metric(n, "evaluate", "accuracy") > 0.6);
}
