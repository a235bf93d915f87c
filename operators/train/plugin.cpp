// loom-train: train a model with oneDNN, score rows with it.
#include <loom/sdk.hpp>

namespace loom::ops {
extern const sdk::op_registration train_op_registration;   ///< train
extern const sdk::op_registration predict_op_registration; ///< predict
} // namespace loom::ops

LOOM_PLUGIN_OPERATORS("loom-train", "0.1.0", loom::ops::train_op_registration, loom::ops::predict_op_registration)
