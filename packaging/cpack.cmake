# Debian packages, built with `cpack -G DEB` in the build directory:
#   blockbuster-agent    the agent, its plugins, the web dashboard, the default config
#                        (a conffile), the systemd unit, and the Grafana and Prometheus files
#                        (/usr/share/blockbuster/{grafana,prometheus,alertmanager})
#   blockbuster-sdk-dev  the plugin SDK: headers (testing.h too), CMake package, example
install(DIRECTORY ${CMAKE_SOURCE_DIR}/web/ DESTINATION ${CMAKE_INSTALL_DATADIR}/blockbuster/web
        COMPONENT web)
# The default config goes to <prefix>/etc/block-buster, as GNUInstallDirs places sysconfdir:
# /etc for the prefix /usr (the deb, where it is a conffile), else inside the prefix, so that
# `cmake --install build --prefix DIR` writes nothing outside DIR. Decided at install time, since
# --prefix (and cpack's /usr) are known only then.
install(CODE [[
  get_filename_component(bb_prefix "${CMAKE_INSTALL_PREFIX}" ABSOLUTE)
  if(bb_prefix STREQUAL "/usr")
    set(BB_CONFIG_INSTALL_DIR "etc/block-buster")
  else()
    string(REGEX REPLACE "^/+" "" BB_CONFIG_INSTALL_DIR "${bb_prefix}/etc/block-buster")
  endif()
]] COMPONENT config)
# "/" + the directory above: an absolute DESTINATION, which install() leaves alone (a relative
# one would get the prefix in front) and DESTDIR still applies to (cpack stages with it).
install(FILES ${CMAKE_SOURCE_DIR}/etc/config.yaml DESTINATION "/\${BB_CONFIG_INSTALL_DIR}"
        COMPONENT config)
# Monitoring files for the operator to copy or point at (docs/operating.md, "Quick start").
install(DIRECTORY ${CMAKE_SOURCE_DIR}/packaging/grafana ${CMAKE_SOURCE_DIR}/packaging/prometheus
                  ${CMAKE_SOURCE_DIR}/packaging/alertmanager
        DESTINATION ${CMAKE_INSTALL_DATADIR}/blockbuster COMPONENT monitoring)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/systemd/blockbuster-agent.service
        DESTINATION lib/systemd/system COMPONENT systemd)
# Debian wants the changelog and the manual page gzipped (-n: no timestamp, reproducible).
set(BB_DEB_GEN ${CMAKE_BINARY_DIR}/packaging)
add_custom_command(
  OUTPUT ${BB_DEB_GEN}/changelog.gz ${BB_DEB_GEN}/blockbuster-agent.1.gz
  COMMAND ${CMAKE_COMMAND} -E make_directory ${BB_DEB_GEN}
  COMMAND gzip -9n -c ${CMAKE_SOURCE_DIR}/packaging/deb/changelog > ${BB_DEB_GEN}/changelog.gz
  COMMAND gzip -9n -c ${CMAKE_SOURCE_DIR}/packaging/deb/blockbuster-agent.1
          > ${BB_DEB_GEN}/blockbuster-agent.1.gz
  DEPENDS ${CMAKE_SOURCE_DIR}/packaging/deb/changelog
          ${CMAKE_SOURCE_DIR}/packaging/deb/blockbuster-agent.1
  VERBATIM)
add_custom_target(bb_deb_docs ALL DEPENDS ${BB_DEB_GEN}/changelog.gz
                                          ${BB_DEB_GEN}/blockbuster-agent.1.gz)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/packaging/deb/copyright
              ${BB_DEB_GEN}/changelog.gz
        DESTINATION share/doc/blockbuster-agent COMPONENT agent)
install(FILES ${BB_DEB_GEN}/blockbuster-agent.1.gz DESTINATION share/man/man1 COMPONENT agent)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/deb/copyright ${BB_DEB_GEN}/changelog.gz
        DESTINATION share/doc/blockbuster-sdk-dev COMPONENT sdk)

set(CPACK_PACKAGE_NAME blockbuster)
set(CPACK_PACKAGE_VENDOR "Block Buster")
set(CPACK_PACKAGE_CONTACT "Block Buster maintainers <maintainers@blockbuster.invalid>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ONE_PER_GROUP)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://blockbuster.invalid/")
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_AGENT_PACKAGE_NAME blockbuster-agent)
set(CPACK_DEBIAN_AGENT_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_AGENT_DESCRIPTION
    "Observability agent for nodes of The Block\nPolls a node's JSON-RPC API through plugins and serves a dashboard REST API,\nPrometheus metrics and a web dashboard.")
# conffiles, and scripts that reload systemd on install, upgrade and removal (and restart a
# running agent on upgrade).
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/packaging/deb/conffiles ${CMAKE_SOURCE_DIR}/packaging/deb/postinst
    ${CMAKE_SOURCE_DIR}/packaging/deb/prerm ${CMAKE_SOURCE_DIR}/packaging/deb/postrm)
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_SDK_PACKAGE_NAME blockbuster-sdk-dev)
set(CPACK_DEBIAN_SDK_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_SDK_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_SDK_DESCRIPTION
    "Plugin SDK for the Block Buster agent\nC ABI header, header-only C++ wrapper, a fake host for plugin tests and CMake\npackage to build and test plugins for blockbuster-agent out of its source tree.")

# bb-devnode (component devnode) is a development tool: in neither package.
set(CPACK_COMPONENTS_ALL agent plugins web config systemd monitoring sdk)
include(CPack)
cpack_add_component_group(agent)
cpack_add_component_group(sdk)
foreach(c agent plugins web config systemd monitoring)
  cpack_add_component(${c} GROUP agent)
endforeach()
cpack_add_component(sdk GROUP sdk)
