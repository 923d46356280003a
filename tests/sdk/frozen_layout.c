/* The layout of the ABI structs as compiled from whichever plugin_abi.h is on the include path:
 * built once against the frozen 1.0 header (bb_frozen_v1_layout) and once against the current
 * one (BB_LAYOUT_NAME=bb_current_layout). */
#include <blockbuster/plugin_abi.h>
#include <stddef.h>

#ifndef BB_LAYOUT_NAME
#define BB_LAYOUT_NAME bb_frozen_v1_layout
#endif
#define BB_CAT(a, b) a##b
#define BB_XCAT(a, b) BB_CAT(a, b)

#define L(s, m) offsetof(s, m)
const size_t BB_LAYOUT_NAME[] = {sizeof(bb_plugin),
                                 L(bb_plugin, struct_size),
                                 L(bb_plugin, abi_major),
                                 L(bb_plugin, abi_minor),
                                 L(bb_plugin, name),
                                 L(bb_plugin, version),
                                 L(bb_plugin, description),
                                 L(bb_plugin, config_keys),
                                 L(bb_plugin, config_key_count),
                                 L(bb_plugin, create),
                                 L(bb_plugin, collect),
                                 L(bb_plugin, destroy),
                                 sizeof(bb_host_api),
                                 L(bb_host_api, log),
                                 L(bb_host_api, rpc_call),
                                 L(bb_host_api, rpc_call_many),
                                 L(bb_host_api, publish),
                                 L(bb_host_api, publish_error),
                                 L(bb_host_api, metric),
                                 L(bb_host_api, feature),
                                 L(bb_host_api, serve),
                                 L(bb_host_api, state_dir),
                                 sizeof(bb_rpc_request),
                                 L(bb_rpc_request, method),
                                 L(bb_rpc_request, params_json),
                                 L(bb_rpc_request, sink),
                                 L(bb_rpc_request, sink_ctx),
                                 L(bb_rpc_request, status),
                                 sizeof(bb_metric),
                                 L(bb_metric, name),
                                 L(bb_metric, help),
                                 L(bb_metric, kind),
                                 L(bb_metric, op),
                                 L(bb_metric, label_names),
                                 L(bb_metric, label_values),
                                 L(bb_metric, label_count),
                                 L(bb_metric, value),
                                 sizeof(bb_request),
                                 L(bb_request, path),
                                 L(bb_request, query_keys),
                                 L(bb_request, query_values),
                                 L(bb_request, query_count),
                                 sizeof(bb_config_key),
                                 L(bb_config_key, name),
                                 L(bb_config_key, type),
                                 L(bb_config_key, default_json),
                                 L(bb_config_key, help),
                                 BB_ABI_VERSION_MAJOR,
                                 BB_ABI_VERSION_MINOR};
const size_t BB_XCAT(BB_LAYOUT_NAME, _count) = sizeof BB_LAYOUT_NAME / sizeof BB_LAYOUT_NAME[0];
