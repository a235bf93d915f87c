// Loom's run-time errors: a caf::error in the "loom" category carrying a message.
//
// Functions inside the runtime that can fail return caf::expected<T> or caf::error
// (see DESIGN.md, "Errors"). Exceptions are used for start-up and configuration only.
#pragma once

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>

#include <string>

namespace loom {

/// Loom's error codes. The numeric values are stable (they appear in run records).
enum class errc : uint8_t {
  ok = 0,
  invalid_argument = 1, ///< bad user input: graph, parameter, CLI flag
  not_found = 2,        ///< a run, operator, file that does not exist
  io = 3,               ///< a file system or network call failed
  plugin = 4,           ///< a plugin could not be loaded or misbehaved
  operator_failed = 5,  ///< an operator returned an error
  cancelled = 6,
  timeout = 7,
  store = 8,            ///< the LMDB store failed
  store_full = 9,       ///< the LMDB map or the disk is full
  internal = 10,
};

/// The category atom of Loom errors.
constexpr caf::atom_value error_category = caf::atom("loom");

/// Makes a Loom error with a human-readable message.
inline caf::error make_error(errc code, std::string message) {
  return caf::error(static_cast<uint8_t>(code), error_category,
                    caf::make_message(std::move(message)));
}

/// The message of an error made by make_error (or a rendering of any other error).
std::string error_message(const caf::error& err);

/// The Loom code of an error (errc::internal for errors of other categories).
errc error_code(const caf::error& err);

const char* to_string(errc code);

} // namespace loom
