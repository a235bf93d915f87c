// Building and reading Frame messages without touching FlatBuffers by hand.
//
//   loom::sdk::frame_builder b;
//   auto x = b.add_column("x", loom::sdk::col_type::f64);
//   auto s = b.add_column("name", loom::sdk::col_type::string);
//   b.append_f64(x, 1.5); b.append_string(s, "a"); b.end_row();
//   ctx.emit(0, b.finish(sequence));
//
//   auto f = loom::sdk::frame_view::of(msg);    // verifies the buffer first
//   for (size_t r = 0; r < f.num_rows(); ++r) f.f64(0, r);
//
// frame_view throws loom::sdk::error(LOOM_ERR_BAD_DATA) for bytes that are not a
// valid Frame, and for reads of the wrong type or out of range.
#pragma once

#include <loom/fb/frame_generated.h>
#include <loom/sdk.hpp>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace loom::sdk {

enum class col_type : int8_t { f32 = 0, f64 = 1, i64 = 2, boolean = 3, string = 4 };

inline const char* to_string(col_type t) {
  switch (t) {
    case col_type::f32: return "f32";
    case col_type::f64: return "f64";
    case col_type::i64: return "i64";
    case col_type::boolean: return "bool";
    case col_type::string: return "string";
  }
  return "?";
}

struct field {
  std::string name;
  col_type type = col_type::string;
  bool nullable = true;
};

/// Read access to a verified Frame. The view borrows the bytes.
class frame_view {
public:
  /// Verifies `bytes` as a Frame; throws error(LOOM_ERR_BAD_DATA) if they are not one.
  static frame_view of(std::span<const uint8_t> bytes) {
    // root offset + file identifier come first; shorter is not a FlatBuffer at all
    if (bytes.data() == nullptr || bytes.size() < 8)
      throw error("message of " + std::to_string(bytes.size()) + " bytes is not a Frame", LOOM_ERR_BAD_DATA);
    flatbuffers::Verifier v(bytes.data(), bytes.size());
    if (!fb::FrameBufferHasIdentifier(bytes.data()) || !fb::VerifyFrameBuffer(v))
      throw error("message is not a valid Frame", LOOM_ERR_BAD_DATA);
    frame_view f(fb::GetFrame(bytes.data()));
    f.check_shape();
    return f;
  }
  static frame_view of(const message& msg) { return of(msg.bytes()); }

  size_t num_rows() const { return static_cast<size_t>(frame_->num_rows()); }
  size_t num_columns() const { return frame_->schema()->size(); }
  uint64_t sequence() const { return frame_->sequence(); }
  std::string_view name(size_t col) const { return frame_->schema()->Get(col)->name()->string_view(); }
  col_type type(size_t col) const { return static_cast<col_type>(frame_->schema()->Get(col)->type()); }
  bool nullable(size_t col) const { return frame_->schema()->Get(col)->nullable(); }
  /// Index of the column called `n`, or -1.
  int index(std::string_view n) const {
    for (size_t i = 0; i < num_columns(); ++i)
      if (name(i) == n)
        return static_cast<int>(i);
    return -1;
  }
  /// Index of the column called `n`; throws error(LOOM_ERR_BAD_DATA) naming it and
  /// listing the columns present when there is none.
  size_t require(std::string_view n) const {
    int i = index(n);
    if (i < 0)
      throw error("no column '" + std::string(n) + "' in the input (columns: " + describe_columns() + ")",
                  LOOM_ERR_BAD_DATA);
    return static_cast<size_t>(i);
  }
  /// "a (string), b (f64)": the columns, for error messages.
  std::string describe_columns() const;
  std::vector<field> schema() const {
    std::vector<field> out;
    for (size_t i = 0; i < num_columns(); ++i)
      out.push_back({std::string(name(i)), type(i), nullable(i)});
    return out;
  }

  bool valid(size_t col, size_t row) const {
    auto* v = column(col)->validity();
    if (v == nullptr || v->size() == 0)
      return true;
    return (v->Get(row / 8) >> (row % 8)) & 1;
  }
  float f32(size_t col, size_t row) const { return column(col)->f32()->Get(row); }
  double f64(size_t col, size_t row) const { return column(col)->f64()->Get(row); }
  int64_t i64(size_t col, size_t row) const { return column(col)->i64()->Get(row); }
  bool boolean(size_t col, size_t row) const { return column(col)->bools()->Get(row) != 0; }
  std::string_view str(size_t col, size_t row) const {
    auto* c = column(col);
    auto begin = c->offsets()->Get(row);
    auto end = c->offsets()->Get(row + 1);
    return {reinterpret_cast<const char*>(c->chars()->data()) + begin, end - begin};
  }
  /// Any numeric or bool cell as a double (nulls are the caller's business).
  double number(size_t col, size_t row) const {
    switch (type(col)) {
      case col_type::f32: return f32(col, row);
      case col_type::f64: return f64(col, row);
      case col_type::i64: return static_cast<double>(i64(col, row));
      case col_type::boolean: return boolean(col, row) ? 1.0 : 0.0;
      case col_type::string: break;
    }
    throw error("column '" + std::string(name(col)) + "' is a string, not a number", LOOM_ERR_BAD_DATA);
  }
  /// A cell as text: how CSV writes it ("" for null, shortest round-trip numbers).
  std::string text(size_t col, size_t row) const {
    if (!valid(col, row))
      return {};
    char buf[64];
    switch (type(col)) {
      case col_type::f32: {
        auto r = std::to_chars(buf, buf + sizeof buf, f32(col, row));
        return std::string(buf, r.ptr);
      }
      case col_type::f64: {
        auto r = std::to_chars(buf, buf + sizeof buf, f64(col, row));
        return std::string(buf, r.ptr);
      }
      case col_type::i64: {
        auto r = std::to_chars(buf, buf + sizeof buf, i64(col, row));
        return std::string(buf, r.ptr);
      }
      case col_type::boolean: return boolean(col, row) ? "true" : "false";
      case col_type::string: return std::string(str(col, row));
    }
    return {};
  }

  const fb::Frame* raw() const { return frame_; }

private:
  explicit frame_view(const fb::Frame* f) : frame_(f) {}
  const fb::Column* column(size_t col) const { return frame_->columns()->Get(col); }

  // The verifier checks buffer bounds; this checks that every column has the vector
  // its type needs, with num_rows entries, so accessors cannot read out of range.
  void check_shape() const {
    if (frame_->columns()->size() != frame_->schema()->size())
      throw error("Frame has " + std::to_string(frame_->columns()->size()) + " columns but " +
                    std::to_string(frame_->schema()->size()) + " fields",
                  LOOM_ERR_BAD_DATA);
    const size_t rows = num_rows();
    for (size_t i = 0; i < num_columns(); ++i) {
      auto* c = column(i);
      size_t n = 0;
      bool ok = true;
      switch (type(i)) {
        case col_type::f32: n = c->f32() ? c->f32()->size() : 0; break;
        case col_type::f64: n = c->f64() ? c->f64()->size() : 0; break;
        case col_type::i64: n = c->i64() ? c->i64()->size() : 0; break;
        case col_type::boolean: n = c->bools() ? c->bools()->size() : 0; break;
        case col_type::string: {
          auto* o = c->offsets();
          n = o && o->size() > 0 ? o->size() - 1 : 0;
          if (n == rows && rows > 0) {
            uint32_t prev = 0;
            size_t chars = c->chars() ? c->chars()->size() : 0;
            for (size_t k = 0; k < o->size() && ok; ++k) {
              ok = o->Get(k) >= prev && o->Get(k) <= chars;
              prev = o->Get(k);
            }
          }
          break;
        }
        default: ok = false;
      }
      auto* v = c->validity();
      if (v && v->size() != 0 && v->size() < (rows + 7) / 8)
        ok = false;
      if (!ok || (n != rows && !(rows == 0 && n == 0)))
        throw error("Frame column '" + std::string(name(i)) + "' is malformed", LOOM_ERR_BAD_DATA);
    }
  }

  const fb::Frame* frame_;
};

/// "a (string), b (f64)": columns, for error messages.
inline std::string describe_fields(const std::vector<field>& s) {
  std::string out;
  for (size_t c = 0; c < s.size(); ++c)
    out += (c ? ", " : "") + s[c].name + " (" + to_string(s[c].type) + ")";
  return out;
}

/// Keeps the columns of the first frame of a stream and refuses a later frame whose
/// column names or types differ (nullability may change from frame to frame): an
/// operator's input must keep its schema mid-stream. `what` starts the error message
/// (the operator, or "join: left input").
class schema_guard {
public:
  explicit schema_guard(std::string what = {}) : what_(std::move(what)) {}
  /// true on the first frame; throws (LOOM_ERR_BAD_DATA) on a frame with other columns
  bool check(const frame_view& f) {
    auto s = f.schema();
    if (!known_) {
      schema_ = std::move(s);
      known_ = true;
      return true;
    }
    bool same = s.size() == schema_.size();
    for (size_t i = 0; same && i < s.size(); ++i)
      same = s[i].name == schema_[i].name && s[i].type == schema_[i].type;
    if (!same)
      throw error((what_.empty() ? "" : what_ + ": ") + "frame " + std::to_string(f.sequence()) + " has columns " +
                    describe_fields(s) + ", but the first frame had " + describe_fields(schema_),
                  LOOM_ERR_BAD_DATA);
    return false;
  }
  bool known() const { return known_; }
  /// The first frame's columns.
  const std::vector<field>& schema() const { return schema_; }

private:
  std::string what_;
  bool known_ = false;
  std::vector<field> schema_;
};

/// Builds Frames column by column. Append one value (or null) to every column, then
/// end_row(); finish() produces the message and clears the rows (the schema stays).
class frame_builder {
public:
  frame_builder() = default;
  explicit frame_builder(const std::vector<field>& schema) {
    for (auto& f : schema)
      add_column(f.name, f.type, f.nullable);
  }

  size_t add_column(std::string name, col_type type, bool nullable = true) {
    cols_.push_back(col{{std::move(name), type, nullable}, {}, {}, {}, {}, {}, {0}, {}, false});
    return cols_.size() - 1;
  }
  size_t num_columns() const { return cols_.size(); }
  size_t num_rows() const { return rows_; }
  const field& column(size_t i) const { return cols_[i].f; }

  void append_null(size_t c) {
    auto& x = cols_.at(c);
    mark(x, false);
    switch (x.f.type) {
      case col_type::f32: x.f32.push_back(0); break;
      case col_type::f64: x.f64.push_back(0); break;
      case col_type::i64: x.i64.push_back(0); break;
      case col_type::boolean: x.bools.push_back(0); break;
      case col_type::string: x.offsets.push_back(static_cast<uint32_t>(x.chars.size())); break;
    }
  }
  void append_f32(size_t c, float v) { auto& x = typed(c, col_type::f32); mark(x, true); x.f32.push_back(v); }
  void append_f64(size_t c, double v) { auto& x = typed(c, col_type::f64); mark(x, true); x.f64.push_back(v); }
  void append_i64(size_t c, int64_t v) { auto& x = typed(c, col_type::i64); mark(x, true); x.i64.push_back(v); }
  void append_bool(size_t c, bool v) { auto& x = typed(c, col_type::boolean); mark(x, true); x.bools.push_back(v ? 1 : 0); }
  void append_string(size_t c, std::string_view v) {
    auto& x = typed(c, col_type::string);
    mark(x, true);
    x.chars.insert(x.chars.end(), v.begin(), v.end());
    x.offsets.push_back(static_cast<uint32_t>(x.chars.size()));
  }
  /// Bulk appends: the values of many rows to column c at once (the type must be the
  /// column's), much cheaper per value than one append_* call each. `valid`, if given,
  /// holds one byte per value: 1 for a value, 0 for a null (the value of a null is kept as
  /// given and means nothing; 0 is customary). Once every column has the values of n more
  /// rows, close them with end_rows(n).
  void append_f32s(size_t c, std::span<const float> values, const uint8_t* valid = nullptr) {
    auto& x = typed(c, col_type::f32);
    mark_run(x, values.size(), valid);
    x.f32.insert(x.f32.end(), values.begin(), values.end());
  }
  void append_f64s(size_t c, std::span<const double> values, const uint8_t* valid = nullptr) {
    auto& x = typed(c, col_type::f64);
    mark_run(x, values.size(), valid);
    x.f64.insert(x.f64.end(), values.begin(), values.end());
  }
  void append_i64s(size_t c, std::span<const int64_t> values, const uint8_t* valid = nullptr) {
    auto& x = typed(c, col_type::i64);
    mark_run(x, values.size(), valid);
    x.i64.insert(x.i64.end(), values.begin(), values.end());
  }
  /// `values`: 0 for false, 1 for true.
  void append_bools(size_t c, std::span<const uint8_t> values, const uint8_t* valid = nullptr) {
    auto& x = typed(c, col_type::boolean);
    mark_run(x, values.size(), valid);
    x.bools.insert(x.bools.end(), values.begin(), values.end());
  }
  /// offsets.size() - 1 strings: string i is chars[offsets[i], offsets[i + 1]) (the offsets
  /// ascend; offsets[0] need not be 0, so a slice of a longer run can be passed).
  void append_strings(size_t c, std::span<const uint32_t> offsets, const char* chars,
                      const uint8_t* valid = nullptr) {
    auto& x = typed(c, col_type::string);
    if (offsets.size() < 2)
      return;
    const size_t n = offsets.size() - 1;
    if (offsets[n] < offsets[0])
      throw error("frame_builder: column '" + x.f.name + "': string offsets descend", LOOM_ERR_INTERNAL);
    mark_run(x, n, valid);
    const size_t base = x.chars.size();
    const auto* bytes = reinterpret_cast<const uint8_t*>(chars); // same type: a memcpy
    x.chars.insert(x.chars.end(), bytes + offsets[0], bytes + offsets[n]);
    const size_t at = x.offsets.size();
    x.offsets.resize(at + n);
    const uint32_t shift = static_cast<uint32_t>(base) - offsets[0]; // modulo 2^32, exact
    for (size_t i = 0; i < n; ++i)
      x.offsets[at + i] = offsets[i + 1] + shift;
  }
  /// Closes n rows appended with the bulk appends (or one value at a time); throws if a
  /// column does not have a value for each of them.
  void end_rows(size_t n) {
    rows_ += n;
    for (auto& x : cols_)
      if (x.count != rows_)
        throw error("frame_builder: column '" + x.f.name + "' has " + std::to_string(x.count) +
                      " values, not " + std::to_string(rows_),
                    LOOM_ERR_INTERNAL);
  }

  /// Copies cell (col, row) of `src` into column c (types must match).
  void append_from(size_t c, const frame_view& src, size_t col, size_t row) {
    if (!src.valid(col, row))
      return append_null(c);
    switch (src.type(col)) {
      case col_type::f32: return append_f32(c, src.f32(col, row));
      case col_type::f64: return append_f64(c, src.f64(col, row));
      case col_type::i64: return append_i64(c, src.i64(col, row));
      case col_type::boolean: return append_bool(c, src.boolean(col, row));
      case col_type::string: return append_string(c, src.str(col, row));
    }
  }
  /// Closes a row; throws if a column got no value.
  void end_row() {
    ++rows_;
    for (auto& x : cols_)
      if (x.count != rows_)
        throw error("frame_builder: column '" + x.f.name + "' has " + std::to_string(x.count) +
                      " values in row " + std::to_string(rows_),
                    LOOM_ERR_INTERNAL);
  }

  flatbuffers::DetachedBuffer finish(uint64_t sequence) {
    flatbuffers::FlatBufferBuilder b(1024 + bytes_estimate());
    std::vector<flatbuffers::Offset<fb::Field>> fields;
    std::vector<flatbuffers::Offset<fb::Column>> columns;
    for (auto& x : cols_) {
      fields.push_back(fb::CreateField(b, b.CreateString(x.f.name),
                                       static_cast<fb::ColumnType>(x.f.type), x.f.nullable));
      auto validity = x.has_null ? b.CreateVector(x.validity.data(), (rows_ + 7) / 8)
                                 : flatbuffers::Offset<flatbuffers::Vector<uint8_t>>();
      flatbuffers::Offset<flatbuffers::Vector<float>> f32;
      flatbuffers::Offset<flatbuffers::Vector<double>> f64;
      flatbuffers::Offset<flatbuffers::Vector<int64_t>> i64;
      flatbuffers::Offset<flatbuffers::Vector<uint8_t>> bools, chars;
      flatbuffers::Offset<flatbuffers::Vector<uint32_t>> offsets;
      switch (x.f.type) {
        case col_type::f32: f32 = b.CreateVector(x.f32); break;
        case col_type::f64: f64 = b.CreateVector(x.f64); break;
        case col_type::i64: i64 = b.CreateVector(x.i64); break;
        case col_type::boolean: bools = b.CreateVector(x.bools); break;
        case col_type::string:
          offsets = b.CreateVector(x.offsets);
          chars = b.CreateVector(x.chars);
          break;
      }
      columns.push_back(fb::CreateColumn(b, validity, f32, f64, i64, bools, offsets, chars));
    }
    auto frame = fb::CreateFrame(b, b.CreateVector(fields), b.CreateVector(columns), rows_, sequence);
    fb::FinishFrameBuffer(b, frame);
    clear();
    return b.Release();
  }

  /// Drops the rows, keeps the schema.
  void clear() {
    rows_ = 0;
    for (auto& x : cols_) {
      x.f32.clear(); x.f64.clear(); x.i64.clear(); x.bools.clear(); x.chars.clear();
      x.offsets.assign(1, 0);
      x.validity.clear();
      x.count = 0;
      x.has_null = false;
    }
  }

private:
  struct col {
    field f;
    std::vector<float> f32;
    std::vector<double> f64;
    std::vector<int64_t> i64;
    std::vector<uint8_t> bools;
    std::vector<uint8_t> chars;
    std::vector<uint32_t> offsets;
    std::vector<uint8_t> validity;
    bool has_null;
    size_t count = 0;
  };
  col& typed(size_t c, col_type t) {
    if (c >= cols_.size())
      throw error("frame_builder: no column " + std::to_string(c), LOOM_ERR_INTERNAL);
    auto& x = cols_[c];
    if (x.f.type != t) [[unlikely]]
      throw error("frame_builder: column '" + x.f.name + "' is " + to_string(x.f.type) +
                    ", not " + to_string(t),
                  LOOM_ERR_INTERNAL);
    return x;
  }
  // The validity bitmap exists only once a column has a null: until then a value is
  // just counted, and the first null fills in the bits of the rows before it.
  void mark(col& x, bool valid) {
    size_t row = x.count++;
    if (valid && !x.has_null)
      return;
    if (!x.has_null) {
      x.has_null = true;
      x.validity.assign((row + 8) / 8, 0);
      for (size_t r = 0; r < row; ++r)
        x.validity[r / 8] |= static_cast<uint8_t>(1u << (r % 8));
    }
    if (row / 8 >= x.validity.size())
      x.validity.push_back(0);
    if (valid)
      x.validity[row / 8] |= static_cast<uint8_t>(1u << (row % 8));
  }
  // mark() for n values at once; valid: one byte per value (0 null, 1 valid), or null.
  void mark_run(col& x, size_t n, const uint8_t* valid) {
    const size_t row0 = x.count;
    x.count += n;
    if (n == 0 || ((valid == nullptr || std::memchr(valid, 0, n) == nullptr) && !x.has_null))
      return; // no null so far: no bitmap
    if (!x.has_null) {
      x.has_null = true;
      x.validity.assign((row0 + 7) / 8, 0);
      for (size_t r = 0; r < row0; ++r)
        x.validity[r / 8] |= static_cast<uint8_t>(1u << (r % 8));
    }
    x.validity.resize((x.count + 7) / 8, 0);
    uint8_t* bits = x.validity.data();
    size_t i = 0;
    if (valid == nullptr) {
      for (; i < n; ++i)
        bits[(row0 + i) / 8] |= static_cast<uint8_t>(1u << ((row0 + i) % 8));
      return;
    }
    // eight bytes (each 0 or 1) to eight bits: the multiply gathers byte k's low bit
    // into bit 56 + k, with no carries between them
    const unsigned shift = row0 % 8;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, valid + i, 8);
      auto byte = static_cast<uint8_t>(((w & 0x0101010101010101ull) * 0x0102040810204080ull) >> 56);
      size_t at = (row0 + i) / 8;
      bits[at] |= static_cast<uint8_t>(byte << shift);
      if (shift != 0 && byte >> (8 - shift) != 0)
        bits[at + 1] |= static_cast<uint8_t>(byte >> (8 - shift));
    }
    for (; i < n; ++i)
      if (valid[i] != 0)
        bits[(row0 + i) / 8] |= static_cast<uint8_t>(1u << ((row0 + i) % 8));
  }
  size_t bytes_estimate() const {
    size_t n = 0;
    for (auto& x : cols_)
      n += x.f32.size() * 4 + x.f64.size() * 8 + x.i64.size() * 8 + x.bools.size() + x.chars.size() +
           x.offsets.size() * 4 + x.validity.size();
    return n;
  }

  std::vector<col> cols_;
  size_t rows_ = 0;
};

inline std::string frame_view::describe_columns() const { return describe_fields(schema()); }

} // namespace loom::sdk
