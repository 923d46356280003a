# blockbuster_add_plugin(<name> SOURCES <src>... [LINK <target>...] [NO_INSTALL])
#
# Builds a Block Buster plugin: a MODULE library named bb_<name>.so that exports only
# bb_plugin_entry. Used identically by in-tree plugins and by third-party plugins that did
# find_package(BlockBusterSDK).
#
#   BLOCKBUSTER_PLUGIN_OUTPUT_DIR  where the .so is written (default: the target's binary dir)
#   BLOCKBUSTER_PLUGIN_INSTALL_DIR where `install` puts it (default: lib/blockbuster/plugins)
include_guard(GLOBAL)

function(blockbuster_add_plugin name)
  cmake_parse_arguments(ARG "NO_INSTALL" "" "SOURCES;LINK" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "blockbuster_add_plugin(${name}): SOURCES is required")
  endif()
  if(NOT name MATCHES "^[a-z][a-z0-9_]*$")
    message(FATAL_ERROR "blockbuster_add_plugin(${name}): a plugin name is [a-z][a-z0-9_]*")
  endif()
  set(target bb_${name})
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE BlockBuster::sdk ${ARG_LINK})
  target_compile_features(${target} PRIVATE cxx_std_17)
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME bb_${name}
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(DEFINED BLOCKBUSTER_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY
                          ${BLOCKBUSTER_PLUGIN_OUTPUT_DIR})
  endif()
  if(NOT ARG_NO_INSTALL)
    if(NOT DEFINED BLOCKBUSTER_PLUGIN_INSTALL_DIR)
      set(BLOCKBUSTER_PLUGIN_INSTALL_DIR lib/blockbuster/plugins)
    endif()
    install(TARGETS ${target} LIBRARY DESTINATION ${BLOCKBUSTER_PLUGIN_INSTALL_DIR}
            COMPONENT plugins)
  endif()
endfunction()
