// loom-featurize: fit a featurization on the training split, apply it elsewhere.
#include <loom/sdk.hpp>

namespace loom::ops {
extern const sdk::op_registration featurize_fit_op;   ///< featurize.fit
extern const sdk::op_registration featurize_apply_op; ///< featurize.apply
extern const sdk::op_registration featurize_tokenize_op; ///< featurize.tokenize
} // namespace loom::ops

LOOM_PLUGIN_OPERATORS("loom-featurize", "0.1.0", loom::ops::featurize_fit_op, loom::ops::featurize_apply_op,
                      loom::ops::featurize_tokenize_op)
