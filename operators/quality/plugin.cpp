// loom-quality: profiling tables and validating them against expectations.
#include <loom/sdk.hpp>

namespace loom::ops {
extern const sdk::op_registration profile_registration;  ///< profile
extern const sdk::op_registration validate_registration; ///< validate
} // namespace loom::ops

LOOM_PLUGIN_OPERATORS("loom-quality", "0.1.0", loom::ops::profile_registration, loom::ops::validate_registration)
