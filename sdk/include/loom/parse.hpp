// Parsing text values the way every Loom operator reads them: whole strings only
// (no trailing characters), a leading '+' allowed, locale-independent and exact
// (doubles round-trip; parsed with fast_float, Debian's libfast-float-dev).
//
//   int64_t i; if (loom::sdk::parse_i64("42", i)) ...
//   double d;  loom::sdk::parse_f64("-1.5e3", d);   // also nan, inf, infinity
//   bool b;    loom::sdk::parse_bool("TRUE", b);    // true/false in three casings
#pragma once

#include <fast_float/fast_float.h>

#include <charconv>
#include <cstdint>
#include <string_view>

namespace loom::sdk {

inline bool parse_i64(std::string_view s, int64_t& out) {
  if (s.empty())
    return false;
  const char* b = s.data() + (s.front() == '+' && s.size() > 1 ? 1 : 0);
  auto r = std::from_chars(b, s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

inline bool parse_f64(std::string_view s, double& out) {
  if (s.empty())
    return false;
  const char* b = s.data() + (s.front() == '+' && s.size() > 1 ? 1 : 0);
  auto r = fast_float::from_chars(b, s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

inline bool parse_bool(std::string_view s, bool& out) {
  if (s == "true" || s == "True" || s == "TRUE") {
    out = true;
    return true;
  }
  if (s == "false" || s == "False" || s == "FALSE") {
    out = false;
    return true;
  }
  return false;
}

} // namespace loom::sdk
