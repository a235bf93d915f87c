#include "cli.hpp"

#include <cstdlib>
#include <iostream>

namespace loom::cli {

std::string resolve_home(const std::string& flag) {
  if (!flag.empty())
    return flag;
  if (const char* env = std::getenv("LOOM_HOME"); env != nullptr && *env != '\0')
    return env;
  return ".loom";
}

void load_plugins(plugin_registry& reg, const common_options& opts, bool quiet) {
  auto dirs = opts.plugin_paths;
  for (auto& d : plugin_registry::default_search_path())
    dirs.push_back(d);
  for (auto& err : reg.load_directories(dirs))
    if (!quiet)
      std::cerr << "loom: warning: " << err << "\n";
}

void print_json(const nlohmann::json& j) {
  std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

bool split_assignment(const std::string& text, std::pair<std::string, std::string>& out) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    return false;
  out = {text.substr(0, eq), text.substr(eq + 1)};
  return true;
}

} // namespace loom::cli
