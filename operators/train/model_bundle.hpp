// The Model message (sdk/schemas/model.fbs) as a plain C++ value: what train emits and
// predict reads. serialize() is deterministic — the same value gives the same bytes — and
// parse(serialize(m)) == m, so a model read from its bytes and written again is
// identical bit for bit.
#pragma once

#include <loom/frame.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace loom::ops::train {

struct tensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;
  bool operator==(const tensor&) const = default;
};

struct history_point {
  uint32_t epoch = 0; ///< 1-based
  std::string name;   ///< "train_loss", "val_accuracy", ...
  double value = 0;
  bool operator==(const history_point&) const = default;
};

struct model_bundle {
  std::string kind; ///< "linear", "logistic", "softmax", "mlp"
  std::string version;
  std::vector<std::pair<std::string, std::string>> hyperparameters; ///< key, JSON text; in order
  std::vector<sdk::field> input_schema; ///< the raw columns the model needs
  std::string target;
  std::vector<std::string> classes; ///< class labels as text, in class-index order
  std::string preprocessing;        ///< featurizer state JSON, "" when none
  std::vector<tensor> tensors;
  std::vector<history_point> history;

  /// The Model message (file identifier LMMD).
  std::vector<uint8_t> serialize() const;
  /// Reads a Model message; throws sdk::error(LOOM_ERR_BAD_DATA) when the bytes are not a
  /// valid Model. Does not check that the kind is one train makes (see trained_model).
  static model_bundle parse(std::span<const uint8_t> bytes);

  /// The JSON text of a hyperparameter, or nullptr.
  const std::string* hyperparameter(std::string_view key) const;
  const tensor* find_tensor(std::string_view name) const;
};

bool operator==(const sdk::field& a, const sdk::field& b);

} // namespace loom::ops::train
