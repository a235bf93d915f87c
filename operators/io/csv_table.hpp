// Reading CSV inputs (one or more files, or a body in memory) as one table: used by
// ingest.csv and ingest.http.
#pragma once

#include "csv.hpp"
#include "io_common.hpp"

#include <deque>

namespace loom::ops {

struct csv_options : table_options {
  char delim = ',';
  bool header = true;
  std::vector<std::string> null_values{"", "NA", "null"};
};

/// The parameters of ingest.csv that are not in table_params().
inline std::vector<sdk::param> csv_params() {
  return {
    {"delimiter", LOOM_PARAM_STRING, false, "\",\"", "field delimiter: one character (\",\" \";\" \"|\"), or \"tab\""},
    {"header", LOOM_PARAM_BOOL, false, "true",
     "the first record of each file holds the column names (with several files, all must have the same "
     "header); without a header the columns are named c0, c1, ..."},
    {"null_values", LOOM_PARAM_LIST, false, "[\"\", \"NA\", \"null\"]",
     "field values read as null, compared with the unquoted value (so \"NA\" in quotes is null too); "
     "[] makes every value a value (an empty field is then an empty string)"},
  };
}

inline csv_options read_csv_options(const sdk::context& ctx) {
  csv_options o;
  static_cast<table_options&>(o) = read_table_options(ctx);
  o.delim = csv_delimiter(ctx.param_string("delimiter"));
  o.header = ctx.param_bool("header");
  o.null_values = sdk::param_strings(ctx, "null_values");
  return o;
}

/// One record as read, before its values are typed.
struct csv_record {
  std::vector<std::string> fields;
  uint64_t line = 0;
  std::string raw;
  size_t file = 0; ///< index into the table's file names
};

class csv_table : public sampled_table<csv_table, csv_record> {
public:
  csv_table(csv_options o, std::vector<input_opener> inputs)
    : sampled_table(o.max_errors, o.frame_rows), o_(std::move(o)), inputs_(std::move(inputs)) {}

private:
  friend class sampled_table<csv_table, csv_record>;
  using record = csv_record;

  bool is_null(const std::string& v) const {
    for (auto& n : o_.null_values) // a few short strings: cheaper than hashing every field
      if (n.size() == v.size() && n == v)
        return true;
    return false;
  }

  /// The next data record of any input (headers are consumed here); false at the end
  /// of the last input.
  bool read(sdk::context& ctx, record& rec) {
    while (!eof_) {
      if (reader_ == nullptr && !open_next())
        return false;
      auto st = reader_->next(rec.fields, rec.line, rec.raw);
      rec.file = file_names_.size() - 1;
      const std::string& file = file_names_.back();
      if (st == csv_reader::status::eof) {
        close_current();
        continue;
      }
      if (st == csv_reader::status::unterminated_quote) {
        rejects_.add(ctx, file, rec.line, "unterminated quoted field", rec.raw);
        close_current();
        continue;
      }
      if (rec.fields.size() == 1 && rec.fields[0].empty() && rec.raw.empty())
        continue; // blank line
      if (need_header_) {
        need_header_ = false;
        if (!have_names_) {
          names_ = rec.fields;
          ncols_ = names_.size();
          have_names_ = true;
        } else if (rec.fields != names_) {
          throw sdk::error(file + ":" + std::to_string(rec.line) + ": the header (" + join(rec.fields) +
                             ") differs from the header of " + file_names_.front() + " (" + join(names_) +
                             "); all files of one table must have the same columns",
                           LOOM_ERR_BAD_DATA);
        }
        continue;
      }
      if (ncols_ == 0)
        ncols_ = rec.fields.size(); // no header: the first record decides
      if (rec.fields.size() != ncols_) {
        rejects_.add(ctx, file, rec.line,
                     "expected " + std::to_string(ncols_) + " fields, found " + std::to_string(rec.fields.size()),
                     rec.raw);
        continue;
      }
      return true;
    }
    return false;
  }

  bool open_next() {
    if (next_input_ >= inputs_.size()) {
      eof_ = true;
      return false;
    }
    current_ = inputs_[next_input_++]();
    file_names_.push_back(current_->name);
    reader_ = std::make_unique<csv_reader>(*current_->in, o_.delim);
    need_header_ = o_.header;
    return true;
  }

  void close_current() {
    current_->check();
    reader_.reset();
    current_.reset();
  }

  static std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i)
      s += (i ? "," : "") + v[i];
    return s;
  }

  void start(sdk::context& ctx) {
    started_ = true;
    record first;
    bool any = read(ctx, first);
    if (!any && !have_names_)
      throw sdk::error((file_names_.empty() ? std::string("input") : file_names_.front()) +
                         ": no records (the input is empty)",
                       LOOM_ERR_BAD_DATA);
    if (!o_.header)
      for (size_t i = 0; i < ncols_; ++i)
        names_.push_back("c" + std::to_string(i));
    if (any)
      sample_.push_back(std::move(first));
    while (sample_.size() < static_cast<size_t>(o_.infer_rows)) {
      record rec;
      if (!read(ctx, rec))
        break;
      sample_.push_back(std::move(rec));
    }
    std::vector<col_type> types(ncols_, col_type::string);
    for (size_t c = 0; c < ncols_; ++c) {
      bool seen = false, can_i64 = true, can_f64 = true, can_bool = true;
      for (auto& rec : sample_) {
        auto& v = rec.fields[c];
        if (is_null(v))
          continue;
        seen = true;
        int64_t i;
        double d;
        bool b;
        can_i64 = can_i64 && parse_i64(v, i);
        can_f64 = can_f64 && parse_f64(v, d);
        can_bool = can_bool && parse_bool(v, b);
      }
      types[c] = !seen     ? col_type::string
                 : can_i64 ? col_type::i64
                 : can_f64 ? col_type::f64
                 : can_bool ? col_type::boolean
                            : col_type::string;
    }
    if (o_.schema.is_object())
      for (auto& [key, value] : o_.schema.items()) {
        auto it = std::find(names_.begin(), names_.end(), key);
        if (it == names_.end())
          throw sdk::error("schema names column '" + key + "', which is not in " + file_names_.front() +
                           " (columns: " + join(names_) + ")");
        types[it - names_.begin()] = type_from_name(value.get<std::string>(), key);
      }
    for (size_t c = 0; c < ncols_; ++c)
      out_.add_column(names_[c], types[c], true);
  }

  void add(sdk::context& ctx, const record& rec) {
    // parse every value before appending, so a bad record leaves no partial row
    values_.resize(ncols_);
    for (size_t c = 0; c < ncols_; ++c) {
      auto& v = rec.fields[c];
      auto& slot = values_[c];
      slot.null = is_null(v);
      if (slot.null)
        continue;
      bool ok = true;
      switch (out_.column(c).type) {
        case col_type::i64: ok = parse_i64(v, slot.i); break;
        case col_type::f64:
        case col_type::f32: ok = parse_f64(v, slot.d); break;
        case col_type::boolean: ok = parse_bool(v, slot.b); break;
        case col_type::string: break;
      }
      if (!ok) {
        rejects_.add(ctx, file_names_[rec.file], rec.line,
                     "column '" + out_.column(c).name + "': '" + v + "' is not a valid " +
                       sdk::to_string(out_.column(c).type),
                     rec.raw);
        return;
      }
    }
    for (size_t c = 0; c < ncols_; ++c) {
      auto& slot = values_[c];
      if (slot.null) {
        out_.append_null(c);
        continue;
      }
      switch (out_.column(c).type) {
        case col_type::i64: out_.append_i64(c, slot.i); break;
        case col_type::f64: out_.append_f64(c, slot.d); break;
        case col_type::f32: out_.append_f32(c, static_cast<float>(slot.d)); break;
        case col_type::boolean: out_.append_bool(c, slot.b); break;
        case col_type::string: out_.append_string(c, rec.fields[c]); break;
      }
    }
    out_.end_row();
  }

  struct parsed {
    bool null = false;
    int64_t i = 0;
    double d = 0;
    bool b = false;
  };

  csv_options o_;
  std::vector<input_opener> inputs_;
  size_t next_input_ = 0;
  std::unique_ptr<named_input> current_;
  std::unique_ptr<csv_reader> reader_;
  std::vector<std::string> file_names_; ///< every input opened so far, in order
  bool need_header_ = false, have_names_ = false;
  std::vector<std::string> names_;
  size_t ncols_ = 0;
  std::vector<parsed> values_; ///< one record's values, reused
};

} // namespace loom::ops
