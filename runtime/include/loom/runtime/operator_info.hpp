// The host's own copy of what a plugin says about one operator.
//
// The loader deep-copies every loom_operator_def into an operator_info so that
// nothing in it points into plugin memory except `vtable` (valid while the plugin
// stays loaded, which the registry guarantees) and `plugin_path`.
#pragma once

#include <loom/abi.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace loom {

struct port_info {
  std::string name;
  loom_message_type type = LOOM_MSG_ANY;
  std::string description;
  bool optional = false; ///< input port the graph may leave unconnected (LOOM_PORT_OPTIONAL)
};

struct param_info {
  std::string name;
  loom_param_type type = LOOM_PARAM_STRING;
  bool required = false;
  std::optional<std::string> default_json; ///< JSON text, absent when no default
  std::string description;
};

struct operator_info {
  std::string name;
  std::string version;
  std::string description;
  std::string examples;
  std::vector<port_info> inputs;
  std::vector<port_info> outputs;
  std::vector<param_info> params;
  loom_resource_hints resources{};
  loom_operator_vtable vtable{};
  std::string plugin_name;    ///< the plugin header's name
  std::string plugin_path;    ///< absolute path of the library
  std::string plugin_version;

  const port_info* find_input(const std::string& port) const;
  const port_info* find_output(const std::string& port) const;
  const param_info* find_param(const std::string& param) const;
  int input_index(const std::string& port) const;  ///< -1 if none
  int output_index(const std::string& port) const; ///< -1 if none
};

const char* to_string(loom_message_type type);
const char* to_string(loom_param_type type);

} // namespace loom

namespace loom {

/// Where the validator and executor look operators up. The plugin registry is the
/// real implementation; tests may use a plain map.
class operator_catalog {
public:
  virtual ~operator_catalog() = default;
  /// The operator of that name, or nullptr.
  virtual const operator_info* find(const std::string& name) const = 0;
  /// Every operator name, sorted.
  virtual std::vector<std::string> names() const = 0;
};

} // namespace loom
