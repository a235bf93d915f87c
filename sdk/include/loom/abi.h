/*
 * Loom plugin ABI — the C contract between the Loom host and an operator plugin.
 *
 * A plugin is a shared library that exports exactly one symbol:
 *
 *     LOOM_EXPORT const loom_plugin_header* loom_plugin_entry(void);
 *
 * The returned header lives as long as the library stays loaded. Its first two
 * fields (abi_major, abi_minor) keep their layout in every ABI version, so the host
 * reads them before anything else and refuses the plugin when
 *   - abi_major differs from the host's LOOM_ABI_VERSION_MAJOR, or
 *   - abi_minor is greater than the host's LOOM_ABI_VERSION_MINOR
 * (the plugin needs host functions this host does not have). Only then does the host
 * call `init`, handing it the host function table and a registrar. `init` registers
 * the plugin's operators with host->register_operator().
 *
 * Only C types, opaque handles and byte spans cross this boundary. C++ exceptions must
 * never cross it: the C++ wrapper (loom/sdk.hpp) catches them and turns them into a
 * loom_error.
 *
 * Errors: every function that can fail returns `loom_error*`; NULL means success. A
 * non-NULL error is created with host->error_new() and ownership passes to whoever
 * receives it (the host frees the errors plugins return; a plugin that receives an
 * error from a host function must either return it or free it with host->error_free).
 *
 * Threading: the host never calls into one operator instance from two threads at
 * once. Different instances of the same operator may run concurrently on different
 * threads, so operators must not share mutable global state without locking.
 */
#ifndef LOOM_ABI_H
#define LOOM_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LOOM_ABI_VERSION_MAJOR 1
#define LOOM_ABI_VERSION_MINOR 1

/* The one symbol a plugin exports. */
#define LOOM_PLUGIN_ENTRY_SYMBOL "loom_plugin_entry"

#if defined(_WIN32)
#define LOOM_EXPORT __declspec(dllexport)
#else
#define LOOM_EXPORT __attribute__((visibility("default")))
#endif

/* ---- opaque handles (owned by the host) --------------------------------------- */

typedef struct loom_error loom_error;         /* an error: code + message */
typedef struct loom_registrar loom_registrar; /* passed to init; valid only during init */
typedef struct loom_context loom_context;     /* one operator instance's view of the host */
typedef struct loom_message loom_message;     /* an immutable message (FlatBuffers bytes) */

/* ---- enums --------------------------------------------------------------------- */

typedef enum loom_error_code {
  LOOM_ERR_UNKNOWN = 1,
  LOOM_ERR_INVALID_ARGUMENT = 2, /* a parameter or input is wrong: the user's fault */
  LOOM_ERR_IO = 3,               /* a file, socket or device failed */
  LOOM_ERR_BAD_DATA = 4,         /* a message or data row could not be read */
  LOOM_ERR_UNSUPPORTED = 5,
  LOOM_ERR_CANCELLED = 6,        /* the run was cancelled; stop promptly */
  LOOM_ERR_INTERNAL = 7
} loom_error_code;

/* What travels on a port. A port of type ANY accepts every message. */
typedef enum loom_message_type {
  LOOM_MSG_ANY = 0,
  LOOM_MSG_FRAME = 1,   /* sdk/schemas/frame.fbs, file identifier "LMFR" */
  LOOM_MSG_MODEL = 2,   /* sdk/schemas/model.fbs, "LMMD" */
  LOOM_MSG_METRICS = 3, /* sdk/schemas/metrics.fbs, "LMMT" */
  LOOM_MSG_EVENT = 4,   /* sdk/schemas/event.fbs, "LMEV" */
  /* Not a type: widens the enum's value range to 32 bits, so a port's type may carry
   * flags (LOOM_PORT_OPTIONAL) without leaving the range C++ allows for the enum. */
  LOOM_MSG_TYPE_MAX_ = 0x7fffffff
} loom_message_type;

typedef enum loom_param_type {
  LOOM_PARAM_STRING = 1,
  LOOM_PARAM_INT = 2,
  LOOM_PARAM_FLOAT = 3, /* an int literal is accepted where a float is expected */
  LOOM_PARAM_BOOL = 4,
  LOOM_PARAM_LIST = 5,  /* a YAML sequence; read it with params_json */
  LOOM_PARAM_MAP = 6    /* a YAML mapping; read it with params_json */
} loom_param_type;

typedef enum loom_log_level {
  LOOM_LOG_DEBUG = 0,
  LOOM_LOG_INFO = 1,
  LOOM_LOG_WARN = 2,
  LOOM_LOG_ERROR = 3
} loom_log_level;

/* Counters the host keeps per node and stores in the run record. */
typedef enum loom_counter {
  LOOM_COUNTER_ROWS_IN = 0,       /* counted by the host for Frame inputs */
  LOOM_COUNTER_ROWS_OUT = 1,      /* counted by the host for Frame outputs, except on an
                                     output port named "rejects": by convention that port
                                     carries the rows the operator rejected (and counted
                                     with LOOM_COUNTER_ROWS_REJECTED), so that
                                     rows in = rows out + rows rejected */
  LOOM_COUNTER_ROWS_REJECTED = 2, /* reported by the operator */
  LOOM_COUNTER_BYTES_IN = 3,
  LOOM_COUNTER_BYTES_OUT = 4
} loom_counter;

/* ---- operator description (all pointers borrowed; the host copies them) -------- */

/*
 * Since ABI 1.1: OR'd into the `type` of an *input* port, marks it optional — a graph
 * may leave it unconnected. The operator then gets on_input_end for that port (with
 * no message before it) like for an input whose producer emitted nothing.
 */
#define LOOM_PORT_OPTIONAL 0x100

typedef struct loom_port_def {
  const char* name;
  loom_message_type type; /* may carry LOOM_PORT_OPTIONAL (input ports, ABI >= 1.1) */
  const char* description;
} loom_port_def;

typedef struct loom_param_def {
  const char* name;
  loom_param_type type;
  int required;              /* non-zero: the graph must set it */
  const char* default_json;  /* JSON text of the default, or NULL for none */
  const char* description;
} loom_param_def;

typedef struct loom_resource_hints {
  double cpus;        /* cores one instance uses, e.g. 1.0 */
  uint64_t memory_mb; /* peak memory one instance needs, 0 = small */
  uint32_t gpus;
} loom_resource_hints;

/*
 * Message bytes handed to the host by an operator. The host takes ownership on
 * success and on error: it calls release(owner) exactly once when the last reader is
 * done (possibly on another thread). `data` must stay valid until then and must not
 * change. release may be NULL when the bytes are static.
 */
typedef struct loom_bytes {
  const uint8_t* data;
  size_t size;
  void* owner;
  void (*release)(void* owner);
} loom_bytes;

/*
 * The operator life cycle, driven by the host (one instance per graph node and
 * attempt):
 *
 *   create     once; reads parameters from ctx; stores its state in *state.
 *   on_input   once per message arriving on input `port`, in arrival order per port.
 *              `msg` is borrowed for the call; emit it with ctx emit_message to
 *              forward it without a copy, or copy what must outlive the call.
 *   on_input_end  once per input port when its producer has finished.
 *   produce    called after every input port has ended (at once for a node with no
 *              inputs), again and again while downstream has room, until the
 *              operator sets *finished = 1. Each call should emit a bounded amount
 *              (a frame or a few) so that flow control can keep memory bounded.
 *   destroy    once, whatever happened before (may be NULL).
 *
 * Any of on_input, on_input_end, produce may emit on any output port. Returning an
 * error fails this attempt of the node (the host may retry it, see the graph's
 * `retries`).
 */
typedef struct loom_operator_vtable {
  loom_error* (*create)(loom_context* ctx, void** state);
  loom_error* (*on_input)(void* state, loom_context* ctx, uint32_t port,
                          const loom_message* msg);
  loom_error* (*on_input_end)(void* state, loom_context* ctx, uint32_t port);
  loom_error* (*produce)(void* state, loom_context* ctx, int* finished);
  void (*destroy)(void* state);
} loom_operator_vtable;

typedef struct loom_operator_def {
  const char* name;        /* dotted, e.g. "ingest.csv"; unique across all plugins */
  const char* version;     /* semantic version of the operator */
  const char* description; /* one paragraph; first sentence is the summary */
  const char* examples;    /* YAML snippet(s) showing a node using it; may be NULL */
  const loom_port_def* inputs;
  uint32_t num_inputs;
  const loom_port_def* outputs;
  uint32_t num_outputs;
  const loom_param_def* params;
  uint32_t num_params;
  loom_resource_hints resources;
  loom_operator_vtable vtable;
} loom_operator_def;

/* ---- host function table ------------------------------------------------------- */

/*
 * Functions the host offers. A plugin built against minor version N may use every
 * member listed for versions <= N; members are only ever appended. `struct_size`
 * tells how many bytes of this struct the host filled.
 */
typedef struct loom_host_api {
  uint32_t abi_major;
  uint32_t abi_minor;
  size_t struct_size;

  /* errors */
  loom_error* (*error_new)(loom_error_code code, const char* message);
  void (*error_free)(loom_error* err);

  /* registration (init only) — the host copies the whole definition */
  loom_error* (*register_operator)(loom_registrar* reg, const loom_operator_def* def);

  /* parameters of this node, already validated against the schema and with
     defaults applied. Getters return an error naming the parameter if it is absent
     or of another type. Strings are owned by the host and live as long as ctx. */
  loom_error* (*param_string)(loom_context* ctx, const char* name, const char** out);
  loom_error* (*param_int)(loom_context* ctx, const char* name, int64_t* out);
  loom_error* (*param_float)(loom_context* ctx, const char* name, double* out);
  loom_error* (*param_bool)(loom_context* ctx, const char* name, int* out);
  int (*param_has)(loom_context* ctx, const char* name);
  /* all parameters as one JSON object (lists and maps included) */
  const char* (*params_json)(loom_context* ctx);

  /* messages */
  void (*message_data)(const loom_message* msg, const uint8_t** data, size_t* size);
  loom_message_type (*message_type)(const loom_message* msg);
  /* hand a new message to output `port`; ownership of bytes passes to the host */
  loom_error* (*emit)(loom_context* ctx, uint32_t port, loom_bytes bytes);
  /* forward a received message unchanged to output `port` (no copy) */
  loom_error* (*emit_message)(loom_context* ctx, uint32_t port, const loom_message* msg);

  /* observability */
  void (*log)(loom_context* ctx, loom_log_level level, const char* message);
  void (*add_counter)(loom_context* ctx, loom_counter counter, uint64_t delta);
  void (*record_metric)(loom_context* ctx, const char* name, double value);
  /* store a named artifact (report, file) with the run; bytes are copied */
  loom_error* (*record_artifact)(loom_context* ctx, const char* name,
                                 const char* media_type, const uint8_t* data,
                                 size_t size);

  /* environment */
  const char* (*node_id)(loom_context* ctx);
  const char* (*run_id)(loom_context* ctx);
  uint32_t (*attempt)(loom_context* ctx); /* 1 for the first attempt */
  /* directory of the graph file: relative paths in parameters resolve against it */
  const char* (*base_dir)(loom_context* ctx);
  /* non-zero once the run is cancelled or the node timed out: return promptly */
  int (*is_cancelled)(loom_context* ctx);
} loom_host_api;

/* ---- the plugin entry ---------------------------------------------------------- */

typedef struct loom_plugin_header {
  uint32_t abi_major; /* LOOM_ABI_VERSION_MAJOR the plugin was built with */
  uint32_t abi_minor; /* LOOM_ABI_VERSION_MINOR the plugin needs at least */
  const char* name;   /* plugin name, e.g. "loom-io" */
  const char* version;
  /* registers the operators; called once after the version check */
  loom_error* (*init)(const loom_host_api* host, loom_registrar* reg);
} loom_plugin_header;

typedef const loom_plugin_header* (*loom_plugin_entry_fn)(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* LOOM_ABI_H */
