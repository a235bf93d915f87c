// Small helpers of the graph layer: diagnostics, durations, memory sizes, name
// suggestions, hashing and topological order.
#include "loom/runtime/graph.hpp"

#include "graph_internal.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <functional>
#include <queue>
#include <unordered_map>

namespace loom {

std::string diagnostic::format() const {
  std::string out = file.empty() ? std::string("<graph>") : file;
  if (pos.line > 0) {
    out += ':' + std::to_string(pos.line);
    if (pos.column > 0)
      out += ':' + std::to_string(pos.column);
  }
  out += ": " + severity + ": " + message;
  return out;
}

const node_spec* graph_spec::find(const std::string& id) const {
  for (auto& n : nodes)
    if (n.id == id)
      return &n;
  return nullptr;
}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

// Reads an unsigned decimal number ("12", "1.5", ".5") from the front of `s`.
std::optional<double> take_number(std::string_view& s) {
  size_t n = 0;
  bool digits = false, dot = false;
  while (n < s.size()) {
    char c = s[n];
    if (c >= '0' && c <= '9') {
      digits = true;
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
    ++n;
  }
  if (!digits)
    return std::nullopt;
  double value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + n, value, std::chars_format::fixed);
  if (ec != std::errc() || ptr != s.data() + n || !std::isfinite(value))
    return std::nullopt;
  s.remove_prefix(n);
  return value;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

} // namespace

std::optional<double> parse_duration(const std::string& text) {
  auto s = trim(text);
  if (s.empty())
    return std::nullopt;
  auto first = take_number(s);
  if (!first)
    return std::nullopt;
  if (trim(s).empty())
    return *first; // plain number: seconds
  // one or more NUMBER UNIT parts, e.g. "1h30m"
  double total = 0;
  std::optional<double> value = first;
  while (true) {
    size_t n = 0;
    while (n < s.size() && std::isalpha(static_cast<unsigned char>(s[n])))
      ++n;
    auto unit = lower(s.substr(0, n));
    s.remove_prefix(n);
    double scale;
    if (unit == "ms")
      scale = 0.001;
    else if (unit == "us")
      scale = 1e-6;
    else if (unit == "s" || unit == "sec")
      scale = 1;
    else if (unit == "m" || unit == "min")
      scale = 60;
    else if (unit == "h")
      scale = 3600;
    else if (unit == "d")
      scale = 86400;
    else
      return std::nullopt;
    total += *value * scale;
    if (s.empty())
      break;
    value = take_number(s);
    if (!value)
      return std::nullopt;
  }
  if (!std::isfinite(total))
    return std::nullopt;
  return total;
}

std::optional<uint64_t> parse_memory_mb(const std::string& text) {
  auto s = trim(text);
  auto value = take_number(s);
  if (!value)
    return std::nullopt;
  auto unit = lower(trim(s));
  constexpr double kib = 1024.0, mib = kib * 1024, gib = mib * 1024, tib = gib * 1024;
  double bytes;
  if (unit.empty() || unit == "m" || unit == "mi" || unit == "mib")
    bytes = *value * mib;
  else if (unit == "b")
    bytes = *value;
  else if (unit == "k" || unit == "ki" || unit == "kib")
    bytes = *value * kib;
  else if (unit == "kb")
    bytes = *value * 1e3;
  else if (unit == "mb")
    bytes = *value * 1e6;
  else if (unit == "g" || unit == "gi" || unit == "gib")
    bytes = *value * gib;
  else if (unit == "gb")
    bytes = *value * 1e9;
  else if (unit == "t" || unit == "ti" || unit == "tib")
    bytes = *value * tib;
  else if (unit == "tb")
    bytes = *value * 1e12;
  else
    return std::nullopt;
  double result = std::ceil(bytes / mib - 1e-9);
  if (!std::isfinite(result) || result < 0 || result > 1e15)
    return std::nullopt;
  return static_cast<uint64_t>(result);
}

std::optional<std::string> closest_name(const std::string& word,
                                        const std::vector<std::string>& candidates) {
  const size_t limit = std::max<size_t>(2, word.size() / 3);
  const auto w = lower(word);
  std::optional<std::string> best;
  size_t best_distance = limit + 1;
  std::vector<size_t> prev, cur;
  for (auto& candidate : candidates) {
    size_t diff = candidate.size() > w.size() ? candidate.size() - w.size() : w.size() - candidate.size();
    if (diff >= best_distance || candidate.empty())
      continue;
    const auto c = lower(candidate);
    // Levenshtein distance, two rows
    prev.resize(c.size() + 1);
    cur.resize(c.size() + 1);
    for (size_t j = 0; j <= c.size(); ++j)
      prev[j] = j;
    for (size_t i = 1; i <= w.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= c.size(); ++j)
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (w[i - 1] == c[j - 1] ? 0 : 1)});
      std::swap(prev, cur);
    }
    if (prev[c.size()] < best_distance) {
      best_distance = prev[c.size()];
      best = candidate;
    }
  }
  return best;
}

std::string sha256_hex(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha256(), nullptr) != 1)
    return {};
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 0xf];
  }
  return out;
}

std::vector<std::string> topological_order(const graph_spec& graph) {
  const size_t n = graph.nodes.size();
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < n; ++i)
    index.emplace(graph.nodes[i].id, i);
  std::vector<std::vector<size_t>> consumers(n);
  std::vector<size_t> pending(n, 0);
  for (size_t i = 0; i < n; ++i) {
    for (auto& b : graph.nodes[i].inputs) {
      auto it = index.find(b.node);
      if (it == index.end())
        continue;
      consumers[it->second].push_back(i);
      ++pending[i];
    }
  }
  // Kahn's algorithm; among ready nodes the one first in the file goes first
  std::priority_queue<size_t, std::vector<size_t>, std::greater<size_t>> ready;
  for (size_t i = 0; i < n; ++i)
    if (pending[i] == 0)
      ready.push(i);
  std::vector<std::string> order;
  std::vector<bool> done(n, false);
  while (!ready.empty()) {
    auto i = ready.top();
    ready.pop();
    done[i] = true;
    order.push_back(graph.nodes[i].id);
    for (auto c : consumers[i])
      if (--pending[c] == 0)
        ready.push(c);
  }
  for (size_t i = 0; i < n; ++i) // only for invalid graphs: nodes on or after a cycle
    if (!done[i])
      order.push_back(graph.nodes[i].id);
  return order;
}

const char* json_type_name(const nlohmann::ordered_json& v) {
  switch (v.type()) {
    case nlohmann::ordered_json::value_t::null: return "null";
    case nlohmann::ordered_json::value_t::boolean: return "bool";
    case nlohmann::ordered_json::value_t::number_integer:
    case nlohmann::ordered_json::value_t::number_unsigned: return "int";
    case nlohmann::ordered_json::value_t::number_float: return "float";
    case nlohmann::ordered_json::value_t::string: return "string";
    case nlohmann::ordered_json::value_t::array: return "list";
    case nlohmann::ordered_json::value_t::object: return "map";
    default: return "value";
  }
}

} // namespace loom
