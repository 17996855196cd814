# Debian packages, built with CPack (`cpack --config build/CPackConfig.cmake`,
# or the `debs` target): see deploy/README.md.
#
#   ptnetmap        ptnetd, ptctl, ptgen, ptbridge, the systemd unit and the
#                   agent's config file (/etc/ptnetmap/ptnetd.conf)
#   ptnetmap-dkms   the module's sources and dkms.conf; DKMS builds ptnetmap.ko
#                   for every installed kernel with headers
#
# Only these two components are packaged; the other install() rules of the
# tree (headers, libnetmap) stay for `cmake --install`.
set(PTNM_DEPLOY ${PROJECT_SOURCE_DIR}/deploy)
set(PTNM_DKMS_SRC /usr/src/ptnetmap-${PROJECT_VERSION})

install(TARGETS ptnetd ptctl ptgen ptbridge RUNTIME DESTINATION bin COMPONENT ptnetmap)
install(FILES ${PTNM_DEPLOY}/systemd/ptnetd.service DESTINATION lib/systemd/system
  COMPONENT ptnetmap)
install(FILES ${PTNM_DEPLOY}/ptnetd.conf DESTINATION /etc/ptnetmap COMPONENT ptnetmap)
install(FILES ${PROJECT_SOURCE_DIR}/docs/operator-guide.md ${PROJECT_SOURCE_DIR}/docs/agent.md
  DESTINATION share/doc/ptnetmap COMPONENT ptnetmap)

configure_file(${PTNM_DEPLOY}/dkms/dkms.conf.in ${CMAKE_CURRENT_BINARY_DIR}/deploy/dkms.conf @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/deploy/dkms.conf DESTINATION ${PTNM_DKMS_SRC}
  COMPONENT dkms)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/kmod/ DESTINATION ${PTNM_DKMS_SRC}/kmod COMPONENT dkms
  FILES_MATCHING PATTERN "*.c" PATTERN "*.h" PATTERN "Kbuild")
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/net DESTINATION ${PTNM_DKMS_SRC}/include
  COMPONENT dkms FILES_MATCHING PATTERN "*.h")
foreach(script postinst prerm)
  configure_file(${PTNM_DEPLOY}/debian/ptnetmap-dkms.${script}.in
    ${CMAKE_CURRENT_BINARY_DIR}/deploy/dkms/${script} @ONLY
    FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
      WORLD_READ WORLD_EXECUTE)
endforeach()
file(COPY ${PTNM_DEPLOY}/debian/ptnetmap.postinst ${PTNM_DEPLOY}/debian/ptnetmap.prerm
  ${PTNM_DEPLOY}/debian/ptnetmap.postrm DESTINATION ${CMAKE_CURRENT_BINARY_DIR}/deploy/agent)
foreach(script postinst prerm postrm)
  file(RENAME ${CMAKE_CURRENT_BINARY_DIR}/deploy/agent/ptnetmap.${script}
    ${CMAKE_CURRENT_BINARY_DIR}/deploy/agent/${script})
endforeach()
file(COPY_FILE ${PTNM_DEPLOY}/debian/ptnetmap.conffiles
  ${CMAKE_CURRENT_BINARY_DIR}/deploy/agent/conffiles)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ptnetmap)
set(CPACK_PACKAGE_VENDOR "ptnetmap")
set(CPACK_PACKAGE_CONTACT "ptnetmap maintainers <ptnetmap@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "netmap passthrough ports for KVM virtual machines")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/packages)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL ptnetmap dkms)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)

set(CPACK_DEBIAN_PTNETMAP_PACKAGE_NAME ptnetmap)
set(CPACK_DEBIAN_PTNETMAP_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PTNETMAP_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PTNETMAP_PACKAGE_RECOMMENDS "ptnetmap-dkms (= ${PROJECT_VERSION})")
set(CPACK_COMPONENT_PTNETMAP_DESCRIPTION
  "ptnetmap host agent, CLI and tools\n ptnetd (the host agent, a systemd service), ptctl (its CLI), and the\n netmap traffic tools ptgen and ptbridge.")
set(CPACK_DEBIAN_PTNETMAP_PACKAGE_CONTROL_EXTRA
  "${CMAKE_CURRENT_BINARY_DIR}/deploy/agent/postinst;${CMAKE_CURRENT_BINARY_DIR}/deploy/agent/prerm;${CMAKE_CURRENT_BINARY_DIR}/deploy/agent/postrm;${CMAKE_CURRENT_BINARY_DIR}/deploy/agent/conffiles")
set(CPACK_DEBIAN_PTNETMAP_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_DKMS_PACKAGE_NAME ptnetmap-dkms)
set(CPACK_DEBIAN_DKMS_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_DKMS_PACKAGE_DEPENDS "dkms (>= 3)")
set(CPACK_DEBIAN_DKMS_PACKAGE_SECTION kernel)
set(CPACK_COMPONENT_DKMS_DESCRIPTION
  "ptnetmap kernel module (DKMS sources)\n ptnetmap.ko: /dev/netmap (netmap API 14), VALE switches, pipes, NIC\n ports and the passthrough host side, built by DKMS for each kernel.")
set(CPACK_DEBIAN_DKMS_PACKAGE_CONTROL_EXTRA
  "${CMAKE_CURRENT_BINARY_DIR}/deploy/dkms/postinst;${CMAKE_CURRENT_BINARY_DIR}/deploy/dkms/prerm")
set(CPACK_DEBIAN_DKMS_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)

# `ninja debs` builds both packages into build/packages/.
add_custom_target(debs
  COMMAND ${CMAKE_CPACK_COMMAND} --config ${CMAKE_BINARY_DIR}/CPackConfig.cmake
  DEPENDS ptnetd ptctl ptgen ptbridge
  WORKING_DIRECTORY ${CMAKE_BINARY_DIR}
  COMMENT "cpack: ptnetmap and ptnetmap-dkms .debs in ${CMAKE_BINARY_DIR}/packages"
  VERBATIM)
