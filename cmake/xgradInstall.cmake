# Install rules (included from the top-level CMakeLists.txt when XGRAD_INSTALL is on):
#   include/xgrad/...                          the public headers
#   lib/libxgrad.a (or libxgrad.so.*)          the library
#   lib/cmake/xgrad/xgradConfig*.cmake         find_package(xgrad) -> target xgrad::xgrad
#   lib/pkgconfig/xgrad.pc                     pkg-config --cflags --libs xgrad
#   bin/xgrad-*                                the tools, when built
# Everything is relative to the prefix: `cmake --install build --prefix P` works for any P.
include(CMakePackageConfigHelpers)

set(XGRAD_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/xgrad)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/xgrad DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        COMPONENT development FILES_MATCHING PATTERN "*.hpp")
install(TARGETS xgrad EXPORT xgradTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime
                NAMELINK_COMPONENT development
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
install(EXPORT xgradTargets NAMESPACE xgrad:: DESTINATION ${XGRAD_CMAKE_DIR}
        COMPONENT development)

# xgradConfig.cmake finds what the installed library needs: xtensor always (its headers are
# part of xgrad's), and for a static libxgrad the libraries it was linked with.
if(BUILD_SHARED_LIBS)
  set(XGRAD_STATIC OFF)
else()
  set(XGRAD_STATIC ON)
endif()
if(XGRAD_USE_LIBBACKTRACE)
  set(XGRAD_USE_LIBBACKTRACE ON)
else()
  set(XGRAD_USE_LIBBACKTRACE OFF)
endif()
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/xgradConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/xgradConfig.cmake
                              INSTALL_DESTINATION ${XGRAD_CMAKE_DIR})
# 0.x: a minor version may break the API, so find_package(xgrad 0.2) accepts 0.2.* only.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/xgradConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/xgradConfig.cmake
              ${PROJECT_BINARY_DIR}/xgradConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/FindLibbacktrace.cmake
        DESTINATION ${XGRAD_CMAKE_DIR} COMPONENT development)

# xgrad.pc. A static libxgrad needs its dependencies on the link line, so they go into Libs
# (`g++ main.cpp $(pkg-config --cflags --libs xgrad)` links); a shared one carries them itself
# (Libs.private, for --static). A library in one of the compiler's own folders becomes -lNAME.
function(xgrad_pc_flags out)
  set(flags)
  foreach(lib ${ARGN})
    get_filename_component(dir "${lib}" DIRECTORY)
    get_filename_component(file "${lib}" NAME)
    if(lib MATCHES "^-" OR NOT file MATCHES "^lib(.+)\\.(so|a)(\\.[0-9.]+)?$")
      list(APPEND flags "${lib}")
    elseif(dir IN_LIST CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES)
      list(APPEND flags "-l${CMAKE_MATCH_1}")
    else()
      list(APPEND flags "-L${dir}" "-l${CMAKE_MATCH_1}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES flags)
  list(JOIN flags " " flags)
  set(${out} "${flags}" PARENT_SCOPE)
endfunction()
set(xgrad_pc_deps ${BLAS_LIBRARIES} ${ZLIB_LIBRARIES})
if(XGRAD_USE_LIBBACKTRACE)
  list(APPEND xgrad_pc_deps ${Libbacktrace_LIBRARY})
endif()
xgrad_pc_flags(xgrad_pc_deps ${xgrad_pc_deps})
if(BUILD_SHARED_LIBS)
  set(XGRAD_PC_LIBS "")
  set(XGRAD_PC_LIBS_PRIVATE "${xgrad_pc_deps}")
else()
  set(XGRAD_PC_LIBS " ${xgrad_pc_deps}")
  set(XGRAD_PC_LIBS_PRIVATE "")
endif()
set(XGRAD_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(XGRAD_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(XGRAD_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(XGRAD_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()  # relocatable: the prefix is found from the .pc file's own folder
  file(RELATIVE_PATH rel "/prefix/${XGRAD_PC_DIR}" "/prefix")
  string(REGEX REPLACE "/$" "" rel "${rel}")
  set(XGRAD_PC_PREFIX "\${pcfiledir}/${rel}")
  set(XGRAD_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(XGRAD_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/xgrad.pc.in ${PROJECT_BINARY_DIR}/xgrad.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/xgrad.pc DESTINATION ${XGRAD_PC_DIR} COMPONENT development)

# The tools, when they are built; a shared libxgrad is found next to them through RUNPATH.
if(XGRAD_TOOL_TARGETS)
  file(RELATIVE_PATH rel "/prefix/${CMAKE_INSTALL_BINDIR}" "/prefix/${CMAKE_INSTALL_LIBDIR}")
  set_target_properties(${XGRAD_TOOL_TARGETS} PROPERTIES INSTALL_RPATH "$ORIGIN/${rel}")
  install(TARGETS ${XGRAD_TOOL_TARGETS} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
          COMPONENT tools)
endif()
