// Training rows in memory: features as floats, one target per row.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <vector>

namespace loom::ops::train {

/// Rows of features (float, `cols` per row) and one target per row. Rows live in
/// chunks (one per input frame) and are addressed through `rows`, so gathering a
/// table is one copy and dropping a row is not adding its pointer.
struct dataset {
  size_t cols = 0;
  std::vector<std::vector<float>> chunks;
  std::vector<const float*> rows;
  std::vector<float> y; ///< class index (as a float) or the regression target

  size_t size() const { return rows.size(); }

  /// Appends the rows of a row-major block of `count` rows (moved in); their targets
  /// are appended to `y` by the caller.
  void add_block(std::vector<float> block, size_t count) {
    if (count == 0)
      return;
    if (block.size() != count * cols)
      throw std::logic_error("dataset: block size does not match the column count");
    chunks.push_back(std::move(block)); // moving keeps the heap buffer, so `rows` stay valid
    const float* p = chunks.back().data();
    for (size_t i = 0; i < count; ++i)
      rows.push_back(p + i * cols);
  }
};

} // namespace loom::ops::train
