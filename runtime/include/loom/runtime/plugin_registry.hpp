// Loading operator plugins and looking operators up.
//
// A plugin is loaded with Boost.DLL (RTLD_NOW | RTLD_LOCAL). The registry reads the
// plugin header, checks the ABI version (major must equal the host's; minor must not
// be newer), calls init with the host function table, and adds the operators only if
// all of that succeeded and no operator name clashes with one already registered.
// Every failure is one line naming the library; the registry stays as it was.
// Libraries stay loaded as long as the registry lives.
#pragma once

#include "loom/runtime/error.hpp"
#include "loom/runtime/graph.hpp"
#include "loom/runtime/operator_info.hpp"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace loom {

struct plugin_info {
  std::string path;
  std::string name;
  std::string version;
  uint32_t abi_major = 0;
  uint32_t abi_minor = 0;
  std::vector<std::string> operators;
};

class plugin_registry : public operator_catalog {
public:
  plugin_registry();
  ~plugin_registry() override;
  plugin_registry(const plugin_registry&) = delete;
  plugin_registry& operator=(const plugin_registry&) = delete;

  /// Loads one plugin library. On failure the error (errc::plugin) has a one-line
  /// message that starts with the path.
  caf::expected<plugin_info> load(const std::string& path);

  /// Loads every `*.so` in each directory (missing directories are skipped).
  /// Returns one message per library that failed; the others are loaded.
  std::vector<std::string> load_directories(const std::vector<std::string>& dirs);

  /// Reads a plugin's description without registering it (for `plugins inspect`).
  static caf::expected<std::pair<plugin_info, std::vector<operator_info>>>
  inspect(const std::string& path);

  const operator_info* find(const std::string& name) const override;
  std::vector<std::string> names() const override;
  const std::vector<plugin_info>& plugins() const;

  /// LOOM_PLUGIN_PATH (colon-separated) followed by <dir of loom>/../lib/loom/plugins.
  static std::vector<std::string> default_search_path();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Loads the libraries a graph names: every entry of `plugins:`, and every node
/// whose `op` is a path to a library rather than an operator name —
/// `op: lib/libmy_ops.so` (the library must provide exactly one operator) or
/// `op: lib/libmy_ops.so#my.op` — resolved against the graph file's directory. Such
/// a node's `op` becomes the operator's name. Every failure is a diagnostic at its
/// place in the file; returns true when none was added.
bool load_graph_plugins(graph_spec& graph, plugin_registry& registry, diagnostics& out);

/// The host function table given to every plugin.
const loom_host_api* host_api();

/// Directory holding the running executable.
std::string executable_dir();

} // namespace loom
