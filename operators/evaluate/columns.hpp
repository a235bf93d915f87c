// The cells of one column gathered over every frame of a stream, kept in the column's
// own type (strings interned), so that evaluate can decide at the end whether they are
// labels (text, exactly as frame_view::text writes them) or numbers.
#pragma once

#include <loom/frame.hpp>

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace loom::ops::evaluate {

class column_buffer {
public:
  column_buffer(std::string name, sdk::col_type type) : name_(std::move(name)), type_(type) {}

  const std::string& name() const { return name_; }
  sdk::col_type type() const { return type_; }
  size_t size() const { return size_; }
  bool numeric() const { return type_ == sdk::col_type::f32 || type_ == sdk::col_type::f64 || type_ == sdk::col_type::i64; }

  /// Appends every cell of column `col` of `f`; throws when its type is not this one's.
  void append(const sdk::frame_view& f, size_t col) {
    if (f.type(col) != type_)
      throw sdk::error("column '" + name_ + "' changed type from " + sdk::to_string(type_) + " to " +
                         sdk::to_string(f.type(col)) + " in frame " + std::to_string(f.sequence()),
                       LOOM_ERR_BAD_DATA);
    const size_t n = f.num_rows();
    for (size_t r = 0; r < n; ++r) {
      bool ok = f.valid(col, r);
      if (!ok && !has_nulls_) {
        has_nulls_ = true;
        valid_.assign(size_, 1);
      }
      if (has_nulls_)
        valid_.push_back(ok ? 1 : 0);
      ++size_;
      switch (type_) {
        case sdk::col_type::f32:
        case sdk::col_type::f64: nums_.push_back(ok ? f.number(col, r) : 0.0); break;
        case sdk::col_type::i64: ints_.push_back(ok ? f.i64(col, r) : 0); break;
        case sdk::col_type::boolean: ints_.push_back(ok && f.boolean(col, r) ? 1 : 0); break;
        case sdk::col_type::string: ids_.push_back(ok ? intern(f.str(col, r)) : 0); break;
      }
    }
  }

  bool valid(size_t r) const { return !has_nulls_ || valid_[r] != 0; }

  /// A numeric cell as a double (i64 converted).
  double number(size_t r) const {
    return type_ == sdk::col_type::i64 || type_ == sdk::col_type::boolean ? static_cast<double>(ints_[r]) : nums_[r];
  }

  /// A cell as text, exactly as frame_view::text writes it (f32 in float precision).
  std::string text(size_t r) const {
    char buf[64];
    switch (type_) {
      case sdk::col_type::f32: {
        auto e = std::to_chars(buf, buf + sizeof buf, static_cast<float>(nums_[r]));
        return std::string(buf, e.ptr);
      }
      case sdk::col_type::f64: {
        auto e = std::to_chars(buf, buf + sizeof buf, nums_[r]);
        return std::string(buf, e.ptr);
      }
      case sdk::col_type::i64: {
        auto e = std::to_chars(buf, buf + sizeof buf, ints_[r]);
        return std::string(buf, e.ptr);
      }
      case sdk::col_type::boolean: return ints_[r] ? "true" : "false";
      case sdk::col_type::string: return dict_[ids_[r]];
    }
    return {};
  }

  /// String columns: the interned id of row r, and the distinct values.
  uint32_t id(size_t r) const { return ids_[r]; }
  const std::vector<std::string>& dictionary() const { return dict_; }

private:
  uint32_t intern(std::string_view s) {
    auto it = index_.find(std::string(s));
    if (it != index_.end())
      return it->second;
    auto id = static_cast<uint32_t>(dict_.size());
    dict_.emplace_back(s);
    index_.emplace(dict_.back(), id);
    return id;
  }

  std::string name_;
  sdk::col_type type_;
  size_t size_ = 0;
  bool has_nulls_ = false;
  std::vector<uint8_t> valid_; ///< per cell, kept from the first null on
  std::vector<double> nums_;   ///< f32, f64
  std::vector<int64_t> ints_;  ///< i64, bool
  std::vector<uint32_t> ids_;  ///< string
  std::vector<std::string> dict_;
  std::unordered_map<std::string, uint32_t> index_;
};

} // namespace loom::ops::evaluate
