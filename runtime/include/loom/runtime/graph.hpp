// Graph files: the parsed form of a pipeline (graph_spec), its parser and validator.
//
// A graph file is YAML:
//
//     name: iris
//     params: {seed: 7}
//     plugins: [../build/libmy_ops.so]      # optional extra plugin libraries
//     nodes:
//       - id: load
//         op: ingest.csv
//         with: {path: data/iris.csv, seed: "${params.seed}"}
//       - id: keep
//         op: sink.csv
//         inputs: load                       # or {data: load} or {data: load.out}
//         with: {path: out/iris_copy.csv}
//         retries: 2                         # or {max: 2, backoff: 500ms}
//         timeout: 30s
//         resources: {cpus: 1, memory: 512MiB, gpus: 0}
//         placement: {site: private}
//
// parse_graph() turns text into a graph_spec and reports YAML and shape errors;
// validate_graph() checks it against the operators known to a catalog. Both append
// every error they find to a diagnostics list (they do not stop at the first one)
// and never throw.
#pragma once

#include "loom/runtime/operator_info.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace loom {

/// 1-based line and column in the graph file; 0 when unknown.
struct source_pos {
  int line = 0;
  int column = 0;
};

struct diagnostic {
  std::string file;
  source_pos pos;
  std::string severity = "error"; ///< "error" or "warning"
  std::string message;
  /// "FILE:LINE:COL: error: message"
  std::string format() const;
};

using diagnostics = std::vector<diagnostic>;

inline bool has_errors(const diagnostics& ds) {
  for (auto& d : ds)
    if (d.severity == "error")
      return true;
  return false;
}

/// One entry of a node's `inputs`.
struct input_binding {
  std::string port;      ///< input port; empty in the `inputs: node` shorthand until validated
  std::string node;      ///< producing node id
  std::string node_port; ///< producing output port; empty = that node's only output until validated
  source_pos pos;
};

struct resource_request {
  double cpus = 0;
  uint64_t memory_mb = 0;
  uint32_t gpus = 0;
};

struct node_spec {
  std::string id;
  source_pos pos; ///< position of the node's mapping
  std::string op;
  source_pos op_pos;
  std::vector<input_binding> inputs;
  /// `with:` after ${params.x} substitution; after validation, with defaults applied.
  nlohmann::ordered_json with = nlohmann::ordered_json::object(); ///< keys in file order
  std::map<std::string, source_pos> with_pos; ///< position of each key under `with:`
  resource_request resources;
  std::map<std::string, std::string> placement;
  int retries = 0;
  double retry_backoff_s = 1.0; ///< first retry delay; doubles each attempt
  std::optional<double> timeout_s;
};

struct graph_spec {
  std::string name;
  std::string file;     ///< path as given
  std::string base_dir; ///< directory of the file (absolute); "." for text without a file
  std::string text;     ///< the file's text as read
  std::string hash;     ///< sha256 hex of text
  nlohmann::ordered_json params = nlohmann::ordered_json::object(); ///< after --set overrides, in file order
  std::vector<std::string> plugins; ///< absolute paths
  std::vector<node_spec> nodes;

  const node_spec* find(const std::string& id) const;
};

/// Limits that keep a hostile file from using unbounded time or memory.
struct parse_limits {
  size_t max_bytes = 4 << 20;     ///< refuse larger files
  int max_depth = 64;             ///< nesting of mappings/sequences
  size_t max_nodes = 200000;      ///< YAML nodes visited (aliases counted each time)
};

/// Parses graph text. `overrides` are `--set k=v` pairs (v parsed as a YAML scalar);
/// an override of a parameter the graph does not declare is an error.
/// Returns nullopt only when nothing usable could be parsed; errors go to `out`.
std::optional<graph_spec> parse_graph(const std::string& text, const std::string& file,
                                      const std::vector<std::pair<std::string, std::string>>& overrides,
                                      diagnostics& out, const parse_limits& limits = {});

/// Reads a file and parses it (file errors go to `out` too).
std::optional<graph_spec> load_graph(const std::string& file,
                                     const std::vector<std::pair<std::string, std::string>>& overrides,
                                     diagnostics& out, const parse_limits& limits = {});

/// Checks a parsed graph against the catalog: unknown operator (with the closest
/// name as a suggestion), unknown input port, unknown node or output port in an
/// input, port type mismatch, missing inputs, cycles (naming the nodes on them),
/// duplicate ids, missing required parameters, unknown parameters, wrong parameter
/// types. On success it fills every binding's port/node_port and applies parameter
/// defaults to `with`. Returns true when no error was added.
bool validate_graph(graph_spec& graph, const operator_catalog& catalog, diagnostics& out);

/// Node ids in an order where every node comes after its inputs (graph must be valid).
std::vector<std::string> topological_order(const graph_spec& graph);

/// Parses "30s", "500ms", "5m", "1h", or a plain number of seconds.
std::optional<double> parse_duration(const std::string& text);

/// Parses "512MiB", "2GiB", "100MB", or a plain number of MiB. Returns MiB.
std::optional<uint64_t> parse_memory_mb(const std::string& text);

/// The closest of `candidates` to `word` by edit distance, if close enough.
std::optional<std::string> closest_name(const std::string& word,
                                        const std::vector<std::string>& candidates);

/// sha256 of text, lower-case hex.
std::string sha256_hex(const std::string& text);

} // namespace loom
