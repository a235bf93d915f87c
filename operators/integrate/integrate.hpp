// Shared pieces of the loom-integrate operators (join, union, select, rename, derive):
// schema checks, type promotion and value conversion between column types, and the
// `rejects` frame (a `reason` column plus the row's values).
#pragma once

#include <loom/frame.hpp>
#include <loom/sdk.hpp>

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace loom::ops::integrate {

using sdk::col_type;

extern const sdk::op_registration join_registration;
extern const sdk::op_registration union_registration;
extern const sdk::op_registration select_registration;
extern const sdk::op_registration rename_registration;
extern const sdk::op_registration derive_registration;

using sdk::schema_guard;

inline bool is_numeric(col_type t) {
  return t == col_type::i64 || t == col_type::f64 || t == col_type::f32;
}

/// The type two columns of the same name are promoted to when tables are stacked:
/// equal -> itself; f32+f64, i64+f32, i64+f64 -> f64; bool+i64 -> i64; bool+f32/f64 ->
/// f64; anything with string -> string (the other side as text).
inline col_type promote(col_type a, col_type b) {
  if (a == b)
    return a;
  if (a == col_type::string || b == col_type::string)
    return col_type::string;
  if (a == col_type::boolean)
    std::swap(a, b);
  if (b == col_type::boolean) // a is numeric
    return a == col_type::i64 ? col_type::i64 : col_type::f64;
  return col_type::f64; // two different numeric types
}

/// A number as CSV writes it (shortest round trip).
template <class T>
std::string number_text(T v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

/// Appends cell (col, row) of `src` to column c of `b`, converting it to that column's
/// type along the promotions of promote() (the only conversions asked for).
inline void append_converted(sdk::frame_builder& b, size_t c, const sdk::frame_view& src, size_t col, size_t row) {
  if (!src.valid(col, row))
    return b.append_null(c);
  col_type to = b.column(c).type, from = src.type(col);
  if (to == from)
    return b.append_from(c, src, col, row);
  switch (to) {
    case col_type::string: return b.append_string(c, src.text(col, row));
    case col_type::f64: return b.append_f64(c, src.number(col, row));
    case col_type::f32: return b.append_f32(c, static_cast<float>(src.number(col, row)));
    case col_type::i64:
      if (from == col_type::boolean)
        return b.append_i64(c, src.boolean(col, row) ? 1 : 0);
      break;
    case col_type::boolean: break;
  }
  throw sdk::error("cannot convert column '" + std::string(src.name(col)) + "' from " + sdk::to_string(from) +
                     " to " + sdk::to_string(to),
                   LOOM_ERR_INTERNAL);
}

/// The `rejects` output: a `reason` column followed by the input's columns.
class rejects_builder {
public:
  void start(const std::vector<sdk::field>& input) {
    b_ = sdk::frame_builder();
    b_.add_column("reason", col_type::string, false);
    for (auto& f : input)
      b_.add_column(f.name, f.type, true);
  }
  void add(const std::string& reason, const sdk::frame_view& f, size_t row) {
    b_.append_string(0, reason);
    for (size_t c = 0; c < f.num_columns(); ++c)
      b_.append_from(c + 1, f, c, row);
    b_.end_row();
  }
  size_t rows() const { return b_.num_rows(); }
  /// Emits what was collected (if anything) on `port` and counts it as rejected.
  void flush(sdk::context& ctx, uint32_t port) {
    if (b_.num_rows() == 0)
      return;
    ctx.add_rejected(b_.num_rows());
    ctx.emit(port, b_.finish(seq_++));
  }

private:
  sdk::frame_builder b_;
  uint64_t seq_ = 0;
};

} // namespace loom::ops::integrate
