// RFC 4180 reading and writing shared by ingest.csv and sink.csv.
#pragma once

#include <loom/sdk.hpp>

#include <cstdint>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

namespace loom::ops {

/// Reads one record at a time: quoted fields, doubled quotes, delimiters and line
/// breaks inside quotes, CRLF or LF line ends, a UTF-8 BOM at the start.
class csv_reader {
public:
  csv_reader(std::istream& in, char delimiter) : in_(in), delim_(delimiter) {}

  enum class status { ok, eof, unterminated_quote };

  /// Reads the next record into `fields`; `line` is the line it started on (1-based).
  status next(std::vector<std::string>& fields, uint64_t& line, std::string& raw) {
    fields.clear();
    raw.clear();
    int c = get();
    if (c == EOF)
      return status::eof;
    line = line_;
    std::string field;
    bool quoted = false, in_quotes = false;
    for (;; c = get()) {
      if (c == EOF) {
        if (in_quotes)
          return status::unterminated_quote;
        fields.push_back(std::move(field));
        return status::ok;
      }
      char ch = static_cast<char>(c);
      if (in_quotes) {
        raw.push_back(ch);
        if (ch == '"') {
          if (in_.peek() == '"') {
            field.push_back('"');
            raw.push_back(static_cast<char>(get()));
          } else {
            in_quotes = false;
          }
        } else {
          if (ch == '\n')
            ++line_;
          field.push_back(ch);
        }
        continue;
      }
      if (ch == '\r' && in_.peek() == '\n')
        continue;
      if (ch == '\n') {
        ++line_;
        fields.push_back(std::move(field));
        return status::ok;
      }
      raw.push_back(ch);
      if (ch == delim_) {
        fields.push_back(std::move(field));
        field.clear();
        quoted = false;
      } else if (ch == '"' && field.empty() && !quoted) {
        in_quotes = quoted = true;
      } else {
        field.push_back(ch);
      }
    }
  }

private:
  int get() {
    int c = in_.get();
    if (first_) {
      first_ = false;
      if (c == 0xEF && in_.peek() == 0xBB) { // UTF-8 byte order mark
        in_.get();
        if (in_.peek() == 0xBF) {
          in_.get();
          c = in_.get();
        }
      }
    }
    return c;
  }

  std::istream& in_;
  char delim_;
  uint64_t line_ = 1;
  bool first_ = true;
};

/// Appends `field` to `out`, quoted if it contains the delimiter, a quote or a line break.
inline void csv_append_field(std::string& out, std::string_view field, char delimiter) {
  bool quote = field.find_first_of(std::string{delimiter, '"', '\n', '\r'}) != std::string_view::npos;
  if (!quote) {
    out.append(field);
    return;
  }
  out.push_back('"');
  for (char ch : field) {
    if (ch == '"')
      out.push_back('"');
    out.push_back(ch);
  }
  out.push_back('"');
}

/// The one-character delimiter named by a parameter ("," ";" "|" "\t" or "tab").
inline char csv_delimiter(const std::string& text) {
  if (text == "\\t" || text == "tab")
    return '\t';
  if (text.size() != 1 || text[0] == '"' || text[0] == '\n' || text[0] == '\r')
    throw loom::sdk::error("delimiter must be one character other than a quote or line break, got '" +
                                text + "'");
  return text[0];
}

} // namespace loom::ops
