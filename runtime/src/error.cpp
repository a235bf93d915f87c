#include "loom/runtime/error.hpp"

namespace loom {

std::string error_message(const caf::error& err) {
  if (!err)
    return {};
  if (err.category() == error_category) {
    const auto& ctx = err.context();
    if (ctx.size() == 1 && ctx.match_element<std::string>(0))
      return ctx.get_as<std::string>(0);
    return to_string(static_cast<errc>(err.code()));
  }
  return caf::to_string(err);
}

errc error_code(const caf::error& err) {
  if (!err)
    return errc::ok;
  if (err.category() == error_category)
    return static_cast<errc>(err.code());
  return errc::internal;
}

const char* to_string(errc code) {
  switch (code) {
    case errc::ok: return "ok";
    case errc::invalid_argument: return "invalid argument";
    case errc::not_found: return "not found";
    case errc::io: return "I/O error";
    case errc::plugin: return "plugin error";
    case errc::operator_failed: return "operator failed";
    case errc::cancelled: return "cancelled";
    case errc::timeout: return "timed out";
    case errc::store: return "store error";
    case errc::store_full: return "store full";
    case errc::internal: return "internal error";
  }
  return "unknown error";
}

} // namespace loom
