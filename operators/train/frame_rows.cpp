#include "frame_rows.hpp"

#include <charconv>
#include <cmath>
#include <limits>

namespace loom::ops::train {

prepared_frame prepare(featurize::featurizer* z, const sdk::frame_view& raw) {
  prepared_frame p;
  const size_t rows = raw.num_rows();
  if (z == nullptr) {
    p.view = raw;
    p.raw_row.resize(rows);
    for (size_t r = 0; r < rows; ++r)
      p.raw_row[r] = static_cast<uint32_t>(r);
    return p;
  }
  z->bind(raw);
  // the rows apply() leaves out are those a transform rejects: the same test here tells
  // which raw row each output row is
  std::vector<size_t> cols;
  for (auto& t : z->transforms)
    cols.push_back(raw.require(t.column));
  for (size_t r = 0; r < rows; ++r) {
    std::string why;
    for (size_t i = 0; i < z->transforms.size() && why.empty(); ++i)
      why = z->transforms[i].reject_reason(raw, cols[i], r, r + 1);
    if (why.empty())
      p.raw_row.push_back(static_cast<uint32_t>(r));
    else
      p.rejected.emplace_back(static_cast<uint32_t>(r), "featurizer: " + why);
  }
  auto res = z->apply(raw);
  p.bytes = std::move(*res.out);
  p.view = sdk::frame_view::of(std::span<const uint8_t>(p.bytes->data(), p.bytes->size()));
  if (p.view->num_rows() != p.raw_row.size())
    throw sdk::error("featurizer: " + std::to_string(p.view->num_rows()) + " rows out of " +
                       std::to_string(rows) + ", expected " + std::to_string(p.raw_row.size()),
                     LOOM_ERR_INTERNAL);
  return p;
}

std::string describe(const sdk::frame_view& f) { return f.describe_columns(); }

void feature_reader::bind(const sdk::frame_view& f, bool parse_strings, const std::string& hint) {
  cols_.clear();
  for (auto& n : names_) {
    int c = f.index(n);
    if (c < 0)
      throw sdk::error("no feature column '" + n + "' in the input (columns: " + f.describe_columns() + ")",
                       LOOM_ERR_BAD_DATA);
    if (f.type(static_cast<size_t>(c)) == sdk::col_type::string && !parse_strings)
      throw sdk::error("feature column '" + n + "' is a string column; " + hint, LOOM_ERR_BAD_DATA);
    cols_.push_back(static_cast<size_t>(c));
  }
}

namespace {

constexpr float nan_f = std::numeric_limits<float>::quiet_NaN();

bool parse_number(std::string_view s, double& out) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  if (!s.empty() && s.front() == '+')
    s.remove_prefix(1);
  auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size();
}

} // namespace

void feature_reader::read(const sdk::frame_view& f, float* out, std::vector<std::string>& reasons) const {
  const size_t rows = f.num_rows(), width = cols_.size();
  reasons.assign(rows, std::string());
  if (rows == 0)
    return; // an empty frame may have no value vectors at all
  auto* columns = f.raw()->columns();
  // blocks of rows, so the rows being written stay in cache while each column is read
  constexpr size_t block = 64;
  for (size_t r0 = 0; r0 < rows; r0 += block) {
    size_t r1 = std::min(rows, r0 + block);
    for (size_t j = 0; j < width; ++j) {
      size_t c = cols_[j];
      auto* col = columns->Get(static_cast<flatbuffers::uoffset_t>(c));
      float* dst = out + j;
      switch (f.type(c)) {
        case sdk::col_type::f32: {
          const float* v = col->f32()->data();
          for (size_t r = r0; r < r1; ++r)
            dst[r * width] = v[r];
          break;
        }
        case sdk::col_type::f64: {
          const double* v = col->f64()->data();
          for (size_t r = r0; r < r1; ++r)
            dst[r * width] = static_cast<float>(v[r]);
          break;
        }
        case sdk::col_type::i64: {
          const int64_t* v = col->i64()->data();
          for (size_t r = r0; r < r1; ++r)
            dst[r * width] = static_cast<float>(v[r]);
          break;
        }
        case sdk::col_type::boolean: {
          const uint8_t* v = col->bools()->data();
          for (size_t r = r0; r < r1; ++r)
            dst[r * width] = v[r] ? 1.0f : 0.0f;
          break;
        }
        case sdk::col_type::string:
          for (size_t r = r0; r < r1; ++r) {
            double x = 0;
            dst[r * width] = parse_number(f.str(c, r), x) ? static_cast<float>(x) : nan_f;
          }
          break;
      }
      if (col->validity() != nullptr && col->validity()->size() != 0)
        for (size_t r = r0; r < r1; ++r)
          if (!f.valid(c, r))
            dst[r * width] = nan_f;
    }
  }
  // the slow path only for rows that hold something other than a finite number
  for (size_t r = 0; r < rows; ++r) {
    const float* row = out + r * width;
    bool ok = true;
    for (size_t j = 0; j < width; ++j)
      ok &= std::isfinite(row[j]);
    if (ok)
      continue;
    for (size_t j = 0; j < width; ++j) {
      if (std::isfinite(row[j]))
        continue;
      size_t c = cols_[j];
      if (!f.valid(c, r))
        reasons[r] = "column '" + names_[j] + "' is null";
      else if (f.type(c) == sdk::col_type::string && !std::isnan(row[j]))
        reasons[r] = "column '" + names_[j] + "' value '" + std::string(f.str(c, r)) + "' is out of the float range";
      else if (f.type(c) == sdk::col_type::string) {
        double x = 0;
        reasons[r] = parse_number(f.str(c, r), x)
                       ? "column '" + names_[j] + "' is " + std::string(f.str(c, r))
                       : "column '" + names_[j] + "' value '" + std::string(f.str(c, r)) + "' is not a number";
      } else
        reasons[r] = "column '" + names_[j] + "' is " + f.text(c, r) +
                     (std::isnan(row[j]) || f.type(c) != sdk::col_type::f64 || std::isinf(f.f64(c, r))
                        ? ""
                        : " (out of the float range)");
      break;
    }
  }
}

} // namespace loom::ops::train
