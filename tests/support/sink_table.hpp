// What sink.csv wrote, read back for assertions: a header and rows split on commas.
// Only for test outputs without quoted fields (numbers, labels, plain words).
#pragma once

#include <catch2/catch.hpp>

#include <sstream>
#include <string>
#include <vector>

namespace loom::test {

struct sink_table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;

  /// Parses CSV text; every row must have as many fields as the header.
  static sink_table parse(const std::string& text) {
    sink_table t;
    std::istringstream in(text);
    std::string line;
    bool first = true;
    while (std::getline(in, line)) {
      if (first)
        t.header = split(line);
      else {
        t.rows.push_back(split(line));
        REQUIRE(t.rows.back().size() == t.header.size());
      }
      first = false;
    }
    REQUIRE(!first); // a header at least
    return t;
  }

  bool has(const std::string& name) const {
    for (auto& h : header)
      if (h == name)
        return true;
    return false;
  }
  size_t col(const std::string& name) const {
    for (size_t i = 0; i < header.size(); ++i)
      if (header[i] == name)
        return i;
    FAIL("no column " << name);
    return 0;
  }
  const std::string& at(size_t row, const std::string& name) const {
    REQUIRE(row < rows.size());
    return rows[row].at(col(name));
  }
  double num(size_t row, const std::string& name) const { return std::stod(at(row, name)); }

  static std::vector<std::string> split(const std::string& line) {
    std::vector<std::string> out(1);
    for (char c : line) {
      if (c == ',')
        out.emplace_back();
      else
        out.back().push_back(c);
    }
    return out;
  }
};

} // namespace loom::test
