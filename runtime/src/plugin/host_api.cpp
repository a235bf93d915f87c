// The host function table (loom_host_api) handed to every plugin.
#include "loom/runtime/host.hpp"
#include "loom/runtime/plugin_registry.hpp"

#include <loom/fb/event_generated.h>
#include <loom/fb/frame_generated.h>
#include <loom/fb/metrics_generated.h>
#include <loom/fb/model_generated.h>

#include <cstring>

namespace loom {

loom_error* new_error(loom_error_code code, std::string message) {
  return new loom_error{code, std::move(message)};
}

namespace {

// Functions below are called from plugins: none may throw.

loom_error* h_error_new(loom_error_code code, const char* message) {
  try {
    return new_error(code, message ? message : "");
  } catch (...) {
    return nullptr;
  }
}

void h_error_free(loom_error* err) {
  delete err;
}

loom_error* param_lookup(loom_context* ctx, const char* name, const nlohmann::ordered_json** out) {
  auto it = ctx->params.find(name ? name : "");
  if (it == ctx->params.end() || it->is_null())
    return new_error(LOOM_ERR_INVALID_ARGUMENT,
                     std::string("parameter '") + (name ? name : "") + "' is not set");
  *out = &*it;
  return nullptr;
}

loom_error* wrong_type(const char* name, const char* want, const nlohmann::ordered_json& j) {
  return new_error(LOOM_ERR_INVALID_ARGUMENT, std::string("parameter '") + (name ? name : "") + "' is " +
                                                j.type_name() + ", not " + want);
}

/// Looks parameter `name` up, checks it with `is` (else an error saying it is not
/// `want`), and stores it with `store`.
template <class Is, class Store>
loom_error* get_param(loom_context* ctx, const char* name, const char* want, Is is, Store store) {
  try {
    const nlohmann::ordered_json* j = nullptr;
    if (auto err = param_lookup(ctx, name, &j))
      return err;
    if (!is(*j))
      return wrong_type(name, want, *j);
    store(*j);
    return nullptr;
  } catch (const std::exception& e) {
    return new_error(LOOM_ERR_INTERNAL, e.what());
  }
}

loom_error* h_param_string(loom_context* ctx, const char* name, const char** out) {
  return get_param(ctx, name, "a string", [](auto& j) { return j.is_string(); }, [&](auto& j) {
    auto& slot = ctx->string_params[name]; // lives as long as ctx
    slot = j.template get<std::string>();
    *out = slot.c_str();
  });
}

loom_error* h_param_int(loom_context* ctx, const char* name, int64_t* out) {
  return get_param(ctx, name, "an integer", [](auto& j) { return j.is_number_integer(); },
                   [&](auto& j) { *out = j.template get<int64_t>(); });
}

loom_error* h_param_float(loom_context* ctx, const char* name, double* out) {
  return get_param(ctx, name, "a number", [](auto& j) { return j.is_number(); },
                   [&](auto& j) { *out = j.template get<double>(); });
}

loom_error* h_param_bool(loom_context* ctx, const char* name, int* out) {
  return get_param(ctx, name, "a bool", [](auto& j) { return j.is_boolean(); },
                   [&](auto& j) { *out = j.template get<bool>() ? 1 : 0; });
}

int h_param_has(loom_context* ctx, const char* name) {
  auto it = ctx->params.find(name ? name : "");
  return it != ctx->params.end() && !it->is_null() ? 1 : 0;
}

const char* h_params_json(loom_context* ctx) {
  return ctx->params_text.c_str();
}

void h_message_data(const loom_message* msg, const uint8_t** data, size_t* size) {
  *data = msg->bytes.data;
  *size = msg->bytes.size;
}

loom_message_type h_message_type(const loom_message* msg) {
  return msg->type;
}

loom_error* h_emit(loom_context* ctx, uint32_t port, loom_bytes bytes) {
  try {
    auto msg = adopt_message(bytes);
    if (!msg)
      return new_error(LOOM_ERR_BAD_DATA, error_message(msg.error()));
    return ctx->host->emit(port, std::move(*msg));
  } catch (const std::exception& e) {
    return new_error(LOOM_ERR_INTERNAL, e.what());
  }
}

loom_error* h_emit_message(loom_context* ctx, uint32_t port, const loom_message* msg) {
  try {
    if (msg == nullptr)
      return new_error(LOOM_ERR_INVALID_ARGUMENT, "emit_message: null message");
    return ctx->host->emit(port, msg->shared_from_this());
  } catch (const std::exception& e) {
    return new_error(LOOM_ERR_INTERNAL, e.what());
  }
}

void h_log(loom_context* ctx, loom_log_level level, const char* message) {
  try {
    ctx->host->log(level, message ? message : "");
  } catch (...) {
  }
}

void h_add_counter(loom_context* ctx, loom_counter counter, uint64_t delta) {
  ctx->host->add_counter(counter, delta);
}

void h_record_metric(loom_context* ctx, const char* name, double value) {
  try {
    ctx->host->record_metric(name ? name : "", value);
  } catch (...) {
  }
}

loom_error* h_record_artifact(loom_context* ctx, const char* name, const char* media_type,
                              const uint8_t* data, size_t size) {
  try {
    if (name == nullptr || *name == '\0')
      return new_error(LOOM_ERR_INVALID_ARGUMENT, "record_artifact: empty name");
    return ctx->host->record_artifact(name, media_type ? media_type : "application/octet-stream",
                                      std::string(reinterpret_cast<const char*>(data), size));
  } catch (const std::exception& e) {
    return new_error(LOOM_ERR_INTERNAL, e.what());
  }
}

const char* h_node_id(loom_context* ctx) {
  return ctx->node_id.c_str();
}

const char* h_run_id(loom_context* ctx) {
  return ctx->run_id.c_str();
}

uint32_t h_attempt(loom_context* ctx) {
  return ctx->attempt;
}

const char* h_base_dir(loom_context* ctx) {
  return ctx->base_dir.c_str();
}

int h_is_cancelled(loom_context* ctx) {
  return ctx->cancelled != nullptr && ctx->cancelled->load() ? 1 : 0;
}

loom_error* h_register_operator(loom_registrar* reg, const loom_operator_def* def);

} // namespace

const loom_host_api* host_api() {
  static const loom_host_api api = [] {
    loom_host_api a{};
    a.abi_major = LOOM_ABI_VERSION_MAJOR;
    a.abi_minor = LOOM_ABI_VERSION_MINOR;
    a.struct_size = sizeof(loom_host_api);
    a.error_new = h_error_new;
    a.error_free = h_error_free;
    a.register_operator = h_register_operator;
    a.param_string = h_param_string;
    a.param_int = h_param_int;
    a.param_float = h_param_float;
    a.param_bool = h_param_bool;
    a.param_has = h_param_has;
    a.params_json = h_params_json;
    a.message_data = h_message_data;
    a.message_type = h_message_type;
    a.emit = h_emit;
    a.emit_message = h_emit_message;
    a.log = h_log;
    a.add_counter = h_add_counter;
    a.record_metric = h_record_metric;
    a.record_artifact = h_record_artifact;
    a.node_id = h_node_id;
    a.run_id = h_run_id;
    a.attempt = h_attempt;
    a.base_dir = h_base_dir;
    a.is_cancelled = h_is_cancelled;
    return a;
  }();
  return &api;
}

caf::expected<message_ptr> adopt_message(loom_bytes bytes) {
  auto msg = std::make_shared<loom_message>();
  msg->bytes = bytes; // owned from here on, whatever happens below
  if (bytes.data == nullptr || bytes.size < 8)
    return make_error(errc::operator_failed, "message of " + std::to_string(bytes.size) +
                                               " bytes is too small to be a FlatBuffer");
  flatbuffers::Verifier v(bytes.data, bytes.size);
  if (fb::FrameBufferHasIdentifier(bytes.data)) {
    if (!fb::VerifyFrameBuffer(v))
      return make_error(errc::operator_failed, "message claims to be a Frame but does not verify");
    msg->type = LOOM_MSG_FRAME;
    msg->rows = fb::GetFrame(bytes.data)->num_rows();
  } else if (fb::ModelBufferHasIdentifier(bytes.data)) {
    if (!fb::VerifyModelBuffer(v))
      return make_error(errc::operator_failed, "message claims to be a Model but does not verify");
    msg->type = LOOM_MSG_MODEL;
  } else if (fb::MetricsBufferHasIdentifier(bytes.data)) {
    if (!fb::VerifyMetricsBuffer(v))
      return make_error(errc::operator_failed, "message claims to be Metrics but does not verify");
    msg->type = LOOM_MSG_METRICS;
  } else if (fb::EventBufferHasIdentifier(bytes.data)) {
    if (!fb::VerifyEventBuffer(v))
      return make_error(errc::operator_failed, "message claims to be an Event but does not verify");
    msg->type = LOOM_MSG_EVENT;
  } else {
    msg->type = LOOM_MSG_ANY;
  }
  return message_ptr(std::move(msg));
}

caf::expected<message_ptr> copy_message(const void* data, size_t size) {
  auto* copy = new std::vector<uint8_t>(static_cast<const uint8_t*>(data),
                                        static_cast<const uint8_t*>(data) + size);
  return adopt_message({copy->data(), copy->size(), copy,
                        [](void* p) { delete static_cast<std::vector<uint8_t>*>(p); }});
}

} // namespace loom

// The registrar lives in plugin_registry.cpp; its register function is defined there.
namespace loom {
loom_error* register_operator_impl(loom_registrar* reg, const loom_operator_def* def);
namespace {
loom_error* h_register_operator(loom_registrar* reg, const loom_operator_def* def) {
  try {
    return register_operator_impl(reg, def);
  } catch (const std::exception& e) {
    return new_error(LOOM_ERR_INTERNAL, e.what());
  }
}
} // namespace
} // namespace loom
