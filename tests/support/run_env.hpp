// Test support: run graph text through the real executor with the real plugins.
//
//   loom::test::env e;                   // loads test.* fixtures + every operator plugin
//   auto r = e.run(e.graph(R"(name: t
//   nodes: ...)"));                      // paths in the graph resolve against e.dir
//   CHECK(loom::test::node(r, "load").rows_out == 3);
//
// env(true) runs on CAF's deterministic test scheduler (one thread, virtual time).
#pragma once

#include "loom/runtime/executor.hpp"
#include "loom/runtime/store.hpp"
#include "loom/runtime/plugin_registry.hpp"

#include <catch2/catch.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <optional>
#include <vector>

namespace loom::test {

struct env {
  plugin_registry reg;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::string dir;

  caf::scheduler::test_coordinator* sched = nullptr; ///< set when deterministic

  /// deterministic: CAF's test scheduler runs every actor on this thread, one message
  /// at a time, and timers fire when the test says (virtual time).
  explicit env(bool deterministic = false) {
    auto good = reg.load(std::string(LOOM_FIXTURE_DIR) + "/good/libtest_ops.so");
    REQUIRE(good);
    auto errs = reg.load_directories({std::string(LOOM_BINARY_DIR) + "/lib/loom/plugins"});
    REQUIRE(errs.empty());
    cfg.set("scheduler.max-threads", size_t{2});
    cfg.set("logger.verbosity", caf::atom("quiet"));
    if (deterministic)
      cfg.set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(cfg);
    if (deterministic) {
      sched = dynamic_cast<caf::scheduler::test_coordinator*>(&sys->scheduler());
      REQUIRE(sched != nullptr);
    }
    char tmpl[] = "/tmp/loom-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
  }

  ~env() {
    sys.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  graph_spec graph(const std::string& yaml) {
    diagnostics diags;
    auto g = parse_graph(yaml, dir + "/graph.yaml", {}, diags);
    bool valid = g && validate_graph(*g, reg, diags) && !has_errors(diags);
    std::string messages;
    for (auto& d : diags)
      messages += d.format() + "\n";
    INFO(messages);
    REQUIRE(valid);
    return std::move(*g);
  }

  run_result run(const graph_spec& g, run_options opts = {}) {
    opts.progress_interval_s = 0;
    if (sched != nullptr) {
      opts.detached_nodes = false;
      opts.drive = [this] {
        // run every pending message; when none is left, fire the next timer
        if (sched->run() == 0 && !sched->trigger_timeout())
          FAIL("deterministic run is stuck: no message and no timer pending");
      };
    }
    auto r = execute(*sys, g, reg, opts);
    // shown with the next failing assertion: why the run did not succeed
    if (r.state != "succeeded") {
      UNSCOPED_INFO("run " << r.state << ": " << r.error);
      for (auto& n : r.nodes)
        if (!n.error.empty())
          UNSCOPED_INFO("  node " << n.id << " " << n.state << ": " << n.error);
    }
    return r;
  }

  std::vector<std::string> lines(const std::string& file) {
    std::ifstream in(dir + "/" + file);
    std::vector<std::string> out;
    std::string line;
    while (std::getline(in, line))
      out.push_back(line);
    return out;
  }
};

inline const node_record& node(const run_result& r, const std::string& id) {
  for (auto& n : r.nodes)
    if (n.id == id)
      return n;
  FAIL("no node " << id);
  throw;
}

/// Writes `text` to e.dir/name (creating folders) and returns the path.
inline std::string write_file(const env& e, const std::string& name, const std::string& text) {
  auto path = e.dir + "/" + name;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

/// Whether `s` contains `part`.
inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

/// The whole content of e.dir/name.
inline std::string read_file(const env& e, const std::string& name) {
  std::ifstream in(e.dir + "/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A run recorded in a store of its own under e.dir (as `loom run` records it), so a
/// test can read the run's artifacts and logs.
struct recorded {
  run_result result;
  std::unique_ptr<run_store> store;
  std::string id;

  std::optional<std::string> find_artifact(const std::string& name) const {
    auto a = store->get_artifact(id, name);
    if (!a)
      return std::nullopt;
    return a->data;
  }
  std::string artifact(const std::string& name) const {
    auto a = find_artifact(name);
    REQUIRE(a);
    return *a;
  }
  /// The messages logged at `level` (debug, info, warn, error).
  std::vector<std::string> logs(const std::string& level) const {
    auto l = store->logs(id);
    REQUIRE(l);
    std::vector<std::string> out;
    for (auto& x : *l)
      if (x.level == level)
        out.push_back(x.message);
    return out;
  }
};

inline recorded run_recorded(env& e, const std::string& yaml) {
  static int n = 0;
  recorded out;
  auto store = run_store::open(e.dir + "/home" + std::to_string(++n));
  REQUIRE(store);
  out.store = std::move(*store);
  auto g = e.graph(yaml);
  run_record rec;
  rec.graph_name = g.name;
  rec.graph_hash = g.hash;
  rec.graph_text = g.text;
  REQUIRE_FALSE(out.store->create_run(rec));
  run_options opts;
  opts.run_id = rec.id;
  opts.store = out.store.get();
  opts.record = &rec;
  out.result = e.run(g, opts);
  out.id = rec.id;
  return out;
}

} // namespace loom::test
