// Reading list and map parameters. Scalars have typed getters on sdk::context
// (param_string, param_int, ...); lists and maps arrive as JSON, which these helpers
// read with nlohmann::json (a dependency of the SDK package).
//
//   auto columns = loom::sdk::param_strings(ctx, "columns");   // [a, b] -> {"a", "b"}
//   auto renames = loom::sdk::param_string_map(ctx, "rename"); // {a: x} -> {"a": "x"}
//   auto ordered = loom::sdk::param_string_pairs(ctx, "columns"); // in file order
//
// params() and params_json() keep the graph file's key order too (nlohmann::json
// sorts keys; parse with nlohmann::ordered_json where the order matters).
//
// Both throw sdk::error naming the parameter when an entry is not a string.
#pragma once

#include <loom/sdk.hpp>

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace loom::sdk {

/// Every parameter of the node (defaults applied) as one JSON object.
inline nlohmann::json params(const context& ctx) {
  return nlohmann::json::parse(ctx.params_json());
}

/// A list-of-strings parameter; empty when the parameter is unset or null.
inline std::vector<std::string> param_strings(const context& ctx, const char* name) {
  auto all = params(ctx);
  std::vector<std::string> out;
  auto it = all.find(name);
  if (it == all.end() || it->is_null())
    return out;
  if (!it->is_array())
    throw error(std::string(name) + ": expected a list of strings");
  for (auto& v : *it) {
    if (!v.is_string())
      throw error(std::string(name) + ": every entry must be a string, found " + v.dump());
    out.push_back(v.get<std::string>());
  }
  return out;
}

/// A map-of-strings parameter as (key, value) pairs in the order the graph file wrote
/// them; empty when the parameter is unset or null.
inline std::vector<std::pair<std::string, std::string>> param_string_pairs(const context& ctx,
                                                                            const char* name) {
  auto all = nlohmann::ordered_json::parse(ctx.params_json());
  std::vector<std::pair<std::string, std::string>> out;
  auto it = all.find(name);
  if (it == all.end() || it->is_null())
    return out;
  if (!it->is_object())
    throw error(std::string(name) + ": expected a map of strings");
  for (auto& [k, v] : it->items()) {
    if (!v.is_string())
      throw error(std::string(name) + ": the value of '" + k + "' must be a string, found " + v.dump());
    out.emplace_back(k, v.get<std::string>());
  }
  return out;
}

/// A map-of-strings parameter, sorted by key; empty when the parameter is unset or null.
inline std::map<std::string, std::string> param_string_map(const context& ctx, const char* name) {
  auto pairs = param_string_pairs(ctx, name);
  return {pairs.begin(), pairs.end()};
}

} // namespace loom::sdk
