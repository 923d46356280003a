/*
 * Block Buster plugin ABI: the C contract between blockbuster-agent and a plugin (.so).
 *
 * This header is the only thing a plugin and the agent must agree on. It depends on nothing but
 * <stddef.h> and <stdint.h>, so a plugin may be written in C, or in C++ with any compiler and any
 * standard library: no C++ type, allocation or exception ever crosses the boundary.
 *
 * Versioning (see sdk/README.md):
 *  - BB_ABI_VERSION_MAJOR changes only for a breaking change. The agent refuses a plugin of
 *    another major version.
 *  - BB_ABI_VERSION_MINOR grows when members are appended to a struct. Every struct that crosses
 *    the boundary starts with `struct_size`; a reader copies what it knows, zero-fills what the
 *    other side is too old to have, and ignores what it is too old to know.
 *  - Members are never removed or reordered within a major version. A deprecated member keeps
 *    its slot (and keeps working) until the next major version.
 *
 * Ownership: every pointer passed in either direction is borrowed for the duration of the call
 * only, unless a comment says otherwise. Bytes handed to a bb_sink_fn must be copied by the sink.
 *
 * Threading: the agent never calls collect() of one instance twice at once; route handlers
 * (bb_route_fn) may run on any thread, concurrently with collect() and with each other. Every
 * function of bb_host_api may be called from any thread, at any time between create() returning
 * and destroy() being called.
 */
#ifndef BLOCKBUSTER_PLUGIN_ABI_H_
#define BLOCKBUSTER_PLUGIN_ABI_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BB_ABI_VERSION_MAJOR 1u
#define BB_ABI_VERSION_MINOR 1u

/** Name of the one symbol a plugin exports: `const bb_plugin* bb_plugin_entry(void)`. */
#define BB_PLUGIN_ENTRY_SYMBOL "bb_plugin_entry"

#if defined(_WIN32)
#define BB_PLUGIN_EXPORT __declspec(dllexport)
#else
#define BB_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

/** Status codes returned by host functions and by a plugin's collect(). */
enum bb_status {
  BB_OK = 0,
  BB_ERR_RPC = 1,          /**< the node answered with a JSON-RPC error (sink gets the error) */
  BB_ERR_TRANSPORT = 2,    /**< connection refused/reset, empty reply, HTTP error status */
  BB_ERR_TIMEOUT = 3,      /**< no answer within the timeout or the collect deadline */
  BB_ERR_BAD_RESPONSE = 4, /**< the node's reply was not a valid JSON-RPC response */
  BB_ERR_INVALID = 5,      /**< the plugin passed an invalid argument (name, JSON, ...) */
  BB_ERR_LIMIT = 6,        /**< a cap was hit: rate limit, reply size, series per plugin */
  BB_ERR_INTERNAL = 7,     /**< anything else; a plugin may return it from collect() */
  BB_ERR_SHUTDOWN = 8      /**< the agent is stopping or reloading this plugin */
};

enum bb_log_level { BB_LOG_DEBUG = 0, BB_LOG_INFO = 1, BB_LOG_WARN = 2, BB_LOG_ERROR = 3 };

/** Opaque handle of the agent's per-plugin context. Owned by the agent. */
typedef struct bb_host bb_host;

/**
 * Receives a byte string. `data` is owned by the caller and valid only during the call; it is
 * not NUL-terminated unless stated. The sink must not throw (C++) or longjmp.
 */
typedef void (*bb_sink_fn)(void* ctx, const char* data, size_t len);

/** One JSON-RPC call of a bb_host_api::rpc_call_many batch. */
typedef struct bb_rpc_request {
  uint32_t struct_size;    /**< sizeof(bb_rpc_request) as the plugin knows it */
  const char* method;      /**< e.g. "net.peers" */
  const char* params_json; /**< a JSON object, or NULL for {} (the node refuses arrays) */
  bb_sink_fn sink;         /**< gets `result` on BB_OK, the error object otherwise */
  void* sink_ctx;
  int32_t status; /**< out: a bb_status */
} bb_rpc_request;

enum bb_metric_kind { BB_METRIC_GAUGE = 0, BB_METRIC_COUNTER = 1 };

enum bb_metric_op {
  BB_METRIC_SET = 0,   /**< gauge: set; counter: set to an absolute total (resets tolerated) */
  BB_METRIC_ADD = 1,   /**< add value (counters: value >= 0) */
  BB_METRIC_REMOVE = 2 /**< remove the series: the value is unknown now (absent, never 0) */
};

/** bb_metric::flags (since 1.1). */
enum bb_metric_flag {
  /** The agent also keeps this series in its history (GET /theblock/history, the page's charts),
   *  as "<plugin>.<name>" (":<label value>" appended per label). Gauges only. */
  BB_METRIC_FLAG_HISTORY = 1u
};

/** A metric update. The family name must match [a-zA-Z_:][a-zA-Z0-9_:]*. */
typedef struct bb_metric {
  uint32_t struct_size;
  const char* name; /**< family name, e.g. "theblock_peers" */
  const char* help; /**< HELP text; required the first time a family is used */
  uint32_t kind;    /**< bb_metric_kind */
  uint32_t op;      /**< bb_metric_op */
  const char* const* label_names;
  const char* const* label_values;
  size_t label_count;
  double value;
  uint32_t flags; /**< since 1.1: bb_metric_flag bits; an older plugin's struct ends before it */
} bb_metric;

/** A parsed HTTP request handed to a route registered with bb_host_api::serve. */
typedef struct bb_request {
  uint32_t struct_size;
  const char* path;                /**< the decoded path, e.g. "/theblock/receipts" */
  const char* const* query_keys;   /**< percent-decoded, in order of appearance */
  const char* const* query_values; /**< percent-decoded; "" for a key without '=' */
  size_t query_count;
  /**
   * Since ABI 1.1. 0: the handler runs on an HTTP event loop and must answer from memory; when it
   * cannot (e.g. a page not in its cache), it returns BB_STATUS_DEFER with no body and the agent
   * calls it again on a bounded pool of workers with may_block = 1. 1 (or a struct_size without
   * this member, from an older agent): the handler may read a file or a database.
   */
  uint32_t may_block;
} bb_request;

/** Status a route handler returns to be called again off the event loop (see may_block). */
#define BB_STATUS_DEFER 0

/**
 * Serves a request. Writes a JSON body through `sink` and returns the HTTP status code
 * (200, 400, ...). For an error status the body should be {"error":{"code","message"}}.
 * Called on HTTP worker threads, concurrently; must not block on the node.
 */
typedef int (*bb_route_fn)(void* ctx, const bb_request* request, bb_sink_fn sink, void* sink_ctx);

/** Services the agent lends a plugin. Every member may be called from any thread. */
typedef struct bb_host_api {
  uint32_t struct_size;
  uint32_t abi_major;
  uint32_t abi_minor;

  /** Logs one line, prefixed by the agent with the plugin's name. */
  void (*log)(bb_host* host, int level, const char* message);

  /**
   * Calls a JSON-RPC method through the agent's shared client (keep-alive, timeouts, retries,
   * bearer auth, rate cap). Blocks until the answer or the collect deadline. On BB_OK the sink
   * gets the `result` member as JSON text; on BB_ERR_RPC it gets the node's `error` object; on
   * other errors an object {"code":int,"message":string} describing the failure.
   */
  int (*rpc_call)(bb_host* host, const char* method, const char* params_json, bb_sink_fn sink,
                  void* sink_ctx);

  /** Runs `count` calls concurrently and returns when all are done; each gets its status. */
  int (*rpc_call_many)(bb_host* host, bb_rpc_request* requests, size_t count);

  /**
   * Publishes (replaces) one section of the dashboard: a JSON object. The section's full name
   * is "<plugin>.<section>". The agent serves it at once, stamped with its age.
   */
  int (*publish)(bb_host* host, const char* section, const char* json, size_t len);

  /**
   * Says a section could not be refreshed: the agent keeps serving the last data, marked stale
   * with this reason. Sections of a plugin whose collect() fails are marked so automatically.
   */
  int (*publish_error)(bb_host* host, const char* section, const char* reason);

  /** Sets, adds to or removes one metric series. Names and label sets are checked. */
  int (*metric)(bb_host* host, const bb_metric* metric);

  /** Sets a named feature of the feature stream ("<plugin>.<name>"); NaN means unknown. */
  int (*feature)(bb_host* host, const char* name, double value);

  /** Registers a GET route served by this plugin, e.g. "/theblock/receipts". Call in create. */
  int (*serve)(bb_host* host, const char* path, bb_route_fn handler, void* ctx);

  /** Directory where the plugin may keep state across restarts (exists, writable). */
  const char* (*state_dir)(bb_host* host);
} bb_host_api;

enum bb_config_type {
  BB_CONFIG_BOOL = 0,
  BB_CONFIG_INT = 1,
  BB_CONFIG_DOUBLE = 2,
  BB_CONFIG_STRING = 3,
  BB_CONFIG_STRING_LIST = 4
};

/** A config key a plugin declares; the agent validates the plugin's options against them. */
typedef struct bb_config_key {
  uint32_t struct_size;
  const char* name;         /**< key under plugins.<name>.options */
  uint32_t type;            /**< bb_config_type */
  const char* default_json; /**< default as JSON text, e.g. "50" or "\"x\"", or NULL */
  const char* help;         /**< one line for --list-plugins and the default config */
} bb_config_key;

/** What a plugin is. Returned by bb_plugin_entry(); static storage, lives as long as the .so. */
typedef struct bb_plugin {
  uint32_t struct_size;
  uint32_t abi_major; /**< BB_ABI_VERSION_MAJOR the plugin was built against */
  uint32_t abi_minor; /**< BB_ABI_VERSION_MINOR the plugin was built against */
  const char* name;   /**< [a-z][a-z0-9_]*, unique among loaded plugins */
  const char* version;
  const char* description;

  /** Declared config keys: `config_key_count` entries, each of size config_keys[0].struct_size */
  const bb_config_key* config_keys;
  uint32_t config_key_count;

  /**
   * Makes an instance. `config_json` is the plugin's validated options with defaults applied
   * (a JSON object). `host` and `api` stay valid until destroy(). Returns NULL on failure after
   * writing the reason through `error_sink`.
   */
  void* (*create)(bb_host* host, const bb_host_api* api, const char* config_json,
                  bb_sink_fn error_sink, void* error_ctx);

  /** Collects once. Returns BB_OK or an error status; writes a reason through error_sink. */
  int (*collect)(void* instance, bb_sink_fn error_sink, void* error_ctx);

  /** Frees the instance. No host function may be called after it returns. */
  void (*destroy)(void* instance);
} bb_plugin;

/** The one exported symbol of a plugin. */
typedef const bb_plugin* (*bb_plugin_entry_fn)(void);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // BLOCKBUSTER_PLUGIN_ABI_H_
