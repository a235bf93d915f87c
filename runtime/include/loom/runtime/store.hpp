// The run store: an LMDB environment under $LOOM_HOME/store.
//
// Named databases: "meta" (counters), "runs" (run id -> run_record JSON), "events"
// (run id + sequence -> log_record JSON), "artifacts" (run id + name -> metadata +
// bytes). Every write is its own committed transaction before the call returns, so a
// process killed afterwards loses nothing it was told was stored. Several processes
// may open the same home at once (LMDB's lock file serialises writers).
//
// A full map or a full disk comes back as errc::store_full with a message that names
// the map size and how to raise it (LOOM_STORE_MAP_MB); the store stays readable.
#pragma once

#include "loom/runtime/error.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace loom {

/// Node states as stored and shown.
/// pending, running, succeeded, failed, retrying, skipped, cancelled
struct node_record {
  std::string id;
  std::string op;
  std::string state = "pending";
  uint32_t attempts = 0;
  int64_t started_ms = 0; ///< unix epoch ms; 0 = not started
  int64_t ended_ms = 0;
  std::string error;
  uint64_t rows_in = 0;
  uint64_t rows_out = 0;
  uint64_t rows_rejected = 0;
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  std::map<std::string, double> metrics;
};

/// Run states: running, succeeded, failed, cancelled.
struct run_record {
  std::string id; ///< assigned by create_run
  std::string graph_name;
  std::string graph_file;
  std::string graph_hash;
  std::string graph_text;
  nlohmann::json params = nlohmann::json::object();
  std::string state = "running";
  int64_t started_ms = 0;
  int64_t ended_ms = 0;
  std::string error;
  std::string host;
  int pid = 0;
  std::vector<node_record> nodes;
  std::vector<std::string> artifacts; ///< names, filled by get_run
};

struct log_record {
  std::string run_id;
  uint64_t seq = 0; ///< assigned by append_log, increasing per run
  int64_t time_ms = 0;
  std::string node; ///< empty for run-level events
  std::string level; ///< debug, info, warn, error
  std::string message;
};

struct artifact_record {
  std::string run_id;
  std::string node;
  std::string name;
  std::string media_type;
  std::string data;
};

nlohmann::json to_json(const node_record& n);
nlohmann::json to_json(const run_record& r); ///< everything, graph_text included
nlohmann::json to_json(const log_record& l);
node_record node_from_json(const nlohmann::json& j);
run_record run_from_json(const nlohmann::json& j);
log_record log_from_json(const nlohmann::json& j);

struct store_options {
  /// LMDB map size in MiB; 0 = from LOOM_STORE_MAP_MB, else 1024.
  uint64_t map_size_mb = 0;
};

class run_store {
public:
  ~run_store();
  run_store(const run_store&) = delete;
  run_store& operator=(const run_store&) = delete;

  /// Opens (creating if needed) the store under `home` (creates `home/store`).
  static caf::expected<std::unique_ptr<run_store>> open(const std::string& home,
                                                        store_options opts = {});

  /// Assigns the next run id (decimal, increasing across processes) to `run.id`
  /// and stores the record.
  caf::error create_run(run_record& run);
  /// Replaces the stored record of run.id (which must exist).
  caf::error update_run(const run_record& run);
  caf::error append_log(log_record& rec); ///< assigns rec.seq
  caf::error put_artifact(const artifact_record& art);

  caf::expected<run_record> get_run(const std::string& id) const;
  /// Newest first; at most `limit` (0 = all).
  caf::expected<std::vector<run_record>> list_runs(size_t limit = 0) const;
  caf::expected<std::vector<log_record>> logs(const std::string& run_id) const;
  caf::expected<artifact_record> get_artifact(const std::string& run_id,
                                              const std::string& name) const;

  const std::string& path() const;

private:
  struct impl;
  explicit run_store(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// Unix epoch milliseconds now.
int64_t now_ms();

} // namespace loom
