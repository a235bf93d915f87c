// RFC 4180 reading and writing shared by ingest.csv and sink.csv.
#pragma once

#include <loom/sdk.hpp>

#include <cstdint>
#include <cstring>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

namespace loom::ops {

/// Reads one record at a time: quoted fields, doubled quotes, delimiters and line
/// breaks inside quotes, CRLF or LF line ends, a UTF-8 BOM at the start.
///
/// The input is read in large blocks and scanned in place; `next` reuses the strings
/// of `fields` (their capacity survives from record to record), so a steady stream of
/// records allocates nothing.
class csv_reader {
public:
  csv_reader(std::istream& in, char delimiter) : in_(in), delim_(delimiter), buf_(1 << 20) {
    special_[static_cast<unsigned char>(delim_)] = true;
    special_[static_cast<unsigned char>('"')] = true;
    special_[static_cast<unsigned char>('\n')] = true;
    special_[static_cast<unsigned char>('\r')] = true;
  }

  enum class status { ok, eof, unterminated_quote };

  /// Reads the next record into `fields`; `line` is the line it started on (1-based);
  /// `raw` is the record's text as in the input, without its line break.
  status next(std::vector<std::string>& fields, uint64_t& line, std::string& raw) {
    if (first_) {
      first_ = false;
      while (end_ - pos_ < 3 && refill()) {
      }
      if (end_ - pos_ >= 3 && buf_[pos_] == '\xEF' && buf_[pos_ + 1] == '\xBB' && buf_[pos_ + 2] == '\xBF')
        pos_ += 3; // UTF-8 byte order mark
    }
    for (;;) {
      const size_t start = pos_;
      const uint64_t start_line = line_;
      auto r = parse(fields, raw);
      if (r != result::need_more) {
        line = start_line;
        return r == result::eof ? status::eof : r == result::ok ? status::ok : status::unterminated_quote;
      }
      // the record runs past the buffer: read more and parse it again from its start
      pos_ = start;
      line_ = start_line;
      refill();
    }
  }

private:
  enum class result { ok, eof, unterminated, need_more };

  /// Moves the unread bytes to the front, grows the buffer if they fill it, and reads
  /// more; false at the end of the input.
  bool refill() {
    if (eof_)
      return false;
    if (pos_ > 0) {
      std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
      end_ -= pos_;
      pos_ = 0;
    }
    if (end_ == buf_.size())
      buf_.resize(buf_.size() * 2);
    in_.read(buf_.data() + end_, static_cast<std::streamsize>(buf_.size() - end_));
    auto got = static_cast<size_t>(in_.gcount());
    end_ += got;
    if (got == 0)
      eof_ = true;
    return got > 0;
  }

  result parse(std::vector<std::string>& fields, std::string& raw) {
    const char* const base = buf_.data();
    const char* p = base + pos_;
    const char* const e = base + end_;
    if (p == e) {
      if (!eof_)
        return result::need_more;
      return result::eof;
    }
    const char* const record = p;
    size_t k = 0;
    auto field = [&]() -> std::string& {
      if (k == fields.size())
        fields.emplace_back();
      auto& f = fields[k++];
      f.clear();
      return f;
    };
    auto finish = [&](const char* raw_end, const char* next) {
      fields.resize(k);
      raw.assign(record, raw_end);
      pos_ = static_cast<size_t>(next - base);
      return result::ok;
    };
    std::string* f = &field();
    bool quoted = false;
    for (;;) {
      // the common case: a run of ordinary characters
      const char* run = p;
      while (p < e && !special_[static_cast<unsigned char>(*p)])
        ++p;
      f->append(run, p);
      if (p == e)
        return eof_ ? finish(e, e) : result::need_more;
      const char ch = *p;
      if (ch == delim_) {
        ++p;
        f = &field();
        quoted = false;
      } else if (ch == '\n') {
        ++line_;
        return finish(p, p + 1);
      } else if (ch == '\r') {
        if (p + 1 == e && !eof_)
          return result::need_more;
        if (p + 1 < e && p[1] == '\n') {
          ++line_;
          return finish(p, p + 2);
        }
        f->push_back('\r'); // a lone CR is data
        ++p;
      } else if (f->empty() && !quoted) { // '"' opening a quoted field
        quoted = true;
        ++p;
        for (;;) {
          const char* q = p;
          while (p < e && *p != '"') {
            if (*p == '\n')
              ++line_;
            ++p;
          }
          f->append(q, p);
          if (p == e) {
            if (!eof_)
              return result::need_more;
            fields.resize(k);
            raw.assign(record, e); // the rest of the input
            pos_ = end_;
            return result::unterminated;
          }
          if (p + 1 == e && !eof_)
            return result::need_more; // is it a doubled quote?
          if (p + 1 < e && p[1] == '"') {
            f->push_back('"');
            p += 2;
            continue;
          }
          ++p; // closing quote
          break;
        }
      } else { // a quote inside an unquoted field (or after a quoted one) is data
        f->push_back('"');
        ++p;
      }
    }
  }

  std::istream& in_;
  char delim_;
  std::vector<char> buf_;
  size_t pos_ = 0, end_ = 0;
  bool eof_ = false;
  bool special_[256] = {};
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
