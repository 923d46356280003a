# Include roots that enforce the agent's build graph.
#
# Every agent library is one folder, agent/<part>/, and its headers are included as
# "<part>/header.h". A library does not put agent/ on the include path (that would let any target
# include any folder's headers without linking it); it puts a root of its own that holds only its
# folder:
#
#   <build>/include_roots/<target>/<part>  ->  agent/<part>      (a symbolic link)
#
# added PUBLIC, so "<part>/header.h" compiles only in the target itself and in targets that link
# it directly or through a PUBLIC dependency. A folder that includes another folder's header must
# link that folder's library: PUBLIC when the header appears in its own headers, PRIVATE when only
# in its .cc files.
#
# bb_agent_include_root(<target> [PRIVATE] [FOLDER <part>] [HEADERS <header>...])
#   FOLDER   the folder under agent/ to expose (default: the current source folder)
#   HEADERS  expose only these headers of the folder (e.g. bb_loader, one file of agent/host/)
#   PRIVATE  for the target's own use only (e.g. the TLS module, which must not link the library
#            whose interface header it implements)
# An INTERFACE library (header only, e.g. bb_api_table) gets the root as INTERFACE.
#
# A new folder's CMakeLists.txt:
#   add_library(bb_net STATIC reactor.cc ...)
#   bb_agent_include_root(bb_net)
#   target_compile_features(bb_net PUBLIC cxx_std_17)
#   target_link_libraries(bb_net PUBLIC bb_util PRIVATE Poco::Net bb_warnings)
set(BB_AGENT_SOURCE_DIR ${CMAKE_CURRENT_LIST_DIR}/../agent)
set(BB_INCLUDE_ROOTS ${CMAKE_BINARY_DIR}/include_roots)

function(bb_agent_include_root target)
  cmake_parse_arguments(ARG "PRIVATE" "FOLDER" "HEADERS" ${ARGN})
  if(ARG_FOLDER)
    get_filename_component(source ${BB_AGENT_SOURCE_DIR}/${ARG_FOLDER} ABSOLUTE)
  else()
    set(source ${CMAKE_CURRENT_SOURCE_DIR})
  endif()
  get_filename_component(part ${source} NAME)
  set(root ${BB_INCLUDE_ROOTS}/${target})
  if(ARG_HEADERS)
    if(IS_SYMLINK ${root}/${part})
      file(REMOVE ${root}/${part})
    endif()
    file(MAKE_DIRECTORY ${root}/${part})
    foreach(header ${ARG_HEADERS})
      if(NOT EXISTS ${source}/${header})
        message(FATAL_ERROR "bb_agent_include_root(${target}): no ${source}/${header}")
      endif()
      file(CREATE_LINK ${source}/${header} ${root}/${part}/${header} SYMBOLIC)
    endforeach()
  else()
    if(IS_DIRECTORY ${root}/${part} AND NOT IS_SYMLINK ${root}/${part})
      file(REMOVE_RECURSE ${root}/${part})
    endif()
    file(MAKE_DIRECTORY ${root})
    file(CREATE_LINK ${source} ${root}/${part} SYMBOLIC)
  endif()
  get_target_property(type ${target} TYPE)
  if(ARG_PRIVATE)
    target_include_directories(${target} PRIVATE ${root})
  elseif(type STREQUAL INTERFACE_LIBRARY)
    target_include_directories(${target} INTERFACE ${root})
  else()
    target_include_directories(${target} PUBLIC ${root})
  endif()
endfunction()

# Code that runs at start-up, on a reload or once per collection (every interval_ms, 2 s by
# default) is compiled for size rather than speed. The kernel maps a library's code into the
# agent's resident set in windows of 64 KiB around each page it runs (fault-around), so the idle
# RSS follows the size of the code more than how much of it runs; -Os halves a market plugin
# (199 -> 104 KiB). The paths a request takes (loops, HTTP, WebSocket, snapshot, RPC transport,
# the receipts plugin's pages) keep the build type's -O2 (docs/performance.md, "Idle memory").
# Debug builds keep -O0.
#
# bb_optimize_for_size(<target>...)
function(bb_optimize_for_size)
  foreach(target IN LISTS ARGN)
    target_compile_options(${target} PRIVATE $<$<NOT:$<CONFIG:Debug>>:-Os>)
  endforeach()
endfunction()
