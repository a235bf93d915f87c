// Graph files: parsing, substitution, validation, limits and helpers.
#include "loom/runtime/graph.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>

#include <unistd.h>

using namespace loom;
using json = nlohmann::json;

namespace {

class test_catalog : public operator_catalog {
public:
  test_catalog() {
    add("ingest.csv", {}, {{"out", LOOM_MSG_FRAME, ""}},
        {param("path", LOOM_PARAM_STRING, true), param("header", LOOM_PARAM_BOOL, false, "true"),
         param("delimiter", LOOM_PARAM_STRING, false, "\",\""), param("seed", LOOM_PARAM_INT)});
    add("sink.csv", {{"data", LOOM_MSG_FRAME, ""}}, {}, {param("path", LOOM_PARAM_STRING, true)});
    add("train", {{"data", LOOM_MSG_FRAME, ""}}, {{"model", LOOM_MSG_MODEL, ""}},
        {param("epochs", LOOM_PARAM_INT, false, "10"), param("lr", LOOM_PARAM_FLOAT, false, "0.1"),
         param("features", LOOM_PARAM_LIST), param("options", LOOM_PARAM_MAP)});
    add("join", {{"left", LOOM_MSG_FRAME, ""}, {"right", LOOM_MSG_FRAME, ""}}, {{"out", LOOM_MSG_FRAME, ""}}, {});
    add("split", {{"data", LOOM_MSG_FRAME, ""}}, {{"train", LOOM_MSG_FRAME, ""}, {"test", LOOM_MSG_FRAME, ""}}, {});
    add("evaluate", {{"model", LOOM_MSG_MODEL, ""}, {"data", LOOM_MSG_FRAME, ""}}, {{"metrics", LOOM_MSG_METRICS, ""}}, {});
    add("log", {{"data", LOOM_MSG_ANY, ""}}, {}, {});
    add("score", {{"data", LOOM_MSG_FRAME, ""}, {"model", LOOM_MSG_MODEL, "", true}}, {}, {});
  }

  const operator_info* find(const std::string& name) const override {
    auto it = ops_.find(name);
    return it == ops_.end() ? nullptr : &it->second;
  }

  std::vector<std::string> names() const override {
    std::vector<std::string> out;
    for (auto& [name, _] : ops_)
      out.push_back(name);
    return out;
  }

private:
  static param_info param(std::string name, loom_param_type type, bool required = false,
                          std::optional<std::string> def = std::nullopt) {
    param_info p;
    p.name = std::move(name);
    p.type = type;
    p.required = required;
    p.default_json = std::move(def);
    return p;
  }

  void add(const std::string& name, std::vector<port_info> inputs, std::vector<port_info> outputs,
           std::vector<param_info> params) {
    operator_info op;
    op.name = name;
    op.version = "1.0.0";
    op.inputs = std::move(inputs);
    op.outputs = std::move(outputs);
    op.params = std::move(params);
    ops_[name] = std::move(op);
  }

  std::map<std::string, operator_info> ops_;
};

// Lets a raw string start on the line after R"(.
std::string doc(const char* text) {
  std::string s(text);
  if (!s.empty() && s[0] == '\n')
    s.erase(0, 1);
  return s;
}

std::string dump(const diagnostics& ds) {
  std::string out;
  for (auto& d : ds)
    out += d.format() + "\n";
  return out;
}

bool has(const diagnostics& ds, const std::string& formatted) {
  for (auto& d : ds)
    if (d.format() == formatted)
      return true;
  return false;
}

size_t error_count(const diagnostics& ds) {
  size_t n = 0;
  for (auto& d : ds)
    n += d.severity == "error";
  return n;
}

std::optional<graph_spec> parse(const std::string& text, diagnostics& ds,
                                const std::vector<std::pair<std::string, std::string>>& overrides = {},
                                const parse_limits& limits = {}) {
  return parse_graph(text, "g.yaml", overrides, ds, limits);
}

// Parses and validates; expects the parse itself to be clean.
diagnostics check(const std::string& text, graph_spec* result = nullptr) {
  diagnostics ds;
  auto g = parse(text, ds);
  INFO(dump(ds));
  REQUIRE(g);
  REQUIRE(ds.empty());
  test_catalog catalog;
  validate_graph(*g, catalog, ds);
  if (result)
    *result = *g;
  return ds;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

const char* header_example = R"(
name: iris
params: {seed: 7}
plugins: [../build/libmy_ops.so]      # optional extra plugin libraries
nodes:
  - id: load
    op: ingest.csv
    with: {path: data/iris.csv, seed: "${params.seed}"}
  - id: keep
    op: sink.csv
    inputs: load                       # or {data: load} or {data: load.out}
    with: {path: out/iris_copy.csv}
    retries: 2                         # or {max: 2, backoff: 500ms}
    timeout: 30s
    resources: {cpus: 1, memory: 512MiB, gpus: 0}
    placement: {site: private}
)";

} // namespace

// ---- parsing -------------------------------------------------------------------------

TEST_CASE("the header's example parses and validates", "[graph]") {
  diagnostics ds;
  auto g = parse(doc(header_example), ds);
  INFO(dump(ds));
  REQUIRE(g);
  REQUIRE(ds.empty());
  CHECK(g->name == "iris");
  CHECK(g->file == "g.yaml");
  CHECK(g->params == json{{"seed", 7}});
  CHECK(g->hash == sha256_hex(doc(header_example)));
  CHECK(g->text == doc(header_example));
  REQUIRE(g->plugins.size() == 1);
  CHECK(std::filesystem::path(g->plugins[0]).is_absolute());
  CHECK(g->plugins[0] == (std::filesystem::current_path().parent_path() / "build/libmy_ops.so").string());

  REQUIRE(g->nodes.size() == 2);
  auto& load = g->nodes[0];
  CHECK(load.id == "load");
  CHECK(load.pos.line == 5);
  CHECK(load.pos.column == 5);
  CHECK(load.op == "ingest.csv");
  CHECK(load.op_pos.line == 6);
  CHECK(load.op_pos.column == 9);
  CHECK(load.with == json{{"path", "data/iris.csv"}, {"seed", 7}});
  CHECK(load.with["seed"].is_number_integer());
  CHECK(load.with_pos.at("seed").line == 7);
  CHECK(load.with_pos.at("seed").column == 33);

  auto& keep = g->nodes[1];
  REQUIRE(keep.inputs.size() == 1);
  CHECK(keep.inputs[0].port.empty());
  CHECK(keep.inputs[0].node == "load");
  CHECK(keep.inputs[0].node_port.empty());
  CHECK(keep.inputs[0].pos.line == 10);
  CHECK(keep.inputs[0].pos.column == 13);
  CHECK(keep.retries == 2);
  CHECK(keep.retry_backoff_s == 1.0);
  REQUIRE(keep.timeout_s);
  CHECK(*keep.timeout_s == 30.0);
  CHECK(keep.resources.cpus == 1.0);
  CHECK(keep.resources.memory_mb == 512);
  CHECK(keep.resources.gpus == 0);
  CHECK(keep.placement == std::map<std::string, std::string>{{"site", "private"}});
  CHECK(g->find("keep") == &keep);
  CHECK(g->find("nope") == nullptr);

  test_catalog catalog;
  CHECK(validate_graph(*g, catalog, ds));
  INFO(dump(ds));
  CHECK(ds.empty());
  // shorthand resolved, defaults applied
  CHECK(keep.inputs[0].port == "data");
  CHECK(keep.inputs[0].node_port == "out");
  CHECK(load.with == nlohmann::ordered_json{{"path", "data/iris.csv"}, {"seed", 7}, {"header", true}, {"delimiter", ","}});
  CHECK(topological_order(*g) == std::vector<std::string>{"load", "keep"});
}

TEST_CASE("with: values keep their YAML types", "[graph]") {
  diagnostics ds;
  auto g = parse(doc(R"(
name: types
nodes:
  - id: a
    op: x
    with:
      i: 42
      neg: -3
      f: 1.5
      e: 1e3
      hex: 0x1F
      t: true
      F: False
      n: ~
      empty:
      q: "42"
      sq: 'true'
      s: hello
      yes: yes
      list: [1, two, 3.0]
      map: {k: v, nested: [null]}
      block: |
        line
)"),
                 ds);
  INFO(dump(ds));
  REQUIRE(g);
  REQUIRE(ds.empty());
  auto& w = g->nodes[0].with;
  CHECK(w["i"] == 42);
  CHECK(w["i"].is_number_integer());
  CHECK(w["neg"] == -3);
  CHECK(w["f"] == 1.5);
  CHECK(w["f"].is_number_float());
  CHECK(w["e"] == 1000.0);
  CHECK(w["hex"] == 31);
  CHECK(w["t"] == true);
  CHECK(w["F"] == false);
  CHECK(w["n"].is_null());
  CHECK(w["empty"].is_null());
  CHECK(w["q"] == "42");
  CHECK(w["sq"] == "true");
  CHECK(w["s"] == "hello");
  CHECK(w["yes"] == "yes");
  CHECK(w["list"] == json::parse(R"([1, "two", 3.0])"));
  CHECK(w["map"] == json::parse(R"({"k": "v", "nested": [null]})"));
  CHECK(w["block"] == "line\n");
}

TEST_CASE("inputs: shorthand and mapping forms", "[graph]") {
  diagnostics ds;
  auto g = parse(doc(R"(
name: inputs
nodes:
  - id: a
    op: ingest.csv
  - id: s
    op: split
    inputs: a.out
  - id: j
    op: join
    inputs:
      left: s.train
      right: s.test
  - id: none
    op: ingest.csv
    inputs:
)"),
                 ds);
  INFO(dump(ds));
  REQUIRE(g);
  REQUIRE(ds.empty());
  auto& s = g->nodes[1];
  REQUIRE(s.inputs.size() == 1);
  CHECK(s.inputs[0].port.empty());
  CHECK(s.inputs[0].node == "a");
  CHECK(s.inputs[0].node_port == "out");
  auto& j = g->nodes[2];
  REQUIRE(j.inputs.size() == 2);
  CHECK(j.inputs[0].port == "left");
  CHECK(j.inputs[0].node == "s");
  CHECK(j.inputs[0].node_port == "train");
  CHECK(j.inputs[0].pos.line == 11);
  CHECK(j.inputs[0].pos.column == 13);
  CHECK(j.inputs[1].port == "right");
  CHECK(j.inputs[1].node_port == "test");
  CHECK(g->nodes[3].inputs.empty());
}

TEST_CASE("retries, timeout, resources and placement forms", "[graph]") {
  diagnostics ds;
  auto g = parse(doc(R"(
name: forms
nodes:
  - id: a
    op: x
    retries: {max: 3, backoff: 500ms}
    timeout: 1.5
    resources: {cpus: 0.5, memory: 2, gpus: 1}
  - id: b
    op: x
    resources:
      memory: 2GiB
    timeout: "2m"
)"),
                 ds);
  INFO(dump(ds));
  REQUIRE(g);
  REQUIRE(ds.empty());
  auto& a = g->nodes[0];
  CHECK(a.retries == 3);
  CHECK(a.retry_backoff_s == Approx(0.5));
  CHECK(*a.timeout_s == 1.5);
  CHECK(a.resources.cpus == 0.5);
  CHECK(a.resources.memory_mb == 2);
  CHECK(a.resources.gpus == 1);
  auto& b = g->nodes[1];
  CHECK(b.resources.memory_mb == 2048);
  CHECK(*b.timeout_s == 120.0);
  CHECK(b.retries == 0);
  CHECK(!a.placement.size());
}

TEST_CASE("YAML syntax errors are reported at their position", "[graph][errors]") {
  diagnostics ds;
  auto g = parse(doc(R"(
name: bad
nodes:
  - id: a
    op: [x, y
)"),
                 ds);
  CHECK(!g);
  INFO(dump(ds));
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].pos.line == 5);
  CHECK(ds[0].format().rfind("g.yaml:5:", 0) == 0);

  ds.clear();
  CHECK(!parse("name: x\n  nodes: - a\n", ds));
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].pos.line == 2);
  CHECK(ds[0].format() == "g.yaml:2:8: error: illegal map value");

  ds.clear();
  CHECK(!parse("", ds));
  CHECK(dump(ds) == "g.yaml: error: graph file is empty\n");
}

TEST_CASE("shape errors name their line and column", "[graph][errors]") {
  diagnostics ds;
  auto g = parse(doc(R"(
name: shapes
version: 2
nodes:
  - id: 1abc
    op: ingest.csv
    colour: red
  - op: sink.csv
  - id: b
  - just a string
  - id: c
    op: x
    inputs: [a, b]
    with: [1, 2]
    retries: -1
    timeout: soon
    resources: {cpus: two, memory: lots, gpus: 1.5, disks: 1}
    placement: {site: [a]}
  - id: d
    op: x
    inputs: {data: ".out", other: [a]}
    retries: {max: 1, backoff: 5 parsecs, jitter: 1}
    timeout: 0
)"),
                 ds);
  INFO(dump(ds));
  REQUIRE(g);
  CHECK(has(ds, "g.yaml:2:1: error: unknown key 'version' (expected name, params, plugins, nodes)"));
  CHECK(has(ds, "g.yaml:4:9: error: invalid node id '1abc' (use letters, digits, '_' and '-', "
                "starting with a letter or '_')"));
  CHECK(has(ds, "g.yaml:6:5: error: unknown key 'colour' (expected id, op, inputs, with, resources, "
                "placement, retries, timeout)"));
  CHECK(has(ds, "g.yaml:7:5: error: node is missing required key 'id'"));
  CHECK(has(ds, "g.yaml:8:5: error: node 'b' is missing required key 'op'"));
  CHECK(has(ds, "g.yaml:9:5: error: each node must be a mapping with 'id' and 'op'"));
  CHECK(has(ds, "g.yaml:12:13: error: 'inputs' must be a node name or a mapping of input port to node"));
  CHECK(has(ds, "g.yaml:13:11: error: 'with' must be a mapping of parameter names to values"));
  CHECK(has(ds, "g.yaml:14:14: error: 'retries' must be a non-negative integer or {max: N, backoff: DURATION}"));
  CHECK(has(ds, "g.yaml:15:14: error: invalid timeout 'soon' (use e.g. 30s, 500ms, 5m)"));
  CHECK(has(ds, "g.yaml:16:23: error: 'cpus' must be a non-negative number, not string"));
  CHECK(has(ds, "g.yaml:16:36: error: invalid memory 'lots' (use e.g. 512MiB or 2GiB)"));
  CHECK(has(ds, "g.yaml:16:48: error: 'gpus' must be a non-negative integer"));
  CHECK(has(ds, "g.yaml:16:53: error: unknown key 'disks' (expected cpus, memory, gpus)"));
  CHECK(has(ds, "g.yaml:17:23: error: placement label 'site' must be a string"));
  CHECK(has(ds, "g.yaml:20:20: error: invalid input '.out' (expected 'node' or 'node.port')"));
  CHECK(has(ds, "g.yaml:20:35: error: input 'other' must name a node, as 'node' or 'node.port'"));
  CHECK(has(ds, "g.yaml:21:32: error: invalid backoff '5 parsecs' (use e.g. 30s, 500ms, 5m)"));
  CHECK(has(ds, "g.yaml:21:43: error: unknown key 'jitter' (expected max, backoff)"));
  CHECK(has(ds, "g.yaml:22:14: error: 'timeout' must be positive"));
  CHECK(error_count(ds) == 20);
  // nodes with an id are kept (the one without is dropped)
  CHECK(g->nodes.size() == 4);
}

TEST_CASE("missing name and nodes, wrong top level", "[graph][errors]") {
  diagnostics ds;
  CHECK(parse("params: {a: 1}\n", ds));
  CHECK(has(ds, "g.yaml:1:1: error: missing required key 'name'"));
  CHECK(has(ds, "g.yaml:1:1: error: missing required key 'nodes'"));
  CHECK(ds.size() == 2);

  ds.clear();
  CHECK(parse("name: x\nnodes: []\n", ds));
  CHECK(dump(ds) == "g.yaml:2:8: error: 'nodes' must be a non-empty list of nodes\n");

  ds.clear();
  CHECK(!parse("- a\n- b\n", ds));
  CHECK(dump(ds) == "g.yaml:1:1: error: a graph file must be a mapping with 'name' and 'nodes'\n");

  ds.clear();
  CHECK(parse("name: {a: 1}\nplugins: lib.so\nnodes:\n  - {id: a, op: x}\n", ds));
  CHECK(has(ds, "g.yaml:1:7: error: 'name' must be a string"));
  CHECK(has(ds, "g.yaml:2:10: error: 'plugins' must be a list of plugin library paths"));

  ds.clear();
  CHECK(parse("name: x\nname: y\nnodes:\n  - {id: a, op: x, id: b}\n", ds));
  CHECK(has(ds, "g.yaml:2:1: error: duplicate key 'name'"));
  CHECK(has(ds, "g.yaml:4:20: error: duplicate key 'id'"));

  ds.clear();
  CHECK(parse("name: x\nnodes:\n  - {id: a, op: x}\n---\nname: y\n", ds));
  CHECK(dump(ds) == "g.yaml:4:1: error: a graph file holds one YAML document; this is a second one\n");
}

TEST_CASE("duplicate node ids name the first one's line", "[graph][errors]") {
  diagnostics ds;
  auto g = parse(doc(R"(
name: dup
nodes:
  - id: load
    op: ingest.csv
  - id: other
    op: ingest.csv
  - id: load
    op: sink.csv
)"),
                 ds);
  REQUIRE(g);
  CHECK(dump(ds) == "g.yaml:7:9: error: duplicate node id 'load' (first defined at line 3)\n");
  REQUIRE(g->nodes.size() == 2);
  CHECK(g->nodes[0].op == "ingest.csv");

  // a graph built by hand is checked by the validator
  g->nodes.push_back(g->nodes[0]);
  g->nodes.back().pos = {9, 5};
  g->nodes.back().with = {{"path", "x"}};
  ds.clear();
  test_catalog catalog;
  CHECK(!validate_graph(*g, catalog, ds));
  CHECK(has(ds, "g.yaml:9:5: error: duplicate node id 'load' (first defined at line 3)"));
}

// ---- parameters -----------------------------------------------------------------------

const char* params_graph = R"(
name: p
params:
  seed: 7
  rate: 0.5
  dir: data
  flag: false
  cols: [a, b]
nodes:
  - id: load
    op: ingest.csv
    with:
      path: "${params.dir}/iris-${params.seed}.csv"
      seed: "${params.seed}"
      rate: ${params.rate}
      flag: "${params.flag}"
      cols: "${params.cols}"
      nested: {inner: ["${params.seed}", "x${params.flag}"]}
      keep: ${not.params}
)";

TEST_CASE("${params.k} substitution keeps types for whole scalars and interpolates otherwise",
          "[graph][params]") {
  diagnostics ds;
  auto g = parse(doc(params_graph), ds);
  INFO(dump(ds));
  REQUIRE(g);
  REQUIRE(ds.empty());
  auto& w = g->nodes[0].with;
  CHECK(w["path"] == "data/iris-7.csv");
  CHECK(w["seed"] == 7);
  CHECK(w["seed"].is_number_integer());
  CHECK(w["rate"] == 0.5);
  CHECK(w["flag"] == false);
  CHECK(w["cols"] == json::parse(R"(["a", "b"])"));
  CHECK(w["nested"] == json::parse(R"({"inner": [7, "xfalse"]})"));
  CHECK(w["keep"] == "${not.params}");
}

TEST_CASE("set overrides are read as YAML scalars", "[graph][params]") {
  diagnostics ds;
  auto g = parse(doc(params_graph), ds,
                 {{"seed", "9"}, {"dir", "/mnt/d"}, {"flag", "true"}, {"rate", "abc"}, {"cols", "[x]"}});
  INFO(dump(ds));
  REQUIRE(g);
  REQUIRE(ds.empty());
  CHECK(g->params["seed"] == 9);
  CHECK(g->params["flag"] == true);
  CHECK(g->params["rate"] == "abc");
  CHECK(g->params["cols"] == json::parse(R"(["x"])"));
  auto& w = g->nodes[0].with;
  CHECK(w["seed"] == 9);
  CHECK(w["seed"].is_number_integer());
  CHECK(w["path"] == "/mnt/d/iris-9.csv");
  CHECK(w["flag"] == true);
  CHECK(w["rate"] == "abc");

  ds.clear();
  g = parse(doc(params_graph), ds, {{"sede", "1"}, {"zzzzzz", "1"}, {"seed", "\"10\""}});
  REQUIRE(g);
  CHECK(has(ds, "g.yaml: error: --set sede: the graph declares no parameter 'sede' (did you mean 'seed'?)"));
  CHECK(has(ds, "g.yaml: error: --set zzzzzz: the graph declares no parameter 'zzzzzz'"));
  CHECK(ds.size() == 2);
  CHECK(g->params["seed"] == "10"); // quoted: a string

  ds.clear();
  g = parse(doc(params_graph), ds, {{"dir", "note: hi"}, {"seed", ""}, {"rate", "~"}, {"flag", "#x"}});
  REQUIRE(g);
  CHECK(ds.empty());
  CHECK(g->params["dir"] == "note: hi");
  CHECK(g->params["seed"] == "");
  CHECK(g->params["rate"].is_null());
  CHECK(g->params["flag"] == "#x");
}

TEST_CASE("unknown ${params.k} is reported at its scalar", "[graph][params][errors]") {
  diagnostics ds;
  auto g = parse(doc(R"(
name: p
params: {seed: 7}
plugins: ["${params.libdir}/x.so"]
nodes:
  - id: load
    op: ingest.csv
    with:
      seed: "${params.sed}"
      path: "a/${params.nope}/b"
)"),
                 ds);
  REQUIRE(g);
  CHECK(has(ds, "g.yaml:3:11: error: unresolved ${params.libdir}: the graph has no parameter 'libdir'"));
  CHECK(has(ds, "g.yaml:8:13: error: unresolved ${params.sed}: the graph has no parameter 'sed' "
                "(did you mean 'seed'?)"));
  CHECK(has(ds, "g.yaml:9:13: error: unresolved ${params.nope}: the graph has no parameter 'nope'"));
  CHECK(error_count(ds) == 3);
  CHECK(g->nodes[0].with["path"] == "a/${params.nope}/b");
}

// ---- validation ------------------------------------------------------------------------

TEST_CASE("unknown operators get a suggestion", "[graph][validate]") {
  auto ds = check(doc(R"(
name: v
nodes:
  - id: load
    op: ingest.cvs
    with: {path: x}
  - id: other
    op: frobnicate
)"));
  INFO(dump(ds));
  CHECK(has(ds, "g.yaml:4:9: error: unknown operator 'ingest.cvs' (did you mean 'ingest.csv'?)"));
  CHECK(has(ds, "g.yaml:7:9: error: unknown operator 'frobnicate'"));
  CHECK(ds.size() == 2);
}

TEST_CASE("input errors: nodes, ports, shorthand, connections, types", "[graph][validate]") {
  auto ds = check(doc(R"(
name: v
nodes:
  - id: load
    op: ingest.csv
    with: {path: x}
  - id: s
    op: split
    inputs: lod
  - id: k1
    op: sink.csv
    inputs: load.outt
    with: {path: y}
  - id: j
    op: join
    inputs: load
  - id: k2
    op: sink.csv
    inputs: {data: s}
    with: {path: y}
  - id: k3
    op: sink.csv
    inputs: {dta: load}
    with: {path: y}
  - id: k4
    op: sink.csv
    with: {path: y}
  - id: ev
    op: evaluate
    inputs: {model: load, data: load}
  - id: l
    op: log
    inputs: {data: ev}
  - id: load2
    op: ingest.csv
    inputs: load
    with: {path: x}
)"));
  INFO(dump(ds));
  CHECK(has(ds, "g.yaml:8:13: error: node 's' reads from unknown node 'lod' (did you mean 'load'?)"));
  CHECK(has(ds, "g.yaml:11:13: error: node 'load' (ingest.csv) has no output 'outt' (did you mean 'out'?); "
                "its outputs are: out"));
  CHECK(has(ds, "g.yaml:15:13: error: node 'j' (join) has 2 inputs (left, right); bind each by name, "
                "e.g. inputs: {left: load}"));
  CHECK(has(ds, "g.yaml:18:20: error: node 's' (split) has several outputs (train, test); name one, "
                "e.g. s.train"));
  CHECK(has(ds, "g.yaml:22:19: error: node 'k3' (sink.csv) has no input 'dta' (did you mean 'data'?); "
                "its inputs are: data"));
  CHECK(has(ds, "g.yaml:24:5: error: input 'data' of node 'k4' (sink.csv) is not connected"));
  CHECK(has(ds, "g.yaml:29:21: error: port type mismatch: load.out is frame but ev.model expects model"));
  CHECK(has(ds, "g.yaml:35:13: error: node 'load2' (ingest.csv) takes no inputs"));
  // a shorthand or port error does not add "not connected" for the same node
  CHECK(error_count(ds) == 8);
}

TEST_CASE("every input port must be bound once", "[graph][validate]") {
  graph_spec g;
  diagnostics ds;
  auto parsed = parse(doc(R"(
name: v
nodes:
  - id: a
    op: ingest.csv
    with: {path: x}
  - id: j
    op: join
    inputs: {left: a}
)"),
                      ds);
  REQUIRE(parsed);
  g = *parsed;
  input_binding extra;
  extra.port = "left";
  extra.node = "a";
  extra.pos = {9, 1};
  g.nodes[1].inputs.push_back(extra);
  test_catalog catalog;
  CHECK(!validate_graph(g, catalog, ds));
  INFO(dump(ds));
  CHECK(has(ds, "g.yaml:6:5: error: input 'right' of node 'j' (join) is not connected"));
  CHECK(has(ds, "g.yaml:9:1: error: input 'left' of node 'j' (join) is bound more than once"));
  CHECK(ds.size() == 2);
}

TEST_CASE("an optional input may be left unconnected, a required one not", "[graph][validate]") {
  auto ok = check(doc(R"(
name: v
nodes:
  - {id: a, op: ingest.csv, with: {path: x}}
  - {id: s, op: score, inputs: {data: a}}
)"));
  INFO(dump(ok));
  CHECK(ok.empty());
  auto ds = check(doc(R"(
name: v
nodes:
  - {id: a, op: ingest.csv, with: {path: x}}
  - {id: t, op: train, inputs: a}
  - {id: s, op: score, inputs: {model: t.model}}
)"));
  INFO(dump(ds));
  CHECK(has(ds, "g.yaml:5:5: error: input 'data' of node 's' (score) is not connected"));
  CHECK(ds.size() == 1);
}

TEST_CASE("parameter errors and defaults", "[graph][validate]") {
  graph_spec g;
  auto ds = check(doc(R"(
name: v
nodes:
  - id: load
    op: ingest.csv
    with: {path: 3, header: "yes", delimeter: ";", seed: "42"}
  - id: load2
    op: ingest.csv
    with:
      zzzzzzzz: 1
  - id: t
    op: train
    inputs: load
    with: {lr: 1, epochs: 2.5, features: a, options: [1]}
  - id: t2
    op: train
    inputs: load
    with: {lr: 0.01, features: [a], options: {depth: 3}}
)"),
                  &g);
  INFO(dump(ds));
  CHECK(has(ds, "g.yaml:5:12: error: parameter 'path' of node 'load' (ingest.csv) expects string, got int"));
  CHECK(has(ds, "g.yaml:5:21: error: parameter 'header' of node 'load' (ingest.csv) expects bool, got string"));
  CHECK(has(ds, "g.yaml:5:36: error: unknown parameter 'delimeter' for node 'load' (ingest.csv) "
                "(did you mean 'delimiter'?)"));
  CHECK(has(ds, "g.yaml:5:52: error: parameter 'seed' of node 'load' (ingest.csv) expects int, got string"));
  CHECK(has(ds, "g.yaml:9:7: error: unknown parameter 'zzzzzzzz' for node 'load2' (ingest.csv); "
                "its parameters are: path, header, delimiter, seed"));
  CHECK(has(ds, "g.yaml:6:5: error: node 'load2' (ingest.csv) is missing required parameter 'path'"));
  CHECK(has(ds, "g.yaml:13:19: error: parameter 'epochs' of node 't' (train) expects int, got float"));
  CHECK(has(ds, "g.yaml:13:32: error: parameter 'features' of node 't' (train) expects list, got string"));
  CHECK(has(ds, "g.yaml:13:45: error: parameter 'options' of node 't' (train) expects map, got list"));
  CHECK(error_count(ds) == 9); // int accepted for float (lr: 1)
  // defaults applied where not given
  CHECK(g.nodes[0].with["delimiter"] == ",");
  CHECK(g.nodes[2].with["lr"] == 1);
  CHECK(g.nodes[3].with["epochs"] == 10);
  CHECK(g.nodes[3].with["lr"] == 0.01);
  CHECK(!g.nodes[3].with.contains("zzz"));
}

TEST_CASE("cycles are named node by node, one error per cycle", "[graph][validate]") {
  graph_spec g;
  auto ds = check(doc(R"(
name: cyc
nodes:
  - id: src
    op: ingest.csv
    with: {path: x}
  - id: a
    op: join
    inputs: {left: src, right: c}
  - id: b
    op: split
    inputs: a
  - id: c
    op: join
    inputs: {left: b.train, right: b.test}
  - id: self
    op: join
    inputs: {left: src, right: self}
  - id: x
    op: split
    inputs: y.train
  - id: y
    op: split
    inputs: x.test
)"),
                  &g);
  INFO(dump(ds));
  CHECK(has(ds, "g.yaml:6:5: error: cycle: a -> b -> c -> a"));
  CHECK(has(ds, "g.yaml:15:5: error: cycle: self -> self"));
  CHECK(has(ds, "g.yaml:18:5: error: cycle: x -> y -> x"));
  CHECK(ds.size() == 3);
  auto order = topological_order(g); // still lists every node
  CHECK(order.size() == g.nodes.size());
  CHECK(order[0] == "src");
}

TEST_CASE("a long chain validates without deep recursion", "[graph][validate]") {
  std::string text = "name: chain\nnodes:\n  - {id: n0, op: ingest.csv, with: {path: x}}\n";
  const int count = 20000;
  for (int i = 1; i < count; ++i)
    text += "  - {id: n" + std::to_string(i) + ", op: split, inputs: n" + std::to_string(i - 1) +
            (i > 1 ? ".train" : "") + "}\n";
  graph_spec g;
  auto ds = check(text, &g);
  INFO(dump(ds));
  CHECK(ds.empty());
  auto order = topological_order(g);
  REQUIRE(order.size() == count);
  CHECK(order.front() == "n0");
  CHECK(order.back() == "n" + std::to_string(count - 1));
}

TEST_CASE("topological order puts every node after its inputs", "[graph]") {
  graph_spec g;
  auto ds = check(doc(R"(
name: topo
nodes:
  - id: j
    op: join
    inputs: {left: b, right: a}
  - id: sink
    op: sink.csv
    inputs: j
    with: {path: out}
  - id: b
    op: ingest.csv
    with: {path: b}
  - id: a
    op: ingest.csv
    with: {path: a}
)"),
                  &g);
  INFO(dump(ds));
  CHECK(ds.empty());
  CHECK(topological_order(g) == std::vector<std::string>{"b", "a", "j", "sink"});
}

TEST_CASE("validation reports all errors together", "[graph][validate]") {
  auto ds = check(doc(R"(
name: many
nodes:
  - id: load
    op: ingest.csv
  - id: t
    op: trian
    inputs: load
  - id: k
    op: sink.csv
    inputs: nowhere
    with: {path: x, extra: 1}
)"));
  INFO(dump(ds));
  CHECK(has(ds, "g.yaml:3:5: error: node 'load' (ingest.csv) is missing required parameter 'path'"));
  CHECK(has(ds, "g.yaml:6:9: error: unknown operator 'trian' (did you mean 'train'?)"));
  CHECK(has(ds, "g.yaml:10:13: error: node 'k' reads from unknown node 'nowhere'"));
  CHECK(has(ds, "g.yaml:11:21: error: unknown parameter 'extra' for node 'k' (sink.csv); "
                "its parameters are: path"));
  CHECK(ds.size() == 4);
}

// ---- hostile input ------------------------------------------------------------------

TEST_CASE("an alias bomb is refused quickly", "[graph][limits]") {
  std::string text = "name: bomb\nparams:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  const char* names = "abcdefghij";
  for (int i = 1; i < 10; ++i) {
    text += std::string("  ") + names[i] + ": &" + names[i] + " [";
    for (int k = 0; k < 10; ++k)
      text += std::string(k ? ", " : "") + "*" + names[i - 1];
    text += "]\n";
  }
  text += "nodes:\n  - {id: a, op: x}\n";
  auto start = std::chrono::steady_clock::now();
  diagnostics ds;
  CHECK(!parse(text, ds));
  CHECK(seconds_since(start) < 1.0);
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].message == "too many YAML nodes (alias expansion?)");

  // the same under with:
  text = "name: bomb\nnodes:\n  - id: a\n    op: x\n    with:\n      a: &a [lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i < 10; ++i) {
    text += std::string("      ") + names[i] + ": &" + names[i] + " [";
    for (int k = 0; k < 8; ++k)
      text += std::string(k ? ", " : "") + "*" + names[i - 1];
    text += "]\n";
  }
  start = std::chrono::steady_clock::now();
  ds.clear();
  CHECK(!parse(text, ds));
  CHECK(seconds_since(start) < 1.0);
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].message == "too many YAML nodes (alias expansion?)");
}

TEST_CASE("aliases of a long string are bounded in bytes", "[graph][limits]") {
  std::string text = "name: big\nparams:\n  s: &s " + std::string(100000, 'x') + "\n  l: [";
  for (int i = 0; i < 200; ++i)
    text += std::string(i ? ", " : "") + "*s";
  text += "]\nnodes:\n  - {id: a, op: x}\n";
  parse_limits limits;
  limits.max_bytes = 1 << 20;
  diagnostics ds;
  CHECK(!parse(text, ds, {}, limits));
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].message == "the graph expands to more than 4194304 bytes (alias expansion?)");
}

TEST_CASE("parameter substitution is bounded too", "[graph][limits]") {
  std::string list = "[";
  for (int i = 0; i < 1000; ++i)
    list += std::string(i ? "," : "") + "1";
  std::string text = "name: p\nparams: {l: " + list + "], s: " + std::string(5000, 'x') +
                     "}\nnodes:\n  - id: a\n    op: x\n    with:\n";
  for (int i = 0; i < 300; ++i)
    text += "      k" + std::to_string(i) + ": \"${params.l}\"\n";
  diagnostics ds;
  CHECK(!parse(text, ds));
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].message == "too many YAML nodes (after ${params} substitution)");

  parse_limits limits;
  limits.max_bytes = 20000;
  text = "name: p\nparams: {s: " + std::string(5000, 'x') + "}\nnodes:\n  - id: a\n    op: x\n    with:\n"
         "      k: \"";
  for (int i = 0; i < 20; ++i)
    text += "${params.s}";
  text += "\"\n";
  ds.clear();
  CHECK(!parse(text, ds, {}, limits));
  CHECK(dump(ds) == "g.yaml:7:10: error: the graph expands to more than 80000 bytes "
                    "(after ${params} substitution)\n");
}

TEST_CASE("deep nesting is refused quickly", "[graph][limits]") {
  std::string text = "name: deep\nnodes: " + std::string(100000, '[') + std::string(100000, ']') + "\n";
  auto start = std::chrono::steady_clock::now();
  diagnostics ds;
  CHECK(!parse(text, ds));
  CHECK(seconds_since(start) < 1.0);
  INFO(dump(ds));
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].format() == "g.yaml:2:71: error: nesting deeper than 64 levels");

  // unbalanced, as an attacker would send it
  text = "name: deep\nnodes: " + std::string(100000, '[');
  start = std::chrono::steady_clock::now();
  ds.clear();
  CHECK(!parse(text, ds));
  CHECK(seconds_since(start) < 1.0);
  REQUIRE(ds.size() == 1);

  // a mapping that contains itself through an alias
  ds.clear();
  CHECK(!parse("name: self\nnodes:\n  - id: a\n    op: x\n    with: {p: &p [*p]}\n", ds));
  CHECK(dump(ds) == "g.yaml:5:19: error: an alias may not refer to a node that contains it\n");

  // nesting that only aliases make deep
  text = "name: x\nparams:\n  a: &a " + std::string(40, '[') + std::string(40, ']') + "\n  b: " +
         std::string(40, '[') + "*a" + std::string(40, ']') + "\nnodes: [{id: a, op: x}]\n";
  ds.clear();
  CHECK(!parse(text, ds));
  CHECK(dump(ds) == "g.yaml:4:46: error: nesting deeper than 64 levels\n");

  // a smaller limit
  parse_limits limits;
  limits.max_depth = 4;
  ds.clear();
  CHECK(!parse("name: x\nnodes:\n  - id: a\n    op: x\n    with: {p: [1]}\n", ds, {}, limits));
  CHECK(dump(ds) == "g.yaml:5:15: error: nesting deeper than 4 levels\n");
}

TEST_CASE("size and node-count limits", "[graph][limits]") {
  parse_limits limits;
  limits.max_bytes = 100;
  diagnostics ds;
  CHECK(!parse(std::string(200, '#'), ds, {}, limits));
  CHECK(dump(ds) == "g.yaml: error: graph file is 200 bytes; the limit is 100\n");

  limits = {};
  limits.max_nodes = 50;
  std::string text = "name: many\nnodes:\n  - id: a\n    op: x\n    with: {l: [";
  for (int i = 0; i < 100; ++i)
    text += std::string(i ? "," : "") + "1";
  text += "]}\n";
  ds.clear();
  CHECK(!parse(text, ds, {}, limits));
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].message == "too many YAML nodes (more than 50)");
}

// ---- files -----------------------------------------------------------------------------

TEST_CASE("load_graph reads a file and resolves plugin paths next to it", "[graph][files]") {
  namespace fs = std::filesystem;
  auto dir = fs::temp_directory_path() / ("loom_graph_test_" + std::to_string(::getpid()));
  fs::create_directories(dir / "graphs");
  auto file = dir / "graphs" / "g.yaml";
  {
    std::ofstream out(file);
    out << "name: f\nparams: {lib: ops}\nplugins: [\"../lib/${params.lib}.so\", /abs/x.so]\n"
           "nodes:\n  - {id: a, op: x}\n";
  }
  diagnostics ds;
  auto g = load_graph(file.string(), {}, ds);
  INFO(dump(ds));
  REQUIRE(g);
  CHECK(ds.empty());
  CHECK(g->file == file.string());
  CHECK(g->base_dir == (dir / "graphs").string());
  CHECK(g->plugins == std::vector<std::string>{(dir / "lib" / "ops.so").string(), "/abs/x.so"});

  ds.clear();
  auto missing = (dir / "missing.yaml").string();
  CHECK(!load_graph(missing, {}, ds));
  CHECK(dump(ds) == missing + ": error: cannot read " + missing + ": No such file or directory\n");

  ds.clear();
  CHECK(!load_graph(dir.string(), {}, ds));
  CHECK(dump(ds) == dir.string() + ": error: cannot read " + dir.string() + ": Is a directory\n");

  ds.clear();
  parse_limits limits;
  limits.max_bytes = 10;
  CHECK(!load_graph(file.string(), {}, ds, limits));
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].message.find("; the limit is 10") != std::string::npos);
  fs::remove_all(dir);

  // text without a file
  ds.clear();
  g = parse_graph("name: t\nnodes: [{id: a, op: x}]\n", "", {}, ds);
  REQUIRE(g);
  CHECK(g->base_dir == ".");
}

// ---- helpers -----------------------------------------------------------------------------

TEST_CASE("parse_duration", "[graph][util]") {
  CHECK(parse_duration("30s") == 30.0);
  CHECK(parse_duration("500ms") == 0.5);
  CHECK(parse_duration("5m") == 300.0);
  CHECK(parse_duration("1h") == 3600.0);
  CHECK(parse_duration("1.5s") == 1.5);
  CHECK(parse_duration("2") == 2.0);
  CHECK(parse_duration("0.25") == 0.25);
  CHECK(parse_duration("1h30m") == 5400.0);
  CHECK(parse_duration(" 10s ") == 10.0);
  CHECK(!parse_duration(""));
  CHECK(!parse_duration("s"));
  CHECK(!parse_duration("-1s"));
  CHECK(!parse_duration("10 parsecs"));
  CHECK(!parse_duration("5x"));
  CHECK(!parse_duration("inf"));
}

TEST_CASE("parse_memory_mb", "[graph][util]") {
  CHECK(parse_memory_mb("512MiB") == 512u);
  CHECK(parse_memory_mb("2GiB") == 2048u);
  CHECK(parse_memory_mb("100MB") == 96u); // 100e6 bytes, rounded up
  CHECK(parse_memory_mb("1G") == 1024u);
  CHECK(parse_memory_mb("256") == 256u);
  CHECK(parse_memory_mb("1.5GiB") == 1536u);
  CHECK(parse_memory_mb("512Mi") == 512u);
  CHECK(parse_memory_mb("1 TiB") == 1048576u);
  CHECK(!parse_memory_mb("lots"));
  CHECK(!parse_memory_mb("-1MiB"));
  CHECK(!parse_memory_mb("12XB"));
  CHECK(!parse_memory_mb(""));
}

TEST_CASE("closest_name", "[graph][util]") {
  std::vector<std::string> ops{"ingest.csv", "sink.csv", "train"};
  CHECK(closest_name("ingest.cvs", ops) == "ingest.csv");
  CHECK(closest_name("trian", ops) == "train");
  CHECK(closest_name("Train", ops) == "train");
  CHECK(!closest_name("frobnicate", ops));
  CHECK(!closest_name("x", {}));
}

TEST_CASE("sha256_hex and diagnostic::format", "[graph][util]") {
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  diagnostic d{"g.yaml", {3, 7}, "error", "boom"};
  CHECK(d.format() == "g.yaml:3:7: error: boom");
  d.pos = {};
  CHECK(d.format() == "g.yaml: error: boom");
  d.severity = "warning";
  CHECK(d.format() == "g.yaml: warning: boom");
  CHECK(has_errors({diagnostic{"f", {}, "error", "x"}}));
  CHECK(!has_errors({diagnostic{"f", {}, "warning", "x"}}));
}

#ifdef LOOM_SOURCE_DIR
TEST_CASE("every example graph parses cleanly", "[graph][files]") {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(LOOM_SOURCE_DIR) / "graphs";
  if (!fs::exists(dir))
    return;
  for (auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml")
      continue;
    diagnostics ds;
    auto g = load_graph(entry.path().string(), {}, ds);
    INFO(entry.path().string() << "\n" << dump(ds));
    CHECK(g);
    CHECK(!has_errors(ds));
    if (g)
      CHECK(topological_order(*g).size() == g->nodes.size());
  }
}
#endif
