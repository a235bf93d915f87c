// loom run / loom validate
#include "cli.hpp"

#include "loom/runtime/executor.hpp"
#include "loom/runtime/store.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <thread>
#include <unistd.h>

namespace loom::cli {

namespace {

std::atomic<bool> g_cancel{false};

extern "C" void on_signal(int) {
  g_cancel.store(true);
}

/// Parses --set flags and loads plugins the graph names; prints errors.
std::optional<graph_spec> load_and_validate(const std::string& file, const std::vector<std::string>& sets,
                                            plugin_registry& reg, bool json) {
  diagnostics diags;
  std::vector<std::pair<std::string, std::string>> overrides;
  for (auto& s : sets) {
    std::pair<std::string, std::string> kv;
    if (!split_assignment(s, kv))
      diags.push_back({file, {}, "error", "--set " + s + ": expected k=v"});
    else
      overrides.push_back(kv);
  }
  auto graph = load_graph(file, overrides, diags);
  if (graph) {
    load_graph_plugins(*graph, reg, diags);
    validate_graph(*graph, reg, diags);
  }
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (auto& d : diags)
      out.push_back({{"file", d.file}, {"line", d.pos.line}, {"column", d.pos.column},
                     {"severity", d.severity}, {"message", d.message}});
    if (has_errors(diags)) {
      print_json(nlohmann::json{{"valid", false}, {"diagnostics", out}});
      return std::nullopt;
    }
  } else {
    for (auto& d : diags)
      std::cerr << d.format() << "\n";
  }
  if (has_errors(diags))
    return std::nullopt;
  return graph;
}

std::string fmt_secs(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fs", s);
  return buf;
}

std::string counters(const node_record& n) {
  std::string s = "rows in " + std::to_string(n.rows_in) + ", out " + std::to_string(n.rows_out);
  if (n.rows_rejected)
    s += ", rejected " + std::to_string(n.rows_rejected);
  s += ", frames " + std::to_string(n.frames_in) + "/" + std::to_string(n.frames_out);
  return s;
}

} // namespace

int cmd_validate(const common_options& opts, const std::string& file, const std::vector<std::string>& sets) {
  plugin_registry reg;
  load_plugins(reg, opts, opts.json);
  auto graph = load_and_validate(file, sets, reg, opts.json);
  if (!graph)
    return exit_invalid;
  auto order = topological_order(*graph);
  if (opts.json) {
    nlohmann::json nodes = nlohmann::json::array();
    for (auto& id : order) {
      auto* n = graph->find(id);
      nodes.push_back({{"id", n->id}, {"op", n->op}, {"params", n->with}});
    }
    print_json(nlohmann::json{{"valid", true}, {"name", graph->name}, {"hash", graph->hash},
                                {"params", graph->params}, {"nodes", nodes}});
    return exit_ok;
  }
  size_t edges = 0;
  for (auto& n : graph->nodes)
    edges += n.inputs.size();
  std::cout << file << ": ok: graph '" << graph->name << "', " << graph->nodes.size() << " nodes, " << edges
            << " edges\n";
  for (auto& id : order) {
    auto* n = graph->find(id);
    std::cout << "  " << n->id << " (" << n->op << ")";
    if (!n->inputs.empty()) {
      std::cout << " <- ";
      for (size_t i = 0; i < n->inputs.size(); ++i)
        std::cout << (i ? ", " : "") << n->inputs[i].port << ": " << n->inputs[i].node << "."
                  << n->inputs[i].node_port;
    }
    std::cout << "\n";
  }
  return exit_ok;
}

int cmd_run(const common_options& opts, const std::string& file, const std::vector<std::string>& sets,
            bool quiet) {
  plugin_registry reg;
  load_plugins(reg, opts, opts.json);
  auto graph = load_and_validate(file, sets, reg, opts.json);
  if (!graph)
    return exit_invalid;

  auto home = resolve_home(opts.home);
  auto store = run_store::open(home);
  if (!store) {
    std::cerr << "loom: error: " << error_message(store.error()) << "\n";
    return exit_failed;
  }
  run_record rec;
  rec.graph_name = graph->name;
  rec.graph_file = std::filesystem::absolute(file).string();
  rec.graph_hash = graph->hash;
  rec.graph_text = graph->text;
  rec.params = graph->params;
  rec.state = "running";
  rec.started_ms = now_ms();
  rec.pid = static_cast<int>(::getpid());
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  rec.host = host;
  for (auto& n : graph->nodes)
    {
    node_record nr;
    nr.id = n.id;
    nr.op = n.op;
    rec.nodes.push_back(nr);
  }
  if (auto err = (*store)->create_run(rec)) {
    std::cerr << "loom: error: " << error_message(err) << "\n";
    return exit_failed;
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  caf::actor_system_config cfg;
  auto threads = std::max(2u, std::thread::hardware_concurrency());
  cfg.set("scheduler.max-threads", static_cast<size_t>(threads));
  cfg.set("logger.verbosity", caf::atom("quiet"));
  // Operators run on detached actors (their own threads); the scheduler's workers only
  // run the small run actor. CAF's default idle loop polls every 50 us for half a
  // second, which takes CPU from the operators on a small machine: sleep sooner.
  cfg.set("work-stealing.aggressive-poll-attempts", size_t{10});
  cfg.set("work-stealing.moderate-poll-attempts", size_t{10});
  cfg.set("work-stealing.moderate-sleep-duration", caf::timespan{std::chrono::microseconds{200}});
  cfg.set("work-stealing.relaxed-sleep-duration", caf::timespan{std::chrono::milliseconds{2}});
  caf::actor_system sys{cfg};

  std::mutex out_mtx;
  size_t width = 4;
  for (auto& n : graph->nodes)
    width = std::max(width, n.id.size());
  auto& err = std::cerr;
  if (!quiet)
    err << "run " << rec.id << ": graph '" << graph->name << "' (" << graph->nodes.size() << " nodes), home "
        << home << "\n";
  run_options ro;
  ro.run_id = rec.id;
  ro.cancel = &g_cancel;
  ro.store = store->get();
  ro.record = &rec;
  ro.progress_interval_s = quiet ? 0 : 1.0;
  ro.on_event = [&](const run_event& ev) {
    if (quiet)
      return;
    std::lock_guard<std::mutex> guard(out_mtx);
    char t[32];
    std::snprintf(t, sizeof t, "[%7.2fs] ", ev.elapsed_s);
    std::string id = ev.node;
    id.resize(width, ' ');
    switch (ev.kind) {
      case run_event::node_state: {
        err << t << id << "  " << ev.state;
        auto& n = ev.stats;
        if (ev.state == "succeeded" || ev.state == "failed") {
          err << "  " << counters(n);
          if (n.started_ms && n.ended_ms)
            err << ", " << fmt_secs((n.ended_ms - n.started_ms) / 1000.0);
        }
        if (!ev.message.empty() && ev.state != "succeeded")
          err << "  " << ev.message;
        err << "\n";
        break;
      }
      case run_event::progress:
        err << t << id << "  running  " << counters(ev.stats);
        if (ev.stats.started_ms)
          err << ", " << fmt_secs((now_ms() - ev.stats.started_ms) / 1000.0);
        err << "\n";
        break;
      case run_event::log:
        if (ev.state != "debug")
          err << t << (ev.node.empty() ? std::string(width, ' ') : id) << "  " << ev.state << ": " << ev.message
              << "\n";
        break;
      case run_event::run_state: break;
    }
  };
  auto res = execute(sys, *graph, reg, ro);

  if (opts.json) {
    auto j = to_json(rec);
    j.erase("graph_text");
    print_json(j);
  } else {
    std::cout << "run " << rec.id << " " << res.state;
    if (res.state != "succeeded" && !res.error.empty())
      std::cout << ": " << res.error;
    std::cout << "\n";
  }
  if (res.state == "succeeded")
    return exit_ok;
  return res.state == "cancelled" ? exit_cancelled : exit_failed;
}

} // namespace loom::cli
