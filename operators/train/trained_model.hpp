// What train writes into a Model bundle about the network and what predict reads back:
// the hyperparameters that fix the network's shape, and the weights as tensors
// "dense<i>.weight" ([outputs, inputs], row-major) and "dense<i>.bias" ([outputs]).
#pragma once

#include "model_bundle.hpp"
#include "nn.hpp"

#include <string>
#include <vector>

namespace loom::ops::train {

/// Model kinds train makes.
inline constexpr const char* model_kinds[] = {"linear", "logistic", "softmax", "mlp"};

/// The network of a trained model, as its bundle describes it.
struct model_layout {
  std::string kind;                  ///< linear, logistic, softmax, mlp
  bool classification = false;       ///< else regression
  std::vector<std::string> features; ///< feature columns (after the featurizer), in input order
  net_spec spec;                     ///< dropout and penalties are training-only and left 0
};

/// Reads the layout from the bundle's kind, hyperparameters ("task", "features", "layers",
/// "activation", "loss") and classes, and checks the tensors against it. Throws
/// sdk::error(LOOM_ERR_BAD_DATA) saying what is missing or inconsistent.
model_layout read_layout(const model_bundle& m);

/// Copies the network's weights into m.tensors (replacing them).
void store_weights(const network& net, model_bundle& m);

/// Sets the network's weights from the bundle's tensors (read_layout checked their shapes).
void load_weights(network& net, const model_bundle& m);

} // namespace loom::ops::train
