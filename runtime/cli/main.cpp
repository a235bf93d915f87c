// loom — the command-line tool: run and validate graphs, inspect plugins and
// operators, look at recorded runs.
#include "cli.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
  using namespace loom::cli;
  CLI::App app{"Loom: a dataflow runtime for machine-learning pipelines"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("loom ") + LOOM_VERSION);
  common_options opts;
  auto add_common = [&](CLI::App* cmd, bool with_home, bool with_json) {
    cmd->add_option("--plugin-path", opts.plugin_paths, "extra directory of plugins (repeatable)");
    if (with_home)
      cmd->add_option("--home", opts.home, "Loom home (default: $LOOM_HOME or ./.loom)");
    if (with_json)
      cmd->add_flag("--json", opts.json, "print JSON instead of text");
  };

  std::string file;
  std::vector<std::string> sets;
  bool quiet = false;
  auto* run = app.add_subcommand("run", "validate and run a graph on this machine");
  run->add_option("file", file, "graph file (YAML)")->required();
  run->add_option("--set", sets, "override a graph parameter: --set k=v (repeatable)");
  run->add_flag("-q,--quiet", quiet, "no progress lines");
  add_common(run, true, true);

  auto* validate = app.add_subcommand("validate", "check a graph file without running it");
  validate->add_option("file", file, "graph file (YAML)")->required();
  validate->add_option("--set", sets, "override a graph parameter: --set k=v (repeatable)");
  add_common(validate, false, true);

  auto* ops = app.add_subcommand("ops", "operators on the plugin path");
  ops->require_subcommand(1);
  auto* ops_list = ops->add_subcommand("list", "list operators");
  add_common(ops_list, false, true);
  std::string name;
  auto* ops_describe = ops->add_subcommand("describe", "ports, parameters and examples of an operator");
  ops_describe->add_option("name", name, "operator name")->required();
  add_common(ops_describe, false, true);

  auto* plugins = app.add_subcommand("plugins", "plugin libraries");
  plugins->require_subcommand(1);
  std::string path;
  auto* inspect = plugins->add_subcommand("inspect", "what a plugin library provides");
  inspect->add_option("path", path, "plugin library (.so)")->required();
  add_common(inspect, false, true);
  auto* plugins_list = plugins->add_subcommand("list", "plugins found on the plugin path");
  add_common(plugins_list, false, true);

  auto* runs = app.add_subcommand("runs", "recorded runs");
  runs->require_subcommand(1);
  size_t limit = 20;
  auto* runs_list = runs->add_subcommand("list", "list runs, newest first");
  runs_list->add_option("-n,--limit", limit, "at most this many (0 = all)");
  add_common(runs_list, true, true);
  std::string id, artifact, output;
  bool logs = false;
  auto* runs_show = runs->add_subcommand("show", "one run: nodes, counters, metrics, artifacts, logs");
  runs_show->add_option("id", id, "run id")->required();
  runs_show->add_flag("--logs", logs, "also print the run's log");
  runs_show->add_option("--artifact", artifact, "print (or save with -o) this artifact");
  runs_show->add_option("-o,--output", output, "file to save --artifact to");
  add_common(runs_show, true, true);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : exit_invalid;
  }
  try {
    if (*run)
      return cmd_run(opts, file, sets, quiet);
    if (*validate)
      return cmd_validate(opts, file, sets);
    if (*ops_list)
      return cmd_ops_list(opts);
    if (*ops_describe)
      return cmd_ops_describe(opts, name);
    if (*inspect)
      return cmd_plugins_inspect(opts, path);
    if (*plugins_list)
      return cmd_plugins_list(opts);
    if (*runs_list)
      return cmd_runs_list(opts, limit);
    if (*runs_show)
      return cmd_runs_show(opts, id, logs, artifact, output);
  } catch (const std::exception& e) {
    std::cerr << "loom: error: " << e.what() << "\n";
    return exit_failed;
  }
  return exit_invalid;
}
