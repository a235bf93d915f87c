// Loom operator SDK — the header-only C++ layer over the C ABI (loom/abi.h).
//
// An operator is a class with
//   - `static loom::sdk::op_spec spec();`   its name, ports, parameters, resources
//   - a constructor taking `loom::sdk::context&` that reads its parameters
//   - overrides of `on_input`, `on_input_end` and `produce` (see loom/abi.h for when
//     the host calls each)
// and a plugin lists its operators once:
//
//     LOOM_PLUGIN("my-plugin", "1.0.0", upper_op, filter_op)
//
// Throw `loom::sdk::error` (or any std::exception) to fail: the wrapper turns it into
// an error status at the boundary, so no exception ever crosses into the host.
//
// Threading: one instance is only ever called from one thread at a time.
#pragma once

#include <loom/abi.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace loom::sdk {

/// The host function table of this plugin, set before any operator runs.
inline const loom_host_api*& host() {
  static const loom_host_api* table = nullptr;
  return table;
}

/// An error an operator throws; `code` tells the host whose fault it was.
class error : public std::runtime_error {
public:
  explicit error(std::string message, loom_error_code code = LOOM_ERR_INVALID_ARGUMENT)
    : std::runtime_error(std::move(message)), code_(code) {}
  loom_error_code code() const noexcept { return code_; }

private:
  loom_error_code code_;
};

/// A message received on an input port; borrowed for the duration of the call.
class message {
public:
  explicit message(const loom_message* msg) : msg_(msg) {}
  std::span<const uint8_t> bytes() const {
    const uint8_t* data = nullptr;
    size_t size = 0;
    host()->message_data(msg_, &data, &size);
    return {data, size};
  }
  loom_message_type type() const { return host()->message_type(msg_); }
  const loom_message* raw() const { return msg_; }

private:
  const loom_message* msg_;
};

/// One operator instance's view of the host.
class context {
public:
  explicit context(loom_context* ctx) : ctx_(ctx) {}

  // -- parameters (validated by the host, defaults applied) ----------------------
  std::string param_string(const char* name) const {
    const char* out = nullptr;
    forward(host()->param_string(ctx_, name, &out));
    return out ? out : "";
  }
  int64_t param_int(const char* name) const {
    int64_t out = 0;
    forward(host()->param_int(ctx_, name, &out));
    return out;
  }
  double param_float(const char* name) const {
    double out = 0;
    forward(host()->param_float(ctx_, name, &out));
    return out;
  }
  bool param_bool(const char* name) const {
    int out = 0;
    forward(host()->param_bool(ctx_, name, &out));
    return out != 0;
  }
  bool has_param(const char* name) const { return host()->param_has(ctx_, name) != 0; }
  /// Every parameter as a JSON object (for lists and maps).
  std::string params_json() const { return host()->params_json(ctx_); }

  // -- output ---------------------------------------------------------------------
  /// Emits bytes the operator owns; `Buffer` must expose data() and size() (e.g.
  /// flatbuffers::DetachedBuffer, std::vector<uint8_t>). Moved, never copied.
  template <class Buffer>
  void emit(uint32_t port, Buffer&& buffer) {
    using B = std::decay_t<Buffer>;
    auto* owned = new B(std::forward<Buffer>(buffer));
    loom_bytes bytes{reinterpret_cast<const uint8_t*>(owned->data()), owned->size(), owned,
                     [](void* p) { delete static_cast<B*>(p); }};
    forward(host()->emit(ctx_, port, bytes));
  }
  /// Forwards a received message to an output port without copying it.
  void forward_message(uint32_t port, const message& msg) {
    forward(host()->emit_message(ctx_, port, msg.raw()));
  }

  // -- observability ----------------------------------------------------------------
  void log(loom_log_level level, const std::string& text) { host()->log(ctx_, level, text.c_str()); }
  void info(const std::string& text) { log(LOOM_LOG_INFO, text); }
  void warn(const std::string& text) { log(LOOM_LOG_WARN, text); }
  void add_rejected(uint64_t rows) { host()->add_counter(ctx_, LOOM_COUNTER_ROWS_REJECTED, rows); }
  void metric(const std::string& name, double value) { host()->record_metric(ctx_, name.c_str(), value); }
  void artifact(const std::string& name, const std::string& media_type, std::string_view data) {
    forward(host()->record_artifact(ctx_, name.c_str(), media_type.c_str(),
                                    reinterpret_cast<const uint8_t*>(data.data()), data.size()));
  }

  // -- environment ------------------------------------------------------------------
  std::string node_id() const { return host()->node_id(ctx_); }
  std::string run_id() const { return host()->run_id(ctx_); }
  uint32_t attempt() const { return host()->attempt(ctx_); }
  std::string base_dir() const { return host()->base_dir(ctx_); }
  bool cancelled() const { return host()->is_cancelled(ctx_) != 0; }
  /// A path from a parameter, made absolute against the graph file's directory.
  std::string resolve_path(const std::string& path) const {
    if (path.empty() || path.front() == '/')
      return path;
    return (std::filesystem::path(base_dir()) / path).lexically_normal().string();
  }

  loom_context* raw() const { return ctx_; }

private:
  /// A host function failed: rethrow its error as is (the host keeps its message).
  static void forward(loom_error* err);
  loom_context* ctx_;
};

/// Thrown by context when a host function returned an error; carries that error
/// back to the host unchanged.
struct host_error {
  loom_error* err;
};

inline void context::forward(loom_error* err) {
  if (err != nullptr)
    throw host_error{err};
}

struct port {
  const char* name;
  loom_message_type type;
  const char* description;
  bool optional = false; ///< input ports: the graph may leave it unconnected (ABI 1.1); outputs cannot be
};

struct param {
  const char* name;
  loom_param_type type;
  bool required;
  const char* default_json; ///< JSON text, or nullptr
  const char* description;
};

struct op_spec {
  const char* name;
  const char* version;
  const char* description;
  const char* examples = nullptr;
  std::vector<port> inputs{};
  std::vector<port> outputs{};
  std::vector<param> params{};
  loom_resource_hints resources{1.0, 0, 0};
};

/// Base class of operators; override what the operator needs.
class op {
public:
  virtual ~op() = default;
  virtual void on_input(context&, uint32_t /*port*/, const message&) {}
  virtual void on_input_end(context&, uint32_t /*port*/) {}
  /// Returns true when finished. Default: nothing to produce.
  virtual bool produce(context&) { return true; }
};

namespace detail {

/// Runs f and converts any exception into a host error.
template <class F>
loom_error* guarded(F&& f) noexcept {
  try {
    f();
    return nullptr;
  } catch (const host_error& e) {
    return e.err;
  } catch (const error& e) {
    return host()->error_new(e.code(), e.what());
  } catch (const std::exception& e) {
    return host()->error_new(LOOM_ERR_UNKNOWN, e.what());
  } catch (...) {
    return host()->error_new(LOOM_ERR_UNKNOWN, "unknown exception");
  }
}

template <class T>
loom_error* create(loom_context* ctx, void** state) {
  return guarded([&] {
    context c(ctx);
    *state = static_cast<op*>(new T(c));
  });
}

inline loom_error* on_input(void* state, loom_context* ctx, uint32_t port, const loom_message* msg) {
  return guarded([&] {
    context c(ctx);
    static_cast<op*>(state)->on_input(c, port, message(msg));
  });
}

inline loom_error* on_input_end(void* state, loom_context* ctx, uint32_t port) {
  return guarded([&] {
    context c(ctx);
    static_cast<op*>(state)->on_input_end(c, port);
  });
}

inline loom_error* produce(void* state, loom_context* ctx, int* finished) {
  return guarded([&] {
    context c(ctx);
    *finished = static_cast<op*>(state)->produce(c) ? 1 : 0;
  });
}

inline void destroy(void* state) {
  delete static_cast<op*>(state);
}

template <class T>
loom_error* register_op(const loom_host_api* h, loom_registrar* reg) {
  static_assert(std::is_base_of_v<op, T>, "operators derive from loom::sdk::op");
  op_spec spec;
  loom_error* err = guarded([&] { spec = T::spec(); });
  if (err != nullptr)
    return err;
  std::vector<loom_port_def> ins, outs;
  // the optional flag goes to the host for outputs too, which refuses it there (with a
  // message naming the port) rather than the SDK dropping it unseen
  auto port_def = [](const port& p) {
    return loom_port_def{p.name, p.optional ? static_cast<loom_message_type>(p.type | LOOM_PORT_OPTIONAL) : p.type,
                         p.description};
  };
  for (auto& p : spec.inputs)
    ins.push_back(port_def(p));
  for (auto& p : spec.outputs)
    outs.push_back(port_def(p));
  std::vector<loom_param_def> params;
  for (auto& p : spec.params)
    params.push_back({p.name, p.type, p.required ? 1 : 0, p.default_json, p.description});
  loom_operator_def def{};
  def.name = spec.name;
  def.version = spec.version;
  def.description = spec.description;
  def.examples = spec.examples;
  def.inputs = ins.data();
  def.num_inputs = static_cast<uint32_t>(ins.size());
  def.outputs = outs.data();
  def.num_outputs = static_cast<uint32_t>(outs.size());
  def.params = params.data();
  def.num_params = static_cast<uint32_t>(params.size());
  def.resources = spec.resources;
  def.vtable = {&create<T>, &detail::on_input, &detail::on_input_end, &detail::produce,
                &detail::destroy};
  return h->register_operator(reg, &def);
}

template <class... Ts>
loom_error* register_all(const loom_host_api* h, loom_registrar* reg) {
  host() = h;
  loom_error* err = nullptr;
  ((err = err ? err : register_op<Ts>(h, reg)), ...);
  return err;
}

inline loom_error* register_list(const loom_host_api* h, loom_registrar* reg,
                                 std::initializer_list<loom_error* (*)(const loom_host_api*, loom_registrar*)> list) {
  host() = h;
  for (auto f : list)
    if (auto* err = f(h, reg))
      return err;
  return nullptr;
}

} // namespace detail

/// A function that registers one operator; lets a plugin whose operators live in
/// several source files list them in one place (LOOM_PLUGIN_OPERATORS).
using op_registration = loom_error* (*)(const loom_host_api*, loom_registrar*);

/// The registration of operator class T, for LOOM_PLUGIN_OPERATORS.
template <class T>
inline constexpr op_registration registration = &detail::register_op<T>;

} // namespace loom::sdk

/// Like LOOM_PLUGIN, but takes op_registration values (see loom::sdk::registration),
/// so the operator classes need not be visible in this file.
#define LOOM_PLUGIN_OPERATORS(NAME, VERSION, ...)                                        \
  extern "C" LOOM_EXPORT const loom_plugin_header* loom_plugin_entry(void) {             \
    static const loom_plugin_header header{                                              \
      LOOM_ABI_VERSION_MAJOR, LOOM_ABI_VERSION_MINOR, NAME, VERSION,                     \
      [](const loom_host_api* h, loom_registrar* reg) -> loom_error* {                  \
        return ::loom::sdk::detail::register_list(h, reg, {__VA_ARGS__});                \
      }};                                                                                \
    return &header;                                                                      \
  }

/// Defines the plugin's entry point and registers the listed operator classes.
#define LOOM_PLUGIN(NAME, VERSION, ...)                                                  \
  extern "C" LOOM_EXPORT const loom_plugin_header* loom_plugin_entry(void) {             \
    static const loom_plugin_header header{                                              \
      LOOM_ABI_VERSION_MAJOR, LOOM_ABI_VERSION_MINOR, NAME, VERSION,                     \
      [](const loom_host_api* h, loom_registrar* reg) -> loom_error* {                  \
        return ::loom::sdk::detail::register_all<__VA_ARGS__>(h, reg);                   \
      }};                                                                                \
    return &header;                                                                      \
  }
