// loom ops ..., loom plugins ..., loom runs ...
#include "cli.hpp"

#include "loom/runtime/store.hpp"

#include <ctime>
#include <fstream>
#include <iomanip>
#include <iostream>

namespace loom::cli {

namespace {

nlohmann::json port_json(const port_info& p) {
  return {{"name", p.name}, {"type", to_string(p.type)}, {"description", p.description}, {"optional", p.optional}};
}

nlohmann::json op_json(const operator_info& op) {
  nlohmann::json j{{"name", op.name}, {"version", op.version}, {"description", op.description},
                   {"plugin", op.plugin_name}, {"plugin_path", op.plugin_path}};
  j["inputs"] = nlohmann::json::array();
  for (auto& p : op.inputs)
    j["inputs"].push_back(port_json(p));
  j["outputs"] = nlohmann::json::array();
  for (auto& p : op.outputs)
    j["outputs"].push_back(port_json(p));
  j["params"] = nlohmann::json::array();
  for (auto& p : op.params) {
    nlohmann::json pj{{"name", p.name}, {"type", to_string(p.type)}, {"required", p.required},
                      {"description", p.description}};
    pj["default"] = p.default_json ? nlohmann::json::parse(*p.default_json) : nlohmann::json();
    j["params"].push_back(pj);
  }
  j["resources"] = {{"cpus", op.resources.cpus}, {"memory_mb", op.resources.memory_mb},
                    {"gpus", op.resources.gpus}};
  j["examples"] = op.examples;
  return j;
}

std::string summary(const std::string& description) {
  auto dot = description.find(". ");
  return dot == std::string::npos ? description : description.substr(0, dot + 1);
}

void print_op(const operator_info& op) {
  std::cout << op.name << " " << op.version << "  (plugin " << op.plugin_name << ")\n\n"
            << op.description << "\n\n";
  // one name column wide enough for every port and parameter name
  int w = 10;
  for (auto* list : {&op.inputs, &op.outputs})
    for (auto& p : *list)
      w = std::max(w, static_cast<int>(p.name.size()) + 2);
  for (auto& p : op.params)
    w = std::max(w, static_cast<int>(p.name.size()) + 2);
  auto ports = [w](const char* title, const std::vector<port_info>& ps) {
    std::cout << title << ":";
    if (ps.empty())
      std::cout << " none";
    std::cout << "\n";
    for (auto& p : ps)
      std::cout << "  " << std::left << std::setw(w) << p.name << std::setw(9) << to_string(p.type)
                << (p.optional ? "(optional) " : "") << p.description << "\n";
  };
  ports("Inputs", op.inputs);
  ports("Outputs", op.outputs);
  std::cout << "Parameters:";
  if (op.params.empty())
    std::cout << " none";
  std::cout << "\n";
  for (auto& p : op.params) {
    std::cout << "  " << std::left << std::setw(w) << p.name << std::setw(8) << to_string(p.type)
              << (p.required ? "required" : "default " + p.default_json.value_or("none")) << "\n"
              << "      " << p.description << "\n";
  }
  std::cout << "Resources: cpus " << op.resources.cpus << ", memory " << op.resources.memory_mb << " MiB, gpus "
            << op.resources.gpus << "\n";
  if (!op.examples.empty()) {
    std::cout << "Example:\n";
    std::string line;
    std::istringstream in(op.examples);
    while (std::getline(in, line))
      std::cout << "  " << line << "\n";
  }
}

std::string fmt_time(int64_t ms) {
  if (ms == 0)
    return "-";
  std::time_t t = ms / 1000;
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string fmt_duration(int64_t a, int64_t b) {
  if (a == 0 || b == 0)
    return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fs", (b - a) / 1000.0);
  return buf;
}

caf::expected<std::unique_ptr<run_store>> open_store(const common_options& opts) {
  return run_store::open(resolve_home(opts.home));
}

} // namespace

int cmd_ops_list(const common_options& opts) {
  plugin_registry reg;
  load_plugins(reg, opts, opts.json);
  if (opts.json) {
    nlohmann::json out = nlohmann::json::array();
    for (auto& name : reg.names())
      out.push_back(op_json(*reg.find(name)));
    print_json(out);
    return exit_ok;
  }
  for (auto& name : reg.names()) {
    auto* op = reg.find(name);
    std::cout << std::left << std::setw(16) << name << std::setw(8) << op->version << summary(op->description)
              << "\n";
  }
  return exit_ok;
}

int cmd_ops_describe(const common_options& opts, const std::string& name) {
  plugin_registry reg;
  load_plugins(reg, opts, opts.json);
  auto* op = reg.find(name);
  if (op == nullptr) {
    std::cerr << "loom: error: unknown operator '" << name << "'";
    if (auto near = closest_name(name, reg.names()))
      std::cerr << " (did you mean '" << *near << "'?)";
    std::cerr << "\n";
    return exit_invalid;
  }
  if (opts.json)
    print_json(op_json(*op));
  else
    print_op(*op);
  return exit_ok;
}

int cmd_plugins_inspect(const common_options& opts, const std::string& path) {
  auto r = plugin_registry::inspect(path);
  if (!r) {
    if (opts.json)
      print_json(nlohmann::json{{"path", path}, {"error", error_message(r.error())}});
    else
      std::cerr << "loom: error: " << error_message(r.error()) << "\n";
    return exit_invalid;
  }
  auto& [info, ops] = *r;
  if (opts.json) {
    nlohmann::json j{{"path", info.path}, {"name", info.name}, {"version", info.version},
                     {"abi", std::to_string(info.abi_major) + "." + std::to_string(info.abi_minor)}};
    j["operators"] = nlohmann::json::array();
    for (auto& op : ops) {
      auto oj = op_json(op);
      oj["plugin"] = info.name;
      oj["plugin_path"] = info.path;
      j["operators"].push_back(oj);
    }
    print_json(j);
    return exit_ok;
  }
  std::cout << "plugin " << info.name << " " << info.version << " (ABI " << info.abi_major << "."
            << info.abi_minor << ")\n  " << info.path << "\n"
            << ops.size() << " operator" << (ops.size() == 1 ? "" : "s") << ":\n";
  for (auto& op : ops)
    std::cout << "  " << std::left << std::setw(16) << op.name << std::setw(8) << op.version
              << summary(op.description) << "\n";
  return exit_ok;
}

int cmd_plugins_list(const common_options& opts) {
  plugin_registry reg;
  load_plugins(reg, opts, opts.json);
  if (opts.json) {
    nlohmann::json out = nlohmann::json::array();
    for (auto& p : reg.plugins())
      out.push_back({{"name", p.name}, {"version", p.version}, {"path", p.path}, {"operators", p.operators}});
    print_json(out);
    return exit_ok;
  }
  for (auto& p : reg.plugins()) {
    std::cout << p.name << " " << p.version << "  " << p.path << "\n   ";
    for (auto& o : p.operators)
      std::cout << " " << o;
    std::cout << "\n";
  }
  return exit_ok;
}

int cmd_runs_list(const common_options& opts, size_t limit) {
  auto store = open_store(opts);
  if (!store) {
    std::cerr << "loom: error: " << error_message(store.error()) << "\n";
    return exit_failed;
  }
  auto runs = (*store)->list_runs(limit);
  if (!runs) {
    std::cerr << "loom: error: " << error_message(runs.error()) << "\n";
    return exit_failed;
  }
  if (opts.json) {
    nlohmann::json out = nlohmann::json::array();
    for (auto& r : *runs) {
      auto j = to_json(r);
      j.erase("graph_text");
      out.push_back(j);
    }
    print_json(out);
    return exit_ok;
  }
  std::cout << std::left << std::setw(6) << "ID" << std::setw(16) << "GRAPH" << std::setw(11) << "STATE"
            << std::setw(21) << "STARTED" << std::setw(10) << "DURATION" << "NODES\n";
  for (auto& r : *runs) {
    size_t ok = 0;
    for (auto& n : r.nodes)
      ok += n.state == "succeeded";
    std::cout << std::left << std::setw(6) << r.id << std::setw(16) << r.graph_name << std::setw(11) << r.state
              << std::setw(21) << fmt_time(r.started_ms) << std::setw(10) << fmt_duration(r.started_ms, r.ended_ms)
              << ok << "/" << r.nodes.size() << " succeeded\n";
  }
  return exit_ok;
}

int cmd_runs_show(const common_options& opts, const std::string& id, bool logs, const std::string& artifact,
                  const std::string& output) {
  auto store = open_store(opts);
  if (!store) {
    std::cerr << "loom: error: " << error_message(store.error()) << "\n";
    return exit_failed;
  }
  if (!artifact.empty()) {
    auto art = (*store)->get_artifact(id, artifact);
    if (!art) {
      std::cerr << "loom: error: " << error_message(art.error()) << "\n";
      return exit_invalid;
    }
    if (output.empty()) {
      std::cout << art->data;
    } else {
      std::ofstream out(output, std::ios::binary);
      out << art->data;
      if (!out) {
        std::cerr << "loom: error: cannot write " << output << "\n";
        return exit_failed;
      }
    }
    return exit_ok;
  }
  auto run = (*store)->get_run(id);
  if (!run) {
    std::cerr << "loom: error: " << error_message(run.error()) << "\n";
    return error_code(run.error()) == errc::not_found ? exit_invalid : exit_failed;
  }
  std::vector<log_record> log_lines;
  if (logs) {
    auto l = (*store)->logs(id);
    if (l)
      log_lines = std::move(*l);
  }
  if (opts.json) {
    auto j = to_json(*run);
    if (logs) {
      j["logs"] = nlohmann::json::array();
      for (auto& l : log_lines)
        j["logs"].push_back(to_json(l));
    }
    print_json(j);
    return exit_ok;
  }
  auto& r = *run;
  std::cout << "run " << r.id << "  " << r.state << "\n"
            << "  graph    " << r.graph_name << "  (" << r.graph_file << ")\n"
            << "  hash     " << r.graph_hash << "\n"
            << "  params   " << r.params.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n"
            << "  started  " << fmt_time(r.started_ms) << "   duration " << fmt_duration(r.started_ms, r.ended_ms)
            << "\n"
            << "  host     " << r.host << "  pid " << r.pid << "\n";
  if (!r.error.empty())
    std::cout << "  error    " << r.error << "\n";
  int wid = 6, wop = 4;
  for (auto& n : r.nodes) {
    wid = std::max(wid, static_cast<int>(n.id.size()) + 2);
    wop = std::max(wop, static_cast<int>(n.op.size()) + 2);
  }
  std::cout << "\n  " << std::left << std::setw(wid) << "NODE" << std::setw(wop) << "OP" << std::setw(11) << "STATE"
            << std::setw(9) << "ATTEMPTS" << std::setw(10) << "ROWS IN" << std::setw(10) << "ROWS OUT"
            << std::setw(10) << "REJECTED" << "TIME\n";
  for (auto& n : r.nodes) {
    std::cout << "  " << std::left << std::setw(wid) << n.id << std::setw(wop) << n.op << std::setw(11) << n.state
              << std::setw(9) << n.attempts << std::setw(10) << n.rows_in << std::setw(10) << n.rows_out
              << std::setw(10) << n.rows_rejected << fmt_duration(n.started_ms, n.ended_ms) << "\n";
    if (!n.error.empty() && n.state != "succeeded")
      std::cout << "      " << n.error << "\n";
    for (auto& [k, v] : n.metrics)
      std::cout << "      metric " << k << " = " << v << "\n";
  }
  if (!r.artifacts.empty()) {
    std::cout << "\n  artifacts (loom runs show " << r.id << " --artifact NAME):\n";
    for (auto& a : r.artifacts)
      std::cout << "    " << a << "\n";
  }
  if (logs) {
    std::cout << "\n  log:\n";
    for (auto& l : log_lines)
      std::cout << "    " << fmt_time(l.time_ms) << " " << std::setw(6) << l.level << " "
                << (l.node.empty() ? "" : l.node + ": ") << l.message << "\n";
  }
  return exit_ok;
}

} // namespace loom::cli
