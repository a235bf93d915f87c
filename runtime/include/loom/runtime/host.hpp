// The host side of the ABI's opaque handles: what loom_error, loom_message and
// loom_context are inside the runtime. Used by the plugin loader and the executor;
// never seen by plugins.
#pragma once

#include "loom/runtime/error.hpp"
#include "loom/runtime/operator_info.hpp"

#include <loom/abi.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <string>

struct loom_error {
  loom_error_code code;
  std::string message;
};

/// An immutable message. Frames move between actors as shared pointers to these:
/// fan-out and forwarding share one buffer, and the producer's release callback runs
/// when the last reader drops it.
struct loom_message : std::enable_shared_from_this<loom_message> {
  loom_message_type type = LOOM_MSG_ANY;
  loom_bytes bytes{};
  uint64_t rows = 0; ///< rows of a Frame, 0 otherwise

  loom_message() = default;
  loom_message(const loom_message&) = delete;
  loom_message& operator=(const loom_message&) = delete;
  ~loom_message() {
    if (bytes.release != nullptr)
      bytes.release(bytes.owner);
  }
};

namespace loom {

using message_ptr = std::shared_ptr<const loom_message>;

/// Wraps bytes a plugin handed over (ownership taken, also on error). Detects the
/// message type from the FlatBuffers file identifier and verifies the buffer; for a
/// Frame it also reads the row count. Errors name what is wrong.
caf::expected<message_ptr> adopt_message(loom_bytes bytes);

/// Copies bytes into a new message (tests, files, the network).
caf::expected<message_ptr> copy_message(const void* data, size_t size);

/// What an operator instance reaches through its context: implemented by the
/// executor's node actor.
class node_host {
public:
  virtual ~node_host() = default;
  virtual loom_error* emit(uint32_t port, message_ptr msg) = 0;
  virtual void log(loom_log_level level, const std::string& message) = 0;
  virtual void add_counter(loom_counter counter, uint64_t delta) = 0;
  virtual void record_metric(const std::string& name, double value) = 0;
  virtual loom_error* record_artifact(const std::string& name, const std::string& media_type,
                                      std::string data) = 0;
};

loom_error* new_error(loom_error_code code, std::string message);

} // namespace loom

struct loom_context {
  loom::node_host* host = nullptr;
  const loom::operator_info* op = nullptr;
  nlohmann::ordered_json params = nlohmann::ordered_json::object();
  std::string params_text;
  std::map<std::string, std::string> string_params; ///< keeps returned strings alive
  std::string node_id;
  std::string run_id;
  std::string base_dir;
  uint32_t attempt = 1;
  const std::atomic<bool>* cancelled = nullptr;
};
