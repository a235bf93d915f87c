// Shared by the loom-io operators: value parsing, inputs (a file, a glob of files, a
// gzip file, an in-memory body), the `rejects` output, UTF-8 checks, atomic output
// files and the parameters every table ingester declares.
#pragma once

#include <loom/atomic_file.hpp>
#include <loom/frame.hpp>
#include <loom/params.hpp>
#include <loom/parse.hpp>
#include <loom/sdk.hpp>

#include <nlohmann/json.hpp>

#include <glob.h>
#include <zlib.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <istream>
#include <memory>
#include <sstream>
#include <streambuf>
#include <string>
#include <string_view>
#include <vector>

namespace loom::ops {

using sdk::col_type;

// ---- values -------------------------------------------------------------------------

using sdk::parse_bool;
using sdk::parse_f64;
using sdk::parse_i64;

/// sdk::parse_i64, quicker for the common case of plain decimal digits; the same result
/// for every input.
inline bool parse_i64_fast(std::string_view s, int64_t& out) {
  const char* p = s.data();
  const char* const e = p + s.size();
  const bool neg = p < e && *p == '-';
  p += neg;
  if (e - p < 1 || e - p > 18) // 18 digits cannot overflow
    return parse_i64(s, out);
  uint64_t v = 0;
  for (; p < e; ++p) {
    unsigned d = static_cast<unsigned char>(*p) - unsigned{'0'};
    if (d > 9)
      return parse_i64(s, out);
    v = v * 10 + d;
  }
  out = neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
  return true;
}

/// sdk::parse_f64, quicker for the common case of [-]digits[.digits] with at most 15
/// significant digits, which a double holds exactly: the value is then digits / 10^k,
/// one correctly rounded division, so the result is the same double for every input.
inline bool parse_f64_fast(std::string_view s, double& out) {
  static constexpr double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  const char* p = s.data();
  const char* const e = p + s.size();
  const bool neg = p < e && *p == '-';
  p += neg;
  uint64_t m = 0;
  const char* const int_begin = p;
  for (; p < e; ++p) {
    unsigned d = static_cast<unsigned char>(*p) - unsigned{'0'};
    if (d > 9)
      break;
    m = m * 10 + d;
  }
  size_t digits = static_cast<size_t>(p - int_begin), frac = 0;
  if (p < e && *p == '.') {
    const char* const frac_begin = ++p;
    for (; p < e; ++p) {
      unsigned d = static_cast<unsigned char>(*p) - unsigned{'0'};
      if (d > 9)
        break;
      m = m * 10 + d;
    }
    frac = static_cast<size_t>(p - frac_begin);
    if (frac == 0)
      return parse_f64(s, out);
  }
  // 15 digits: m < 10^15 < 2^53, and frac <= 15 < 22 (10^frac is exact)
  if (p != e || digits == 0 || digits + frac > 15)
    return parse_f64(s, out);
  double v = static_cast<double>(m) / pow10[frac];
  out = neg ? -v : v;
  return true;
}

/// The value of n <= 8 decimal digits at the low bytes of w (the first at the lowest),
/// or -1 if a byte is not a digit. The other bytes of w are ignored.
inline int64_t swar_digits(uint64_t w, size_t n) {
  const uint64_t keep = n == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * n)) - 1;
  const uint64_t v = w & keep, zeros = 0x3030303030303030ull & keep;
  // a digit is 0x30..0x39: high nibble 3, and adding 6 leaves it 3
  if ((v & 0xF0F0F0F0F0F0F0F0ull) != zeros || ((v + (0x0606060606060606ull & keep)) & 0xF0F0F0F0F0F0F0F0ull) != zeros)
    return -1;
  uint64_t d = (v - zeros) << (8 * (8 - n)); // right-aligned: leading zero digits
  d = (d * 2561) >> 8;
  d = ((d & 0x00FF00FF00FF00FFull) * 6553601) >> 16;
  return static_cast<int64_t>(((d & 0x0000FFFF0000FFFFull) * 42949672960001ull) >> 32);
}

/// parse_i64_fast for text followed by at least 16 readable bytes: up to 16 digits are
/// read eight at a time, without a branch per digit.
inline bool parse_i64_padded(std::string_view s, int64_t& out) {
  const char* p = s.data();
  const bool neg = !s.empty() && *p == '-';
  const size_t n = s.size() - neg;
  p += neg;
  if (n == 0 || n > 16)
    return parse_i64_fast(s, out);
  uint64_t w;
  std::memcpy(&w, p, 8);
  int64_t v = swar_digits(w, std::min<size_t>(n, 8));
  if (n > 8 && v >= 0) {
    static constexpr int64_t pow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};
    std::memcpy(&w, p + 8, 8);
    const int64_t low = swar_digits(w, n - 8);
    v = low < 0 ? -1 : v * pow10[n - 8] + low; // at most 16 digits: no overflow
  }
  if (v < 0)
    return parse_i64_fast(s, out);
  out = neg ? -v : v;
  return true;
}

/// parse_f64_fast for text followed by at least 8 readable bytes: [-]digits[.digits]
/// of at most 8 characters after the sign is read at once.
inline bool parse_f64_padded(std::string_view s, double& out) {
  static constexpr double pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7};
  const char* p = s.data();
  const bool neg = !s.empty() && *p == '-';
  const size_t n = s.size() - neg;
  if (n == 0 || n > 8)
    return parse_f64_fast(s, out);
  uint64_t w;
  std::memcpy(&w, p + neg, 8);
  const uint64_t keep = n == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * n)) - 1;
  // the first '.': the lowest zero byte of w ^ "........" (exact for the lowest one)
  const uint64_t x = (w ^ 0x2E2E2E2E2E2E2E2Eull) & keep;
  const uint64_t dot = (x - 0x0101010101010101ull) & ~x & 0x8080808080808080ull & keep;
  size_t digits = n, frac = 0;
  if (dot != 0) {
    const size_t k = static_cast<size_t>(__builtin_ctzll(dot)) / 8;
    if (k == 0 || k + 1 == n)
      return parse_f64_fast(s, out); // ".5" and "5." are fast_float's business
    const uint64_t low = (uint64_t{1} << (8 * k)) - 1;
    w = (w & low) | ((w >> 8) & ~low); // the point taken out
    digits = n - 1;
    frac = n - 1 - k;
  }
  const int64_t m = swar_digits(w, digits);
  if (m < 0)
    return parse_f64_fast(s, out);
  const double v = static_cast<double>(m) / pow10[frac]; // exact: m < 10^8, 10^frac exact
  out = neg ? -v : v;
  return true;
}

/// A type named in a `schema:` parameter.
inline col_type type_from_name(const std::string& n, const std::string& column) {
  if (n == "i64" || n == "int")
    return col_type::i64;
  if (n == "f64" || n == "float" || n == "double")
    return col_type::f64;
  if (n == "f32")
    return col_type::f32;
  if (n == "bool")
    return col_type::boolean;
  if (n == "string" || n == "str")
    return col_type::string;
  throw sdk::error("schema: unknown type '" + n + "' for column '" + column + "' (use i64, f64, f32, bool, string)");
}

/// Offset of the first byte that is not part of valid UTF-8 (overlong forms,
/// surrogates and code points above U+10FFFF are invalid), or npos.
inline size_t utf8_invalid_at(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > n)
      return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80)
        return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return i;
    i += len;
  }
  return std::string_view::npos;
}

/// `s` with every invalid UTF-8 byte replaced by U+FFFD, cut to at most `limit`
/// bytes (at a character boundary).
inline std::string utf8_sanitize(std::string_view s, size_t limit = SIZE_MAX) {
  std::string out;
  while (!s.empty() && out.size() < limit) {
    size_t bad = utf8_invalid_at(s);
    size_t good = bad == std::string_view::npos ? s.size() : bad;
    out.append(s.substr(0, good));
    s.remove_prefix(good);
    if (!s.empty()) {
      out.append("\xEF\xBF\xBD");
      s.remove_prefix(1);
    }
  }
  if (out.size() > limit) {
    size_t cut = limit;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80)
      --cut;
    out.resize(cut);
  }
  return out;
}

// ---- inputs ---------------------------------------------------------------------------

/// Reads a gzip file (or, transparently, a plain one) through zlib.
class gz_streambuf final : public std::streambuf {
public:
  explicit gz_streambuf(const std::string& path) : file_(gzopen(path.c_str(), "rb")) {
    if (file_ == nullptr)
      throw sdk::error("cannot open " + path + ": " + std::strerror(errno ? errno : ENOENT), LOOM_ERR_IO);
    gzbuffer(file_, 1 << 17);
  }
  ~gz_streambuf() override {
    if (file_ != nullptr)
      gzclose(file_);
  }
  gz_streambuf(const gz_streambuf&) = delete;
  gz_streambuf& operator=(const gz_streambuf&) = delete;
  /// The zlib error that ended the stream early (truncated or corrupt file), if any.
  const std::string& error() const { return error_; }

protected:
  int_type underflow() override {
    if (gptr() < egptr())
      return traits_type::to_int_type(*gptr());
    int n = gzread(file_, buf_, sizeof buf_);
    if (n <= 0) {
      // a truncated stream ends with a short read and Z_BUF_ERROR, a corrupt one with -1
      int code = Z_OK;
      const char* msg = gzerror(file_, &code);
      if (n < 0 || (code != Z_OK && code != Z_STREAM_END))
        error_ = msg && *msg ? msg : "gzip read error";
      return traits_type::eof();
    }
    setg(buf_, buf_, buf_ + n);
    return traits_type::to_int_type(*gptr());
  }

private:
  gzFile file_;
  char buf_[1 << 16];
  std::string error_;
};

/// One open input: a name (file path or URL, used in rejects and errors) and a stream.
struct named_input {
  std::string name;
  std::unique_ptr<std::streambuf> buf;
  std::unique_ptr<std::istream> in;
  gz_streambuf* gz = nullptr;

  /// Throws if the stream ended because of a read error rather than at its end.
  void check() const {
    if (gz != nullptr && !gz->error().empty())
      throw sdk::error(name + ": cannot decompress: " + gz->error() + " (truncated or corrupt gzip file?)",
                       LOOM_ERR_IO);
    if (in->bad())
      throw sdk::error(name + ": read error", LOOM_ERR_IO);
  }
};

inline bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

/// Opens a file; a name ending in .gz is decompressed with zlib.
inline std::unique_ptr<named_input> open_file(const std::string& path) {
  auto in = std::make_unique<named_input>();
  in->name = path;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw sdk::error("cannot open " + path + ": it is a directory", LOOM_ERR_IO);
  if (ends_with(path, ".gz")) {
    errno = 0;
    auto gz = std::make_unique<gz_streambuf>(path);
    in->gz = gz.get();
    in->buf = std::move(gz);
  } else {
    auto fb = std::make_unique<std::filebuf>();
    if (fb->open(path, std::ios::in | std::ios::binary) == nullptr)
      throw sdk::error("cannot open " + path + ": " + std::strerror(errno), LOOM_ERR_IO);
    in->buf = std::move(fb);
  }
  in->in = std::make_unique<std::istream>(in->buf.get());
  return in;
}

/// An in-memory body (e.g. fetched over HTTP), named `name` in rejects.
inline std::unique_ptr<named_input> memory_input(std::string name, std::string body) {
  auto in = std::make_unique<named_input>();
  in->name = std::move(name);
  in->buf = std::make_unique<std::stringbuf>(std::move(body), std::ios::in);
  in->in = std::make_unique<std::istream>(in->buf.get());
  return in;
}

/// Something that opens the next input when the reader gets to it.
using input_opener = std::function<std::unique_ptr<named_input>()>;

inline bool has_glob_chars(std::string_view p) {
  return p.find_first_of("*?[") != std::string_view::npos;
}

/// The files `pattern` names: itself, or every match of a glob in sorted order.
inline std::vector<std::string> expand_glob(const std::string& pattern) {
  if (!has_glob_chars(pattern)) {
    std::error_code ec;
    if (!std::filesystem::exists(pattern, ec))
      throw sdk::error("cannot open " + pattern + ": no such file", LOOM_ERR_IO);
    return {pattern};
  }
  glob_t g{};
  int rc = glob(pattern.c_str(), 0, nullptr, &g);
  std::vector<std::string> out;
  if (rc == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i)
      out.emplace_back(g.gl_pathv[i]);
  globfree(&g);
  if (rc != 0 && rc != GLOB_NOMATCH)
    throw sdk::error("path: cannot expand " + pattern, LOOM_ERR_IO);
  std::erase_if(out, [](const std::string& p) {
    std::error_code ec;
    return std::filesystem::is_directory(p, ec);
  });
  if (out.empty())
    throw sdk::error("path: no file matches " + pattern, LOOM_ERR_IO);
  std::sort(out.begin(), out.end());
  return out;
}

/// Openers for every file of a path parameter (glob and .gz allowed). The files are
/// listed now; each is opened when the reader gets to it.
inline std::vector<input_opener> file_inputs(const std::string& pattern) {
  std::vector<input_opener> out;
  for (auto& p : expand_glob(pattern))
    out.push_back([p] { return open_file(p); });
  return out;
}

// ---- rejects --------------------------------------------------------------------------

/// The `rejects` output: file, line, reason, raw; counts, warns about the first few,
/// and fails once more than max_errors records were rejected.
class reject_log {
public:
  explicit reject_log(int64_t max_errors = -1) : max_errors_(max_errors) {
    b_.add_column("file", col_type::string, false);
    b_.add_column("line", col_type::i64, false);
    b_.add_column("reason", col_type::string, false);
    b_.add_column("raw", col_type::string, false);
  }

  void add(sdk::context& ctx, std::string_view file, uint64_t line, const std::string& reason,
           std::string_view raw) {
    ++count_;
    ctx.add_rejected(1);
    b_.append_string(0, file);
    b_.append_i64(1, static_cast<int64_t>(line));
    b_.append_string(2, reason);
    b_.append_string(3, utf8_invalid_at(raw) == std::string_view::npos ? std::string(raw) : utf8_sanitize(raw));
    b_.end_row();
    std::string where = std::string(file) + (line ? ":" + std::to_string(line) : std::string());
    if (count_ <= 5)
      ctx.warn(where + ": rejected: " + reason);
    if (max_errors_ >= 0 && count_ > static_cast<uint64_t>(max_errors_))
      throw sdk::error(where + ": " + reason + " (" + std::to_string(count_) +
                         " records rejected, more than max_errors = " + std::to_string(max_errors_) + ")",
                       LOOM_ERR_BAD_DATA);
  }

  /// Emits the rejects gathered so far on `port`.
  void flush(sdk::context& ctx, uint32_t port) {
    if (b_.num_rows() > 0)
      ctx.emit(port, b_.finish(seq_++));
  }
  uint64_t count() const { return count_; }

private:
  sdk::frame_builder b_;
  int64_t max_errors_;
  uint64_t count_ = 0, seq_ = 0;
};

// ---- options shared by the table ingesters ------------------------------------------------

struct table_options {
  int64_t frame_rows = 8192;
  int64_t infer_rows = 1000;
  int64_t max_errors = -1;
  nlohmann::json schema; ///< column -> type name, or null
};

inline table_options read_table_options(const sdk::context& ctx) {
  table_options o;
  o.frame_rows = ctx.param_int("frame_rows");
  o.infer_rows = ctx.param_int("infer_rows");
  o.max_errors = ctx.param_int("max_errors");
  if (o.frame_rows <= 0)
    throw sdk::error("frame_rows must be positive, got " + std::to_string(o.frame_rows));
  if (o.infer_rows <= 0)
    throw sdk::error("infer_rows must be positive, got " + std::to_string(o.infer_rows));
  if (ctx.has_param("schema")) {
    o.schema = sdk::params(ctx).at("schema");
    if (!o.schema.is_null() && !o.schema.is_object())
      throw sdk::error("schema: expected a map of column name -> type");
    for (auto& [k, v] : o.schema.items()) {
      if (!v.is_string())
        throw sdk::error("schema: the type of column '" + k + "' must be a string such as \"f64\"");
      type_from_name(v.get<std::string>(), k);
    }
  }
  return o;
}

/// Parameters every table ingester declares.
inline std::vector<sdk::param> table_params() {
  return {
    {"frame_rows", LOOM_PARAM_INT, false, "8192", "rows per emitted frame"},
    {"infer_rows", LOOM_PARAM_INT, false, "1000", "records sampled (from the start) to infer column types"},
    {"max_errors", LOOM_PARAM_INT, false, "-1",
     "fail the node when more than this many records are rejected (-1: never; 0: fail on the first)"},
    {"schema", LOOM_PARAM_MAP, false, nullptr,
     "column name -> type (i64, f64, f32, bool, string); overrides the inferred type"},
  };
}

// ---- output files -------------------------------------------------------------------------

using sdk::atomic_file;

// ---- the ingest loop ---------------------------------------------------------------------

/// The streaming loop of the table ingesters (CSV, JSON Lines): the records sampled
/// for type inference are emitted first, then fresh ones, one frame per call. Derived
/// provides start(ctx) (reads the sample into sample_, declares out_'s columns),
/// read(ctx, Record&) (false at the end) and add(ctx, const Record&) (appends a row
/// to out_ or rejects the record).
template <class Derived, class Record>
class sampled_table {
public:
  /// Emits at most one frame of rows (port `out`) and the rejects so far (port
  /// `rej`); true when the table is finished.
  bool produce(sdk::context& ctx, uint32_t out = 0, uint32_t rej = 1) {
    auto& self = static_cast<Derived&>(*this);
    if (!started_)
      self.start(ctx);
    if (ctx.cancelled())
      throw sdk::error("cancelled", LOOM_ERR_CANCELLED);
    while (out_.num_rows() < frame_rows_) {
      if (!sample_.empty()) {
        auto rec = std::move(sample_.front());
        sample_.pop_front();
        self.add(ctx, rec);
        continue;
      }
      if (!self.read(ctx, scratch_))
        break;
      self.add(ctx, scratch_);
    }
    rejects_.flush(ctx, rej);
    if (out_.num_rows() > 0)
      ctx.emit(out, out_.finish(seq_++));
    return eof_ && sample_.empty();
  }

protected:
  sampled_table(int64_t max_errors, int64_t frame_rows)
    : rejects_(max_errors), frame_rows_(static_cast<size_t>(frame_rows)) {}

  reject_log rejects_;
  bool started_ = false, eof_ = false;
  std::deque<Record> sample_;
  Record scratch_;
  sdk::frame_builder out_;
  uint64_t seq_ = 0;

private:
  size_t frame_rows_;
};

} // namespace loom::ops

