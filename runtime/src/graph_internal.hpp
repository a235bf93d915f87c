// Helpers shared by the graph parser and validator (not part of the public API).
#pragma once

#include <nlohmann/json.hpp>

namespace loom {

/// The graph-file name of a JSON value's type: null, bool, int, float, string, list, map.
const char* json_type_name(const nlohmann::ordered_json& v);

} // namespace loom
