// Shared pieces of the loom command-line tool.
#pragma once

#include "loom/runtime/graph.hpp"
#include "loom/runtime/plugin_registry.hpp"

#include <string>
#include <utility>
#include <vector>

namespace loom::cli {

/// Exit codes of every command.
enum exit_code : int {
  exit_ok = 0,
  exit_failed = 1,  ///< the run (or command) failed
  exit_invalid = 2, ///< invalid input: graph, flags, plugin
  exit_cancelled = 130,
};

struct common_options {
  std::string home;                      ///< --home, else $LOOM_HOME, else ./.loom
  std::vector<std::string> plugin_paths; ///< --plugin-path, searched before the defaults
  bool json = false;
};

std::string resolve_home(const std::string& flag);

/// Loads the plugins on the search path (flags first); prints one warning line per
/// plugin that failed to load (to stderr) unless quiet.
void load_plugins(plugin_registry& reg, const common_options& opts, bool quiet = false);

/// Prints JSON to stdout (invalid UTF-8 from user input is replaced, never thrown on).
void print_json(const nlohmann::json& j);

/// "k=v" -> {k, v}; false when there is no '='.
bool split_assignment(const std::string& text, std::pair<std::string, std::string>& out);

int cmd_run(const common_options& opts, const std::string& file,
            const std::vector<std::string>& sets, bool quiet);
int cmd_validate(const common_options& opts, const std::string& file,
                 const std::vector<std::string>& sets);
int cmd_ops_list(const common_options& opts);
int cmd_ops_describe(const common_options& opts, const std::string& name);
int cmd_plugins_inspect(const common_options& opts, const std::string& path);
int cmd_plugins_list(const common_options& opts);
int cmd_runs_list(const common_options& opts, size_t limit);
int cmd_runs_show(const common_options& opts, const std::string& id, bool logs,
                  const std::string& artifact, const std::string& output);

} // namespace loom::cli
