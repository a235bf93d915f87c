// Frames to model rows, shared by train and predict: the bundled featurizer applied to
// a raw frame (keeping track of which raw row each output row came from), and feature
// columns read into row-major floats with a reason for every row that cannot be used.
#pragma once

#include "../featurize/featurizer.hpp"

#include <loom/frame.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace loom::ops::train {

/// A raw frame after the featurizer: `view` (the featurized frame, or the raw frame when
/// there is no featurizer), the raw row of each of its rows, and the raw rows the
/// featurizer rejected with its reasons.
struct prepared_frame {
  std::optional<flatbuffers::DetachedBuffer> bytes; ///< owns the featurized frame
  std::optional<sdk::frame_view> view;
  std::vector<uint32_t> raw_row;
  std::vector<std::pair<uint32_t, std::string>> rejected;
};

/// Applies `z` (may be null) to `raw`; `raw` must outlive the result when z is null.
prepared_frame prepare(featurize::featurizer* z, const sdk::frame_view& raw);

/// Reads numeric feature columns, by name, into rows of floats.
class feature_reader {
public:
  explicit feature_reader(std::vector<std::string> names) : names_(std::move(names)) {}
  const std::vector<std::string>& names() const { return names_; }

  /// Finds the columns in `f` (every frame: columns are looked up by name). A missing
  /// column throws sdk::error naming it and listing the columns present. A string column
  /// is an error unless `parse_strings` (its cells are then parsed as numbers).
  /// `hint` ends the message about a string column.
  void bind(const sdk::frame_view& f, bool parse_strings, const std::string& hint);

  /// Writes row r of `f` to out[r * names().size() ...] for every row and sets
  /// reasons[r] to why the row cannot be used ("" when it can): a null, NaN or infinite
  /// value, or a string that is not a number.
  void read(const sdk::frame_view& f, float* out, std::vector<std::string>& reasons) const;

private:
  std::vector<std::string> names_;
  std::vector<size_t> cols_;
};

/// Every column of `f` as "name (type)", for messages.
std::string describe(const sdk::frame_view& f);

} // namespace loom::ops::train
