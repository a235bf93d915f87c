// Local execution of a validated graph on CAF actors.
//
// One actor per node runs the operator instance; a run actor supervises them (node
// states, retries with backoff, timeouts, cancellation) and records everything in the
// run store. Messages flow between node actors as shared pointers (no copy).
//
// Flow control is credit based: every edge starts with `credit` messages of credit;
// a producer sends on an output port only while every consumer of that port has
// credit, and a consumer returns one credit per message it has processed. A node
// takes its next input only when everything it emitted has been sent. So at most
// `credit` messages wait on an edge, whatever the size of the data, and a slow
// consumer slows its producers down. Nothing is dropped.
//
// Failures: an operator error (or a timeout) fails that attempt. With `retries` left,
// the node restarts after a backoff (doubling each attempt): a new operator instance
// sees every input again (the node keeps the inputs of the current attempt for that),
// and the first N messages it emits on a port are suppressed when N were already
// delivered — retries therefore assume the operator is deterministic given its
// inputs. A node that fails for good drains its inputs (so its producers and their
// other consumers finish) and every node downstream of it is skipped; independent
// branches finish normally.
#pragma once

#include "loom/runtime/error.hpp"
#include "loom/runtime/graph.hpp"
#include "loom/runtime/store.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace caf {
class actor_system;
}

namespace loom {

/// What the executor reports while a run goes on (for the terminal and tests).
struct run_event {
  enum kind_t { node_state, progress, log, run_state } kind = node_state;
  double elapsed_s = 0; ///< since the run started
  std::string node;
  std::string state;   ///< node or run state
  std::string message; ///< error, log text
  node_record stats;   ///< counters of that node at this moment
};

struct run_options {
  std::string run_id = "local";
  size_t credit = 8;              ///< messages in flight per edge
  double progress_interval_s = 1.0; ///< how often progress events come (0 = never)
  /// How often a running run's record (node counters and metrics) is rewritten in the
  /// store, so `loom runs show` sees a long node's progress (e.g. per-epoch training
  /// metrics) while it runs; 0 = only on node state changes.
  double persist_interval_s = 1.0;
  /// Set to true (e.g. from a signal handler) to cancel the run.
  const std::atomic<bool>* cancel = nullptr;
  std::function<void(const run_event&)> on_event;
  run_store* store = nullptr;     ///< where to record; may be null
  run_record* record = nullptr;   ///< the run's record in the store (updated as it goes)
  /// Node actors get a thread each (operator calls block on files and compute, and
  /// must not hold up the run actor or other nodes). Off only for tests that drive
  /// CAF's deterministic test scheduler.
  bool detached_nodes = true;
  /// When set, execute() calls this while it waits instead of sleeping: a test drives
  /// a deterministic scheduler (scheduler.policy = testing) with it.
  std::function<void()> drive;
};

struct run_result {
  std::string state; ///< succeeded, failed, cancelled
  std::string error; ///< first failure: "node 'x' failed: ..."
  std::vector<node_record> nodes;
  /// per edge "a.out->b.in": the most messages ever sent and not yet taken by the consumer
  std::map<std::string, size_t> max_queued;
};

/// Runs `graph` (validated against `catalog`) and blocks until it ended.
run_result execute(caf::actor_system& sys, const graph_spec& graph,
                   const operator_catalog& catalog, const run_options& opts);

} // namespace loom
