// ingest.csv — reads an RFC 4180 CSV file into Frames.
#include "csv.hpp"
#include "io_ops.hpp"

#include <loom/frame.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <deque>
#include <cmath>
#include <fstream>
#include <memory>

namespace loom::ops {

namespace {

using sdk::col_type;

/// Parses all of `s` (a leading '+' allowed) as a T.
template <class T>
bool parse_whole(std::string_view s, T& out) {
  if (s.empty())
    return false;
  const char* b = s.data() + (s.front() == '+' ? 1 : 0);
  auto r = std::from_chars(b, s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool parse_i64(std::string_view s, int64_t& out) {
  return parse_whole(s, out);
}

bool parse_f64(std::string_view s, double& out) {
  if (parse_whole(s, out))
    return true;
  if (s == "nan" || s == "NaN") {
    out = std::nan("");
    return true;
  }
  return false;
}

bool parse_bool(std::string_view s, bool& out) {
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

col_type type_from_name(const std::string& n) {
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
  throw sdk::error("unknown column type '" + n + "' in schema (use i64, f64, f32, bool, string)");
}

} // namespace

class csv_source final : public sdk::op {
public:
  static sdk::op_spec spec() {
    sdk::op_spec s{
      "ingest.csv", "0.1.0",
      "Reads a CSV file (RFC 4180) into frames. Quoted fields may hold delimiters, doubled "
      "quotes and line breaks; CRLF and LF line ends and a UTF-8 byte order mark are accepted. "
      "Column types (i64, f64, bool, string) are inferred from the first `infer_rows` records "
      "unless given in `schema`; empty fields are nulls. A record with the wrong number of "
      "fields, an unterminated quote, or a value that does not parse as its column's type is "
      "rejected: it goes to the `rejects` output (file, line, reason, raw text) and is counted, "
      "and the run fails only when more than `max_errors` records were rejected.",
      "- id: load\n  op: ingest.csv\n  with: {path: data/iris.csv, delimiter: \",\", header: true}\n"};
    s.outputs = {{"out", LOOM_MSG_FRAME, "the table, as frames of at most frame_rows rows"},
                 {"rejects", LOOM_MSG_FRAME, "rejected records: file, line, reason, raw"}};
    s.params = {
      {"path", LOOM_PARAM_STRING, true, nullptr, "CSV file, relative to the graph file"},
      {"delimiter", LOOM_PARAM_STRING, false, "\",\"", "field delimiter: one character, or \"tab\""},
      {"header", LOOM_PARAM_BOOL, false, "true", "the first record holds column names"},
      {"frame_rows", LOOM_PARAM_INT, false, "8192", "rows per emitted frame"},
      {"infer_rows", LOOM_PARAM_INT, false, "1000", "records sampled to infer column types"},
      {"max_errors", LOOM_PARAM_INT, false, "-1", "fail when more records are rejected (-1: never)"},
      {"schema", LOOM_PARAM_MAP, false, nullptr, "column name -> type (i64, f64, bool, string) overrides"},
    };
    return s;
  }

  explicit csv_source(sdk::context& ctx) {
    path_ = ctx.resolve_path(ctx.param_string("path"));
    delim_ = csv_delimiter(ctx.param_string("delimiter"));
    header_ = ctx.param_bool("header");
    frame_rows_ = ctx.param_int("frame_rows");
    infer_rows_ = ctx.param_int("infer_rows");
    max_errors_ = ctx.param_int("max_errors");
    if (frame_rows_ <= 0)
      throw sdk::error("frame_rows must be positive, got " + std::to_string(frame_rows_));
    if (infer_rows_ <= 0)
      throw sdk::error("infer_rows must be positive, got " + std::to_string(infer_rows_));
    if (ctx.has_param("schema"))
      schema_ = nlohmann::json::parse(ctx.params_json()).at("schema");
    in_.open(path_, std::ios::binary);
    if (!in_)
      throw sdk::error("cannot open " + path_ + ": " + std::strerror(errno), LOOM_ERR_IO);
    reader_ = std::make_unique<csv_reader>(in_, delim_);
  }

  bool produce(sdk::context& ctx) override {
    if (!started_)
      start(ctx);
    if (ctx.cancelled())
      throw sdk::error("cancelled", LOOM_ERR_CANCELLED);
    // first the sampled records, then fresh ones
    while (out_.num_rows() < static_cast<size_t>(frame_rows_)) {
      if (!sample_.empty()) {
        auto rec = std::move(sample_.front());
        sample_.pop_front();
        add(ctx, rec);
        continue;
      }
      record rec;
      if (!read(ctx, rec))
        break;
      add(ctx, rec);
    }
    flush_rejects(ctx);
    if (out_.num_rows() > 0)
      ctx.emit(0, out_.finish(seq_++));
    return eof_ && sample_.empty();
  }

private:
  struct record {
    std::vector<std::string> fields;
    uint64_t line = 0;
    std::string raw;
  };

  bool read(sdk::context& ctx, record& rec) {
    while (!eof_) {
      auto st = reader_->next(rec.fields, rec.line, rec.raw);
      if (st == csv_reader::status::eof) {
        eof_ = true;
        return false;
      }
      if (st == csv_reader::status::unterminated_quote) {
        eof_ = true;
        reject(ctx, rec.line, "unterminated quoted field", rec.raw);
        return false;
      }
      if (rec.fields.size() == 1 && rec.fields[0].empty() && rec.raw.empty())
        continue; // blank line
      if (ncols_ != 0 && rec.fields.size() != ncols_) {
        reject(ctx, rec.line,
               "expected " + std::to_string(ncols_) + " fields, found " + std::to_string(rec.fields.size()),
               rec.raw);
        continue;
      }
      return true;
    }
    return false;
  }

  void start(sdk::context& ctx) {
    started_ = true;
    rejects_.add_column("file", col_type::string, false);
    rejects_.add_column("line", col_type::i64, false);
    rejects_.add_column("reason", col_type::string, false);
    rejects_.add_column("raw", col_type::string, false);
    std::vector<std::string> names;
    record first;
    if (!read(ctx, first))
      throw sdk::error(path_ + ": the file is empty", LOOM_ERR_BAD_DATA);
    ncols_ = first.fields.size();
    if (header_) {
      names = first.fields;
    } else {
      for (size_t i = 0; i < ncols_; ++i)
        names.push_back("c" + std::to_string(i));
      sample_.push_back(std::move(first));
    }
    // sample records to infer types
    while (sample_.size() < static_cast<size_t>(infer_rows_)) {
      record rec;
      if (!read(ctx, rec))
        break;
      sample_.push_back(std::move(rec));
    }
    std::vector<col_type> types(ncols_, col_type::i64);
    std::vector<bool> seen(ncols_, false);
    for (size_t c = 0; c < ncols_; ++c) {
      bool can_i64 = true, can_f64 = true, can_bool = true;
      for (auto& rec : sample_) {
        auto& v = rec.fields[c];
        if (v.empty())
          continue;
        seen[c] = true;
        int64_t i;
        double d;
        bool b;
        can_i64 = can_i64 && parse_i64(v, i);
        can_f64 = can_f64 && parse_f64(v, d);
        can_bool = can_bool && parse_bool(v, b);
      }
      types[c] = !seen[c] ? col_type::string
                 : can_i64 ? col_type::i64
                 : can_f64 ? col_type::f64
                 : can_bool ? col_type::boolean
                            : col_type::string;
    }
    if (!schema_.is_null())
      apply_schema(names, types);
    for (size_t c = 0; c < ncols_; ++c)
      out_.add_column(names[c], types[c], true);
  }

  void apply_schema(const std::vector<std::string>& names, std::vector<col_type>& types) {
    for (auto& [key, value] : schema_.items()) {
      auto it = std::find(names.begin(), names.end(), key);
      if (it == names.end())
        throw sdk::error("schema names column '" + key + "', which is not in " + path_);
      if (!value.is_string())
        throw sdk::error("schema: the type of column '" + key + "' must be a string such as \"f64\"");
      types[it - names.begin()] = type_from_name(value.get<std::string>());
    }
  }

  void add(sdk::context& ctx, const record& rec) {
    // check every value before appending, so a bad record leaves no partial row
    for (size_t c = 0; c < ncols_; ++c) {
      auto& v = rec.fields[c];
      if (v.empty())
        continue;
      int64_t i;
      double d;
      bool b;
      bool ok = true;
      switch (out_.column(c).type) {
        case col_type::i64: ok = parse_i64(v, i); break;
        case col_type::f64:
        case col_type::f32: ok = parse_f64(v, d); break;
        case col_type::boolean: ok = parse_bool(v, b); break;
        case col_type::string: break;
      }
      if (!ok) {
        reject(ctx, rec.line,
               "column '" + out_.column(c).name + "': '" + v + "' is not a valid " + sdk::to_string(out_.column(c).type),
               rec.raw);
        return;
      }
    }
    for (size_t c = 0; c < ncols_; ++c) {
      auto& v = rec.fields[c];
      if (v.empty()) {
        out_.append_null(c);
        continue;
      }
      int64_t i = 0;
      double d = 0;
      bool b = false;
      switch (out_.column(c).type) {
        case col_type::i64: parse_i64(v, i); out_.append_i64(c, i); break;
        case col_type::f64: parse_f64(v, d); out_.append_f64(c, d); break;
        case col_type::f32: parse_f64(v, d); out_.append_f32(c, static_cast<float>(d)); break;
        case col_type::boolean: parse_bool(v, b); out_.append_bool(c, b); break;
        case col_type::string: out_.append_string(c, v); break;
      }
    }
    out_.end_row();
  }

  void reject(sdk::context& ctx, uint64_t line, const std::string& reason, const std::string& raw) {
    ++rejected_;
    ctx.add_rejected(1);
    rejects_.append_string(0, path_);
    rejects_.append_i64(1, static_cast<int64_t>(line));
    rejects_.append_string(2, reason);
    rejects_.append_string(3, raw);
    rejects_.end_row();
    if (rejected_ <= 5)
      ctx.warn(path_ + ":" + std::to_string(line) + ": rejected: " + reason);
    if (max_errors_ >= 0 && rejected_ > static_cast<uint64_t>(max_errors_))
      throw sdk::error(path_ + ":" + std::to_string(line) + ": " + reason + " (" + std::to_string(rejected_) +
                         " records rejected, more than max_errors = " + std::to_string(max_errors_) + ")",
                       LOOM_ERR_BAD_DATA);
  }

  void flush_rejects(sdk::context& ctx) {
    if (rejects_.num_rows() > 0)
      ctx.emit(1, rejects_.finish(reject_seq_++));
  }

  std::string path_;
  char delim_ = ',';
  bool header_ = true;
  int64_t frame_rows_ = 8192, infer_rows_ = 1000, max_errors_ = -1;
  nlohmann::json schema_;
  std::ifstream in_;
  std::unique_ptr<csv_reader> reader_;
  bool started_ = false, eof_ = false;
  size_t ncols_ = 0;
  std::deque<record> sample_;
  sdk::frame_builder out_, rejects_;
  uint64_t seq_ = 0, reject_seq_ = 0, rejected_ = 0;
};

const sdk::op_registration csv_source_op = sdk::registration<csv_source>;

} // namespace loom::ops
