// Graph validation against an operator catalog: operators, ports, types,
// parameters, duplicate ids and cycles. Every error found is reported.
#include "loom/runtime/graph.hpp"

#include "graph_internal.hpp"

#include <algorithm>
#include <deque>
#include <set>
#include <unordered_map>

namespace loom {

namespace {

using json = nlohmann::ordered_json;

std::string quote(const std::string& s) {
  return "'" + s + "'";
}

template <class Vec>
std::vector<std::string> names_of(const Vec& items) {
  std::vector<std::string> out;
  for (auto& i : items)
    out.push_back(i.name);
  return out;
}

std::string join(const std::vector<std::string>& items, const std::string& sep = ", ") {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i)
    out += (i ? sep : "") + items[i];
  return out;
}

bool type_matches(loom_param_type type, const json& v) {
  switch (type) {
    case LOOM_PARAM_STRING: return v.is_string();
    case LOOM_PARAM_INT: return v.is_number_integer();
    case LOOM_PARAM_FLOAT: return v.is_number();
    case LOOM_PARAM_BOOL: return v.is_boolean();
    case LOOM_PARAM_LIST: return v.is_array();
    case LOOM_PARAM_MAP: return v.is_object();
  }
  return false;
}

class validator {
public:
  validator(graph_spec& g, const operator_catalog& catalog, diagnostics& out)
      : g_(g), catalog_(catalog), out_(out) {}

  bool run() {
    index_nodes();
    ops_.assign(g_.nodes.size(), nullptr);
    for (size_t i = 0; i < g_.nodes.size(); ++i)
      check_op(i);
    for (size_t i = 0; i < g_.nodes.size(); ++i)
      check_inputs(i);
    for (size_t i = 0; i < g_.nodes.size(); ++i)
      check_params(i);
    check_cycles();
    return ok_;
  }

private:
  void error(source_pos pos, std::string message) {
    ok_ = false;
    out_.push_back(diagnostic{g_.file, pos, "error", std::move(message)});
  }

  // Suggestions cost an edit distance per candidate; only the first ones get one.
  std::string did_you_mean(const std::string& word, const std::vector<std::string>& names) {
    if (suggestions_left_ == 0)
      return {};
    --suggestions_left_;
    auto best = closest_name(word, names);
    return best ? " (did you mean " + quote(*best) + "?)" : std::string();
  }

  std::string describe(size_t i) const {
    auto& n = g_.nodes[i];
    return "node " + quote(n.id) + " (" + n.op + ")";
  }

  void index_nodes() {
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      auto& n = g_.nodes[i];
      auto [it, inserted] = index_.emplace(n.id, i);
      if (!inserted)
        error(n.pos, "duplicate node id " + quote(n.id) + " (first defined at line " +
                         std::to_string(g_.nodes[it->second].pos.line) + ")");
    }
  }

  const std::vector<std::string>& op_names() {
    if (op_names_.empty())
      op_names_ = catalog_.names();
    return op_names_;
  }

  const std::vector<std::string>& node_ids() {
    if (ids_.empty())
      for (auto& n : g_.nodes)
        ids_.push_back(n.id);
    return ids_;
  }

  void check_op(size_t i) {
    auto& n = g_.nodes[i];
    if (n.op.empty())
      return; // the parser reported the missing op
    ops_[i] = catalog_.find(n.op);
    if (!ops_[i])
      error(n.op_pos, "unknown operator " + quote(n.op) + did_you_mean(n.op, op_names()));
  }

  void check_inputs(size_t i) {
    auto& n = g_.nodes[i];
    const operator_info* op = ops_[i];
    std::set<std::string> bound;
    bool unresolved_port = false;
    for (auto& b : n.inputs) {
      // the consuming port
      const port_info* in = nullptr;
      if (op) {
        if (b.port.empty()) {
          if (op->inputs.size() == 1) {
            b.port = op->inputs[0].name;
          } else if (op->inputs.empty()) {
            error(b.pos, describe(i) + " takes no inputs");
          } else {
            unresolved_port = true;
            auto names = names_of(op->inputs);
            error(b.pos, describe(i) + " has " + std::to_string(names.size()) + " inputs (" + join(names) +
                             "); bind each by name, e.g. inputs: {" + names[0] + ": " + b.node + "}");
          }
        }
        if (!b.port.empty()) {
          in = op->find_input(b.port);
          if (!in) {
            unresolved_port = true;
            error(b.pos, describe(i) + " has no input " + quote(b.port) +
                             did_you_mean(b.port, names_of(op->inputs)) +
                             (op->inputs.empty() ? "; it takes no inputs"
                                                 : "; its inputs are: " + join(names_of(op->inputs))));
          } else if (!bound.insert(b.port).second) {
            error(b.pos, "input " + quote(b.port) + " of " + describe(i) + " is bound more than once");
          }
        }
      }

      // the producing node and port
      auto src = index_.find(b.node);
      if (src == index_.end()) {
        error(b.pos, "node " + quote(n.id) + " reads from unknown node " + quote(b.node) +
                         did_you_mean(b.node, node_ids()));
        continue;
      }
      const operator_info* src_op = ops_[src->second];
      if (!src_op)
        continue;
      const port_info* out = nullptr;
      auto outputs = names_of(src_op->outputs);
      if (b.node_port.empty()) {
        if (outputs.size() == 1)
          b.node_port = outputs[0];
        else if (outputs.empty())
          error(b.pos, describe(src->second) + " has no outputs");
        else
          error(b.pos, describe(src->second) + " has several outputs (" + join(outputs) +
                           "); name one, e.g. " + b.node + "." + outputs[0]);
      } else {
        out = src_op->find_output(b.node_port);
        if (!out)
          error(b.pos, describe(src->second) + " has no output " + quote(b.node_port) +
                           did_you_mean(b.node_port, outputs) +
                           (outputs.empty() ? "; it has no outputs" : "; its outputs are: " + join(outputs)));
      }
      if (!b.node_port.empty())
        out = src_op->find_output(b.node_port);

      if (in && out && in->type != LOOM_MSG_ANY && out->type != LOOM_MSG_ANY && in->type != out->type)
        error(b.pos, "port type mismatch: " + b.node + "." + b.node_port + " is " + to_string(out->type) +
                         " but " + n.id + "." + b.port + " expects " + to_string(in->type));
    }
    if (op && !unresolved_port)
      for (auto& port : op->inputs)
        if (!bound.count(port.name) && !port.optional)
          error(n.pos, "input " + quote(port.name) + " of " + describe(i) + " is not connected");
  }

  void check_params(size_t i) {
    auto& n = g_.nodes[i];
    const operator_info* op = ops_[i];
    if (!op)
      return;
    if (!n.with.is_object()) {
      error(n.pos, "'with' of node " + quote(n.id) + " must be a mapping");
      return;
    }
    auto key_pos = [&](const std::string& key) {
      auto it = n.with_pos.find(key);
      return it == n.with_pos.end() ? n.pos : it->second;
    };
    for (auto& [key, value] : n.with.items()) {
      const param_info* p = op->find_param(key);
      if (!p) {
        auto names = names_of(op->params);
        auto hint = did_you_mean(key, names);
        if (hint.empty())
          hint = names.empty() ? "; it takes no parameters" : "; its parameters are: " + join(names);
        error(key_pos(key), "unknown parameter " + quote(key) + " for " + describe(i) + hint);
      } else if (!type_matches(p->type, value)) {
        error(key_pos(key), "parameter " + quote(key) + " of " + describe(i) + " expects " +
                                to_string(p->type) + ", got " + json_type_name(value));
      }
    }
    for (auto& p : op->params) {
      if (n.with.contains(p.name))
        continue;
      if (p.required) {
        error(n.pos, describe(i) + " is missing required parameter " + quote(p.name));
      } else if (p.default_json) {
        json def = json::parse(*p.default_json, nullptr, false);
        if (def.is_discarded())
          out_.push_back(diagnostic{g_.file, n.pos, "warning",
                                    "operator " + op->name + " declares an invalid default for " +
                                        quote(p.name) + ": " + *p.default_json});
        else
          n.with[p.name] = std::move(def);
      }
    }
  }

  // Tarjan's strongly connected components (iterative: a long chain must not
  // overflow the stack); one error per component that holds a cycle.
  void check_cycles() {
    const size_t count = g_.nodes.size();
    std::vector<std::vector<size_t>> consumers(count);
    for (size_t i = 0; i < count; ++i)
      for (auto& b : g_.nodes[i].inputs) {
        auto it = index_.find(b.node);
        if (it != index_.end())
          consumers[it->second].push_back(i);
      }
    const size_t none = static_cast<size_t>(-1);
    std::vector<size_t> index(count, none), low(count, 0), component(count, none);
    std::vector<bool> on_stack(count, false);
    std::vector<size_t> stack;
    std::vector<std::pair<size_t, size_t>> calls; // node, next edge
    std::vector<std::vector<size_t>> cycles;      // components with a cycle
    size_t counter = 0, components = 0;
    for (size_t s = 0; s < count; ++s) {
      if (index[s] != none)
        continue;
      auto enter = [&](size_t v) {
        index[v] = low[v] = counter++;
        stack.push_back(v);
        on_stack[v] = true;
        calls.emplace_back(v, 0);
      };
      enter(s);
      while (!calls.empty()) {
        size_t v = calls.back().first;
        size_t e = calls.back().second++;
        if (e < consumers[v].size()) {
          size_t w = consumers[v][e];
          if (index[w] == none)
            enter(w);
          else if (on_stack[w])
            low[v] = std::min(low[v], index[w]);
          continue;
        }
        calls.pop_back();
        if (!calls.empty())
          low[calls.back().first] = std::min(low[calls.back().first], low[v]);
        if (low[v] != index[v])
          continue;
        std::vector<size_t> members;
        size_t w;
        do {
          w = stack.back();
          stack.pop_back();
          on_stack[w] = false;
          component[w] = components;
          members.push_back(w);
        } while (w != v);
        ++components;
        bool self_loop = std::find(consumers[v].begin(), consumers[v].end(), v) != consumers[v].end();
        if (members.size() > 1 || self_loop)
          cycles.push_back(std::move(members));
      }
    }
    std::vector<std::pair<size_t, std::vector<size_t>>> reports;
    for (auto& members : cycles) {
      size_t start = *std::min_element(members.begin(), members.end());
      reports.emplace_back(start, shortest_cycle(start, consumers, component));
    }
    std::sort(reports.begin(), reports.end());
    for (auto& [start, path] : reports) {
      std::vector<std::string> ids;
      for (auto v : path)
        ids.push_back(g_.nodes[v].id);
      ids.push_back(g_.nodes[start].id);
      error(g_.nodes[start].pos, "cycle: " + join(ids, " -> "));
    }
  }

  // Breadth-first search from start back to start inside its component.
  static std::vector<size_t> shortest_cycle(size_t start, const std::vector<std::vector<size_t>>& consumers,
                                            const std::vector<size_t>& component) {
    const size_t none = static_cast<size_t>(-1);
    std::unordered_map<size_t, size_t> parent{{start, none}};
    std::deque<size_t> queue{start};
    size_t last = start;
    while (!queue.empty()) {
      size_t v = queue.front();
      queue.pop_front();
      bool closed = false;
      for (auto w : consumers[v]) {
        if (w == start) {
          last = v;
          closed = true;
          break;
        }
        if (component[w] == component[start] && parent.emplace(w, v).second)
          queue.push_back(w);
      }
      if (closed)
        break;
    }
    std::vector<size_t> path;
    for (size_t v = last; v != none; v = parent[v])
      path.push_back(v);
    std::reverse(path.begin(), path.end());
    return path;
  }

  graph_spec& g_;
  const operator_catalog& catalog_;
  diagnostics& out_;
  bool ok_ = true;
  size_t suggestions_left_ = 100;
  std::unordered_map<std::string, size_t> index_; // id -> first node with it
  std::vector<const operator_info*> ops_;
  std::vector<std::string> ids_;
  std::vector<std::string> op_names_;
};

} // namespace

bool validate_graph(graph_spec& graph, const operator_catalog& catalog, diagnostics& out) {
  try {
    return validator(graph, catalog, out).run();
  } catch (const std::exception& e) {
    out.push_back(diagnostic{graph.file, {}, "error", std::string("internal error while validating: ") + e.what()});
  } catch (...) {
    out.push_back(diagnostic{graph.file, {}, "error", "internal error while validating"});
  }
  return false;
}

} // namespace loom
