// Graph files: YAML text -> graph_spec.
//
// Hostile input is refused in three steps: the byte size; a first event-only pass
// over the text that counts YAML nodes and nesting before yaml-cpp builds anything
// (so the node tree it builds is bounded); and a budget of nodes and bytes charged
// while walking the tree, where aliases are counted each time they are expanded.
#include "loom/runtime/graph.hpp"

#include "graph_internal.hpp"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

namespace loom {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

constexpr const char* substituted = "after ${params} substitution";

/// Thrown inside the parser when a limit is hit; ends the parse.
struct limit_error {
  source_pos pos;
  std::string message;
};

source_pos pos_of(const YAML::Mark& m) {
  if (m.is_null() || m.line < 0)
    return {};
  return {m.line + 1, m.column + 1};
}

source_pos pos_of(const YAML::Node& n) {
  return pos_of(n.Mark());
}

std::string quote(const std::string& s) {
  return "'" + s + "'";
}

std::string did_you_mean(const std::optional<std::string>& name) {
  return name ? " (did you mean " + quote(*name) + "?)" : std::string();
}

// ---- pass 1: count events before yaml-cpp builds a tree ---------------------------

/// Aliases make yaml-cpp share nodes, so a small file can stand for a huge tree.
size_t expanded_byte_limit(const parse_limits& limits) {
  return limits.max_bytes > std::numeric_limits<size_t>::max() / 4 ? std::numeric_limits<size_t>::max()
                                                                   : limits.max_bytes * 4;
}

/// Counts the nodes, bytes and nesting of the text as written and as aliases expand
/// it, and refuses it as soon as a limit is passed.
class event_counter : public YAML::EventHandler {
public:
  explicit event_counter(const parse_limits& limits)
      : limits_(limits), max_bytes_(expanded_byte_limit(limits)) {}

  size_t documents = 0;
  source_pos second_document;

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents == 2)
      second_document = pos_of(mark);
    anchors_.clear(); // anchor ids are per document
    open_.clear();
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { leaf(mark, anchor, 0); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string& value) override {
    leaf(mark, anchor, value.size());
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    count_event(mark);
    if (anchor >= anchors_.size() || !anchors_[anchor])
      throw limit_error{pos_of(mark), "an alias may not refer to a node that contains it"};
    const cost& c = *anchors_[anchor];
    if (static_cast<int>(open_.size()) + c.height > limits_.max_depth)
      throw depth_error(mark);
    add(mark, c, true);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    start(mark, anchor);
  }
  void OnSequenceEnd() override { end(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    start(mark, anchor);
  }
  void OnMapEnd() override { end(); }

private:
  struct cost {
    size_t nodes = 0;
    size_t bytes = 0;
    int height = 0; ///< nesting of mappings/sequences inside, itself included
  };
  struct frame {
    cost total;
    YAML::anchor_t anchor;
  };

  limit_error depth_error(const YAML::Mark& mark) const {
    return {pos_of(mark), "nesting deeper than " + std::to_string(limits_.max_depth) + " levels"};
  }

  void count_event(const YAML::Mark& mark) {
    if (++events_ > limits_.max_nodes)
      throw limit_error{pos_of(mark), "too many YAML nodes (more than " +
                                          std::to_string(limits_.max_nodes) + ")"};
  }

  // Adds a node (and what it expands to) to the totals and to its parent.
  void add(const YAML::Mark& mark, const cost& c, bool alias) {
    nodes_ += c.nodes;
    bytes_ += c.bytes;
    if (nodes_ > limits_.max_nodes)
      throw limit_error{pos_of(mark), alias ? std::string("too many YAML nodes (alias expansion?)")
                                            : "too many YAML nodes (more than " +
                                                  std::to_string(limits_.max_nodes) + ")"};
    if (bytes_ > max_bytes_)
      throw limit_error{pos_of(mark), "the graph expands to more than " + std::to_string(max_bytes_) +
                                          " bytes (alias expansion?)"};
    if (!open_.empty()) {
      auto& parent = open_.back().total;
      parent.nodes += c.nodes;
      parent.bytes += c.bytes;
      parent.height = std::max(parent.height, c.height + 1);
    }
  }

  void remember(YAML::anchor_t anchor, const cost& c) {
    if (anchor == YAML::NullAnchor)
      return;
    if (anchor >= anchors_.size())
      anchors_.resize(anchor + 1);
    anchors_[anchor] = c;
  }

  void leaf(const YAML::Mark& mark, YAML::anchor_t anchor, size_t bytes) {
    count_event(mark);
    cost c{1, bytes, 0};
    remember(anchor, c);
    add(mark, c, false);
  }

  void start(const YAML::Mark& mark, YAML::anchor_t anchor) {
    count_event(mark);
    if (static_cast<int>(open_.size()) + 1 > limits_.max_depth)
      throw depth_error(mark);
    if (anchor != YAML::NullAnchor && anchor >= anchors_.size())
      anchors_.resize(anchor + 1); // known but not complete: an alias to it is recursive
    add(mark, cost{}, false); // the checks only; the frame below counts the node
    nodes_ += 1;
    open_.push_back(frame{cost{1, 0, 1}, anchor});
  }

  void end() {
    if (open_.empty())
      return;
    frame f = open_.back();
    open_.pop_back();
    remember(f.anchor, f.total);
    if (!open_.empty()) {
      auto& parent = open_.back().total;
      parent.nodes += f.total.nodes;
      parent.bytes += f.total.bytes;
      parent.height = std::max(parent.height, f.total.height + 1);
    }
  }

  const parse_limits& limits_;
  size_t max_bytes_;
  size_t events_ = 0; ///< nodes as written
  size_t nodes_ = 0;  ///< nodes with aliases expanded
  size_t bytes_ = 0;  ///< scalar bytes with aliases expanded
  std::vector<std::optional<cost>> anchors_;
  std::vector<frame> open_;
};

// ---- scalars -----------------------------------------------------------------------

bool all_digits(std::string_view s, int base) {
  if (s.empty())
    return false;
  for (char c : s) {
    bool ok = base == 16 ? std::isxdigit(static_cast<unsigned char>(c)) != 0
                         : (c >= '0' && c < '0' + base);
    if (!ok)
      return false;
  }
  return true;
}

std::optional<json> parse_int(std::string_view s) {
  int base = 10;
  bool negative = false;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    base = s[1] == 'x' ? 16 : 8;
    s.remove_prefix(2);
  } else if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (!all_digits(s, base))
    return std::nullopt;
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value, base);
  if (ec == std::errc() && ptr == s.data() + s.size()) {
    if (!negative)
      return value <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                 ? json(static_cast<int64_t>(value))
                 : json(value);
    if (value <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1)
      return json(static_cast<int64_t>(0 - value));
  }
  if (base != 10)
    return std::nullopt;
  double d = 0; // too large for 64 bits: keep it as a float
  std::from_chars(s.data(), s.data() + s.size(), d);
  return json(negative ? -d : d);
}

std::optional<json> parse_float(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == ".inf" || s == ".Inf" || s == ".INF")
    return json(negative ? -HUGE_VAL : HUGE_VAL);
  if (s == ".nan" || s == ".NaN" || s == ".NAN")
    return negative ? std::nullopt : std::optional<json>(json(std::nan("")));
  // [0-9]+(\.[0-9]*)?|\.[0-9]+ then an optional exponent
  size_t i = 0, int_digits = 0, frac_digits = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
    ++i, ++int_digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
      ++i, ++frac_digits;
  }
  if (int_digits + frac_digits == 0)
    return std::nullopt;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+'))
      ++i;
    if (i == s.size())
      return std::nullopt;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
      ++i;
  }
  if (i != s.size())
    return std::nullopt;
  double d = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ptr != s.data() + s.size() && ec != std::errc::result_out_of_range)
    return std::nullopt;
  return json(negative ? -d : d);
}

/// A scalar as YAML 1.2's core schema reads it: quoted -> string; plain -> null,
/// bool, int, float or string.
json resolve_scalar(const std::string& value, const std::string& tag) {
  if (tag == "!" || tag == "tag:yaml.org,2002:str")
    return value;
  if (value.empty() || value == "~" || value == "null" || value == "Null" || value == "NULL")
    return nullptr;
  if (value == "true" || value == "True" || value == "TRUE")
    return true;
  if (value == "false" || value == "False" || value == "FALSE")
    return false;
  if (auto i = parse_int(value))
    return *i;
  if (auto f = parse_float(value))
    return *f;
  return value;
}

bool valid_id(const std::string& id) {
  if (id.empty() || !(std::isalpha(static_cast<unsigned char>(id[0])) || id[0] == '_'))
    return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'))
      return false;
  return true;
}

std::string short_text(const std::string& s) {
  return s.size() <= 60 ? s : s.substr(0, 57) + "...";
}

// ---- the walk ----------------------------------------------------------------------

class graph_parser {
public:
  graph_parser(graph_spec& graph, diagnostics& out, const parse_limits& limits)
      : g_(graph), out_(out), limits_(limits),
        max_bytes_(expanded_byte_limit(limits)) {}

  /// Fills the graph from the root node; false when the root is not a graph at all.
  bool parse(const YAML::Node& root,
             const std::vector<std::pair<std::string, std::string>>& overrides);

private:
  void error(source_pos pos, std::string message) {
    out_.push_back(diagnostic{g_.file, pos, "error", std::move(message)});
  }

  // Every YAML node looked at goes through here once per visit.
  // `depth` is the node's nesting level (the root is 1); only mappings and
  // sequences are held to max_depth.
  void visit(const YAML::Node& n, int depth) {
    if (depth > limits_.max_depth && (n.IsMap() || n.IsSequence()))
      throw limit_error{pos_of(n), "nesting deeper than " + std::to_string(limits_.max_depth) +
                                       " levels"};
    if (++nodes_ > limits_.max_nodes)
      throw limit_error{pos_of(n), "too many YAML nodes (alias expansion?)"};
    if (n.IsScalar())
      charge_bytes(n.Scalar().size(), pos_of(n));
  }

  void charge_bytes(size_t size, source_pos pos, const char* why = "alias expansion?") {
    bytes_ += size;
    if (bytes_ > max_bytes_)
      throw limit_error{pos, "the graph expands to more than " + std::to_string(max_bytes_) + " bytes (" +
                                 why + ")"};
  }

  void charge_nodes(size_t count, source_pos pos, const char* why = "alias expansion?") {
    nodes_ += count;
    if (nodes_ > limits_.max_nodes)
      throw limit_error{pos, std::string("too many YAML nodes (") + why + ")"};
  }

  // Suggestions cost an edit distance per candidate; only the first ones get one.
  std::optional<std::string> suggest_param(const std::string& word) {
    if (suggestions_left_ == 0)
      return std::nullopt;
    --suggestions_left_;
    if (param_names_.size() != g_.params.size()) {
      param_names_.clear();
      for (auto& [k, _] : g_.params.items())
        param_names_.push_back(k);
    }
    return closest_name(word, param_names_);
  }

  // Calls fn(key, key_node, value) for each entry of a mapping; reports keys that
  // are not strings and duplicate keys.
  template <class F>
  void for_each_entry(const YAML::Node& map, int depth, F&& fn) {
    std::unordered_set<std::string> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      const YAML::Node key = it->first;
      const YAML::Node value = it->second;
      visit(key, depth + 1);
      if (!key.IsScalar()) {
        error(pos_of(key), "mapping keys must be strings");
        continue;
      }
      if (!seen.insert(key.Scalar()).second) {
        error(pos_of(key), "duplicate key " + quote(key.Scalar()));
        continue;
      }
      fn(key.Scalar(), key, value);
    }
  }

  std::optional<std::string> string_field(const YAML::Node& n, int depth, const std::string& what) {
    visit(n, depth);
    if (!n.IsScalar()) {
      error(pos_of(n), what + " must be a string");
      return std::nullopt;
    }
    return n.Scalar();
  }

  json to_json(const YAML::Node& n, int depth, bool substitute);
  json substitute(const std::string& text, source_pos pos);
  std::string interpolate(const std::string& text, source_pos pos);
  json override_value(const std::string& text);
  std::pair<size_t, size_t> param_cost(const std::string& name);

  void parse_params(const YAML::Node& n);
  void parse_plugins(const YAML::Node& n);
  void parse_nodes(const YAML::Node& n);
  void parse_node(const YAML::Node& n, int depth);
  void parse_inputs(const YAML::Node& n, int depth, node_spec& node);
  bool parse_ref(const std::string& text, source_pos pos, input_binding& b);
  void parse_with(const YAML::Node& n, int depth, node_spec& node);
  void parse_resources(const YAML::Node& n, int depth, node_spec& node);
  void parse_placement(const YAML::Node& n, int depth, node_spec& node);
  void parse_retries(const YAML::Node& n, int depth, node_spec& node);
  std::optional<double> duration_field(const YAML::Node& n, int depth, const std::string& what);
  json scalar_value(const YAML::Node& n, int depth);

  graph_spec& g_;
  diagnostics& out_;
  const parse_limits& limits_;
  size_t max_bytes_;
  size_t nodes_ = 0;
  size_t bytes_ = 0;
  size_t suggestions_left_ = 100;
  std::vector<std::string> param_names_;
  std::unordered_map<std::string, std::pair<size_t, size_t>> param_costs_;
  std::unordered_map<std::string, source_pos> ids_; // id -> position of the first node
};

json graph_parser::to_json(const YAML::Node& n, int depth, bool subst) {
  visit(n, depth);
  switch (n.Type()) {
    case YAML::NodeType::Scalar: {
      json v = resolve_scalar(n.Scalar(), n.Tag());
      if (subst && v.is_string())
        return substitute(v.get_ref<const std::string&>(), pos_of(n));
      return v;
    }
    case YAML::NodeType::Sequence: {
      json arr = json::array();
      for (auto it = n.begin(); it != n.end(); ++it)
        arr.push_back(to_json(*it, depth + 1, subst));
      return arr;
    }
    case YAML::NodeType::Map: {
      json obj = json::object();
      for_each_entry(n, depth, [&](const std::string& key, const YAML::Node&, const YAML::Node& value) {
        obj[key] = to_json(value, depth + 1, subst);
      });
      return obj;
    }
    default:
      return nullptr;
  }
}

// Nodes and bytes that copying a parameter's value costs.
std::pair<size_t, size_t> graph_parser::param_cost(const std::string& name) {
  auto it = param_costs_.find(name);
  if (it != param_costs_.end())
    return it->second;
  size_t nodes = 0, bytes = 0;
  std::vector<const json*> todo{&g_.params[name]};
  while (!todo.empty()) {
    auto v = todo.back();
    todo.pop_back();
    ++nodes;
    if (v->is_string())
      bytes += v->get_ref<const std::string&>().size();
    else if (v->is_object())
      for (auto& [k, child] : v->items()) {
        bytes += k.size();
        todo.push_back(&child);
      }
    else if (v->is_array())
      for (auto& child : *v)
        todo.push_back(&child);
  }
  return param_costs_[name] = {nodes, bytes};
}

json graph_parser::substitute(const std::string& text, source_pos pos) {
  static const std::string open = "${params.";
  // the whole scalar is one reference: keep the parameter's type
  if (text.size() > open.size() + 1 && text.compare(0, open.size(), open) == 0 &&
      text.find('}') == text.size() - 1) {
    auto name = text.substr(open.size(), text.size() - open.size() - 1);
    if (g_.params.contains(name)) {
      auto [nodes, bytes] = param_cost(name);
      charge_nodes(nodes, pos, substituted);
      charge_bytes(bytes, pos, substituted);
      return g_.params[name];
    }
  }
  return interpolate(text, pos);
}

std::string graph_parser::interpolate(const std::string& text, source_pos pos) {
  static const std::string open = "${params.";
  std::string result;
  size_t i = 0;
  while (true) {
    auto start = text.find(open, i);
    if (start == std::string::npos)
      break;
    auto close = text.find('}', start + open.size());
    if (close == std::string::npos)
      break;
    auto name = text.substr(start + open.size(), close - start - open.size());
    result.append(text, i, start - i);
    i = close + 1;
    if (!name.empty() && g_.params.contains(name)) {
      const json& v = g_.params[name];
      std::string piece = v.is_string() ? v.get<std::string>()
                                        : v.dump(-1, ' ', false, json::error_handler_t::replace);
      charge_bytes(piece.size(), pos, substituted);
      result += piece;
      continue;
    }
    if (!name.empty())
      error(pos, "unresolved ${params." + name + "}: the graph has no parameter " + quote(name) +
                     did_you_mean(suggest_param(name)));
    result.append(text, start, close + 1 - start); // left as written
  }
  result.append(text, i, std::string::npos);
  return result;
}

// A `--set k=v` value: v read as a YAML scalar (so "9" is an int, "true" a bool,
// "abc" a string); a flow list or mapping ("[a, b]") is read as one too.
json graph_parser::override_value(const std::string& text) {
  if (text.empty())
    return std::string();
  try {
    event_counter counter(limits_);
    std::istringstream in(text);
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(counter)) {
    }
    YAML::Node n = YAML::Load(text);
    if (n.IsScalar())
      return resolve_scalar(n.Scalar(), n.Tag());
    if (n.IsNull()) {
      if (text == "~" || text == "null" || text == "Null" || text == "NULL")
        return nullptr;
      return text; // e.g. a comment
    }
    if (text[0] != '[' && text[0] != '{')
      return text; // "a: b" stays a string
    auto saved = out_.size();
    json v = to_json(n, 1, false);
    out_.resize(saved); // positions inside a --set value mean nothing in the file
    return v;
  } catch (const limit_error&) {
    throw limit_error{{}, "--set value too large"};
  } catch (...) {
    return text;
  }
}

bool graph_parser::parse(const YAML::Node& root,
                         const std::vector<std::pair<std::string, std::string>>& overrides) {
  visit(root, 1);
  if (!root.IsMap()) {
    error(pos_of(root), "a graph file must be a mapping with 'name' and 'nodes'");
    return false;
  }
  std::optional<YAML::Node> name, params, plugins, nodes;
  for_each_entry(root, 1, [&](const std::string& key, const YAML::Node& key_node, const YAML::Node& value) {
    if (key == "name")
      name.emplace(value);
    else if (key == "params")
      params.emplace(value);
    else if (key == "plugins")
      plugins.emplace(value);
    else if (key == "nodes")
      nodes.emplace(value);
    else
      error(pos_of(key_node), "unknown key " + quote(key) + " (expected name, params, plugins, nodes)");
  });

  if (!name) {
    error(pos_of(root), "missing required key 'name'");
  } else if (auto s = string_field(*name, 2, "'name'")) {
    if (s->empty())
      error(pos_of(*name), "'name' must not be empty");
    g_.name = *s;
  }

  if (params)
    parse_params(*params);
  for (auto& [key, value] : overrides) {
    if (!g_.params.contains(key)) {
      error({}, "--set " + key + ": the graph declares no parameter " + quote(key) +
                    did_you_mean(suggest_param(key)));
      continue;
    }
    g_.params[key] = override_value(value);
    param_costs_.erase(key);
  }

  if (plugins)
    parse_plugins(*plugins);

  if (!nodes)
    error(pos_of(root), "missing required key 'nodes'");
  else
    parse_nodes(*nodes);
  return true;
}

void graph_parser::parse_params(const YAML::Node& n) {
  visit(n, 2);
  if (n.IsNull())
    return;
  if (!n.IsMap()) {
    error(pos_of(n), "'params' must be a mapping of parameter names to values");
    return;
  }
  for_each_entry(n, 2, [&](const std::string& key, const YAML::Node&, const YAML::Node& value) {
    g_.params[key] = to_json(value, 3, false);
  });
}

void graph_parser::parse_plugins(const YAML::Node& n) {
  visit(n, 2);
  if (n.IsNull())
    return;
  if (!n.IsSequence()) {
    error(pos_of(n), "'plugins' must be a list of plugin library paths");
    return;
  }
  for (auto it = n.begin(); it != n.end(); ++it) {
    auto path = string_field(*it, 3, "a plugin path");
    if (!path)
      continue;
    auto text = interpolate(*path, pos_of(*it));
    if (text.empty()) {
      error(pos_of(*it), "a plugin path must not be empty");
      continue;
    }
    fs::path p(text);
    if (p.is_relative())
      p = fs::path(g_.base_dir) / p;
    std::error_code ec;
    auto abs = fs::absolute(p, ec);
    g_.plugins.push_back((ec ? p : abs).lexically_normal().string());
  }
}

void graph_parser::parse_nodes(const YAML::Node& n) {
  visit(n, 2);
  if (!n.IsSequence() || n.size() == 0) {
    error(pos_of(n), "'nodes' must be a non-empty list of nodes");
    return;
  }
  for (auto it = n.begin(); it != n.end(); ++it)
    parse_node(*it, 3);
}

void graph_parser::parse_node(const YAML::Node& n, int depth) {
  visit(n, depth);
  if (!n.IsMap()) {
    error(pos_of(n), "each node must be a mapping with 'id' and 'op'");
    return;
  }
  node_spec node;
  node.pos = pos_of(n);
  bool has_id = false, has_op = false;
  source_pos id_pos;
  for_each_entry(n, depth, [&](const std::string& key, const YAML::Node& key_node, const YAML::Node& value) {
    const int d = depth + 1;
    if (key == "id") {
      if (auto s = string_field(value, d, "'id'")) {
        has_id = true;
        node.id = *s;
        id_pos = pos_of(value);
        if (!valid_id(*s))
          error(id_pos, "invalid node id " + quote(short_text(*s)) +
                            " (use letters, digits, '_' and '-', starting with a letter or '_')");
      }
    } else if (key == "op") {
      if (auto s = string_field(value, d, "'op'")) {
        has_op = true;
        node.op = *s;
        node.op_pos = pos_of(value);
        if (s->empty())
          error(node.op_pos, "'op' must not be empty");
      }
    } else if (key == "inputs") {
      parse_inputs(value, d, node);
    } else if (key == "with") {
      parse_with(value, d, node);
    } else if (key == "resources") {
      parse_resources(value, d, node);
    } else if (key == "placement") {
      parse_placement(value, d, node);
    } else if (key == "retries") {
      parse_retries(value, d, node);
    } else if (key == "timeout") {
      if (auto t = duration_field(value, d, "timeout")) {
        if (*t <= 0)
          error(pos_of(value), "'timeout' must be positive");
        else
          node.timeout_s = *t;
      }
    } else {
      error(pos_of(key_node), "unknown key " + quote(key) +
                                  " (expected id, op, inputs, with, resources, placement, retries, timeout)");
    }
  });
  if (!has_id) {
    error(node.pos, "node is missing required key 'id'");
    return; // nothing can refer to it
  }
  if (!has_op)
    error(node.pos, "node " + quote(node.id) + " is missing required key 'op'");
  auto [first, inserted] = ids_.emplace(node.id, node.pos);
  if (!inserted) {
    error(id_pos, "duplicate node id " + quote(node.id) + " (first defined at line " +
                      std::to_string(first->second.line) + ")");
    return; // keep the first
  }
  g_.nodes.push_back(std::move(node));
}

bool graph_parser::parse_ref(const std::string& text, source_pos pos, input_binding& b) {
  auto dot = text.find('.');
  b.node = text.substr(0, dot);
  b.node_port = dot == std::string::npos ? std::string() : text.substr(dot + 1);
  b.pos = pos;
  if (b.node.empty() || (dot != std::string::npos && b.node_port.empty())) {
    error(pos, "invalid input " + quote(short_text(text)) + " (expected 'node' or 'node.port')");
    return false;
  }
  return true;
}

void graph_parser::parse_inputs(const YAML::Node& n, int depth, node_spec& node) {
  visit(n, depth);
  if (n.IsNull())
    return;
  if (n.IsScalar()) {
    input_binding b;
    if (parse_ref(n.Scalar(), pos_of(n), b))
      node.inputs.push_back(std::move(b));
    return;
  }
  if (!n.IsMap()) {
    error(pos_of(n), "'inputs' must be a node name or a mapping of input port to node");
    return;
  }
  for_each_entry(n, depth, [&](const std::string& port, const YAML::Node&, const YAML::Node& value) {
    visit(value, depth + 1);
    if (!value.IsScalar()) {
      error(pos_of(value), "input " + quote(port) + " must name a node, as 'node' or 'node.port'");
      return;
    }
    input_binding b;
    b.port = port;
    if (parse_ref(value.Scalar(), pos_of(value), b))
      node.inputs.push_back(std::move(b));
  });
}

void graph_parser::parse_with(const YAML::Node& n, int depth, node_spec& node) {
  visit(n, depth);
  if (n.IsNull())
    return;
  if (!n.IsMap()) {
    error(pos_of(n), "'with' must be a mapping of parameter names to values");
    return;
  }
  for_each_entry(n, depth, [&](const std::string& key, const YAML::Node& key_node, const YAML::Node& value) {
    node.with_pos[key] = pos_of(key_node);
    node.with[key] = to_json(value, depth + 1, true);
  });
}

json graph_parser::scalar_value(const YAML::Node& n, int depth) {
  visit(n, depth);
  if (n.IsScalar())
    return resolve_scalar(n.Scalar(), n.Tag());
  if (n.IsNull())
    return nullptr;
  return n.IsSequence() ? json::array() : json::object(); // only its type is looked at
}

std::optional<double> graph_parser::duration_field(const YAML::Node& n, int depth, const std::string& what) {
  json v = scalar_value(n, depth);
  std::optional<double> d;
  if (v.is_number())
    d = v.get<double>();
  else if (v.is_string())
    d = parse_duration(v.get<std::string>());
  if (!d || !std::isfinite(*d) || *d < 0) {
    std::string text = n.IsScalar() ? n.Scalar() : json_type_name(v);
    error(pos_of(n), "invalid " + what + " " + quote(short_text(text)) + " (use e.g. 30s, 500ms, 5m)");
    return std::nullopt;
  }
  return d;
}

void graph_parser::parse_resources(const YAML::Node& n, int depth, node_spec& node) {
  visit(n, depth);
  if (n.IsNull())
    return;
  if (!n.IsMap()) {
    error(pos_of(n), "'resources' must be a mapping with cpus, memory and gpus");
    return;
  }
  for_each_entry(n, depth, [&](const std::string& key, const YAML::Node& key_node, const YAML::Node& value) {
    json v = scalar_value(value, depth + 1);
    if (key == "cpus") {
      if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0)
        error(pos_of(value), "'cpus' must be a non-negative number, not " + std::string(json_type_name(v)));
      else
        node.resources.cpus = v.get<double>();
    } else if (key == "memory") {
      std::optional<uint64_t> mb;
      if (v.is_number_integer() && v.get<int64_t>() >= 0)
        mb = v.get<uint64_t>();
      else if (v.is_number() && std::isfinite(v.get<double>()) && v.get<double>() >= 0 &&
               v.get<double>() < 1e15)
        mb = static_cast<uint64_t>(std::ceil(v.get<double>()));
      else if (v.is_string())
        mb = parse_memory_mb(v.get<std::string>());
      if (!mb)
        error(pos_of(value), "invalid memory " + quote(short_text(value.IsScalar() ? value.Scalar() : "")) +
                                 " (use e.g. 512MiB or 2GiB)");
      else
        node.resources.memory_mb = *mb;
    } else if (key == "gpus") {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
          v.get<int64_t>() > std::numeric_limits<uint32_t>::max())
        error(pos_of(value), "'gpus' must be a non-negative integer");
      else
        node.resources.gpus = static_cast<uint32_t>(v.get<int64_t>());
    } else {
      error(pos_of(key_node), "unknown key " + quote(key) + " (expected cpus, memory, gpus)");
    }
  });
}

void graph_parser::parse_placement(const YAML::Node& n, int depth, node_spec& node) {
  visit(n, depth);
  if (n.IsNull())
    return;
  if (!n.IsMap()) {
    error(pos_of(n), "'placement' must be a mapping of labels, e.g. {site: private}");
    return;
  }
  for_each_entry(n, depth, [&](const std::string& key, const YAML::Node&, const YAML::Node& value) {
    visit(value, depth + 1);
    if (!value.IsScalar()) {
      error(pos_of(value), "placement label " + quote(key) + " must be a string");
      return;
    }
    node.placement[key] = interpolate(value.Scalar(), pos_of(value));
  });
}

void graph_parser::parse_retries(const YAML::Node& n, int depth, node_spec& node) {
  auto retry_count = [&](const YAML::Node& v, int d) -> std::optional<int> {
    json j = scalar_value(v, d);
    if (!j.is_number_integer() || j.get<int64_t>() < 0 || j.get<int64_t>() > 1000000) {
      error(pos_of(v), "'retries' must be a non-negative integer or {max: N, backoff: DURATION}");
      return std::nullopt;
    }
    return static_cast<int>(j.get<int64_t>());
  };
  if (!n.IsMap()) {
    if (auto r = retry_count(n, depth))
      node.retries = *r;
    return;
  }
  visit(n, depth);
  bool has_max = false;
  for_each_entry(n, depth, [&](const std::string& key, const YAML::Node& key_node, const YAML::Node& value) {
    if (key == "max") {
      has_max = true;
      if (auto r = retry_count(value, depth + 1))
        node.retries = *r;
    } else if (key == "backoff") {
      if (auto d = duration_field(value, depth + 1, "backoff"))
        node.retry_backoff_s = *d;
    } else {
      error(pos_of(key_node), "unknown key " + quote(key) + " (expected max, backoff)");
    }
  });
  if (!has_max)
    error(pos_of(n), "'retries' is missing required key 'max'");
}

std::string parent_dir(const std::string& file) {
  if (file.empty())
    return ".";
  std::error_code ec;
  auto abs = fs::absolute(fs::path(file), ec);
  if (ec)
    return ".";
  return abs.lexically_normal().parent_path().string();
}

std::optional<graph_spec> parse_impl(const std::string& text, const std::string& file,
                                     const std::vector<std::pair<std::string, std::string>>& overrides,
                                     diagnostics& out, const parse_limits& limits) {
  auto fail = [&](source_pos pos, std::string message) {
    out.push_back(diagnostic{file, pos, "error", std::move(message)});
    return std::nullopt;
  };
  if (text.size() > limits.max_bytes)
    return fail({}, "graph file is " + std::to_string(text.size()) + " bytes; the limit is " +
                        std::to_string(limits.max_bytes));

  // pass 1: syntax, size and depth, before any tree is built
  event_counter counter(limits);
  try {
    std::istringstream in(text);
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(counter)) {
    }
  } catch (const limit_error& e) {
    return fail(e.pos, e.message);
  } catch (const YAML::DeepRecursion& e) {
    return fail(pos_of(e.mark), "nesting deeper than " + std::to_string(limits.max_depth) + " levels");
  } catch (const YAML::ParserException& e) {
    return fail(pos_of(e.mark), e.msg);
  }
  if (counter.documents == 0)
    return fail({}, "graph file is empty");

  std::optional<YAML::Node> root;
  try {
    root.emplace(YAML::Load(text));
  } catch (const YAML::ParserException& e) {
    return fail(pos_of(e.mark), e.msg);
  }
  if (root->IsNull())
    return fail(pos_of(*root), "graph file is empty");

  graph_spec g;
  g.file = file;
  g.base_dir = parent_dir(file);
  g.text = text;
  g.hash = sha256_hex(text);
  if (counter.documents > 1)
    out.push_back(diagnostic{file, counter.second_document, "error",
                             "a graph file holds one YAML document; this is a second one"});
  graph_parser parser(g, out, limits);
  try {
    if (!parser.parse(*root, overrides))
      return std::nullopt;
  } catch (const limit_error& e) {
    return fail(e.pos, e.message);
  }
  return g;
}

} // namespace

std::optional<graph_spec> parse_graph(const std::string& text, const std::string& file,
                                      const std::vector<std::pair<std::string, std::string>>& overrides,
                                      diagnostics& out, const parse_limits& limits) {
  try {
    return parse_impl(text, file, overrides, out, limits);
  } catch (const std::exception& e) {
    out.push_back(diagnostic{file, {}, "error", std::string("internal error while parsing: ") + e.what()});
  } catch (...) {
    out.push_back(diagnostic{file, {}, "error", "internal error while parsing"});
  }
  return std::nullopt;
}

std::optional<graph_spec> load_graph(const std::string& file,
                                     const std::vector<std::pair<std::string, std::string>>& overrides,
                                     diagnostics& out, const parse_limits& limits) {
  auto fail = [&](std::string message) {
    out.push_back(diagnostic{file, {}, "error", std::move(message)});
    return std::nullopt;
  };
  try {
    std::error_code ec;
    auto status = fs::status(file, ec);
    if (ec || !fs::exists(status))
      return fail("cannot read " + file + ": " +
                  (ec ? ec.message() : std::string(std::strerror(ENOENT))));
    if (fs::is_directory(status))
      return fail("cannot read " + file + ": " + std::strerror(EISDIR));
    if (fs::is_regular_file(status)) {
      auto size = fs::file_size(file, ec);
      if (!ec && size > limits.max_bytes)
        return fail("graph file is " + std::to_string(size) + " bytes; the limit is " +
                    std::to_string(limits.max_bytes));
    }
    std::ifstream in(file, std::ios::binary);
    if (!in)
      return fail("cannot read " + file + ": " + std::strerror(errno));
    // read at most one byte over the limit (the size of a pipe is not known up front)
    std::string text;
    char buffer[65536];
    while (in && text.size() <= limits.max_bytes) {
      in.read(buffer, sizeof buffer);
      text.append(buffer, static_cast<size_t>(in.gcount()));
    }
    if (in.bad())
      return fail("cannot read " + file + ": " + std::strerror(errno));
    if (text.size() > limits.max_bytes)
      return fail("graph file is more than " + std::to_string(limits.max_bytes) +
                  " bytes; the limit is " + std::to_string(limits.max_bytes));
    return parse_graph(text, file, overrides, out, limits);
  } catch (const std::exception& e) {
    return fail(std::string("cannot read ") + file + ": " + e.what());
  }
}

} // namespace loom
