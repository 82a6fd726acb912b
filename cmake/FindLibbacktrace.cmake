# FindLibbacktrace: GCC's libbacktrace (backtrace.h and libbacktrace.a), which Debian ships in
# libgcc-12-dev under the compiler's own folders. Installed with xgrad's package config, which
# uses it to link a static libxgrad.
#
#   Libbacktrace_FOUND          the header and the library were found
#   Libbacktrace_LIBRARY        the library
#   Libbacktrace::Libbacktrace  imported target
find_path(Libbacktrace_INCLUDE_DIR backtrace.h HINTS ${CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES}
                                                     ${CMAKE_C_IMPLICIT_INCLUDE_DIRECTORIES})
find_library(Libbacktrace_LIBRARY NAMES backtrace HINTS ${CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES}
                                                         ${CMAKE_C_IMPLICIT_LINK_DIRECTORIES})
mark_as_advanced(Libbacktrace_INCLUDE_DIR Libbacktrace_LIBRARY)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Libbacktrace REQUIRED_VARS Libbacktrace_LIBRARY
                                                             Libbacktrace_INCLUDE_DIR)
if(Libbacktrace_FOUND AND NOT TARGET Libbacktrace::Libbacktrace)
  add_library(Libbacktrace::Libbacktrace UNKNOWN IMPORTED)
  set_target_properties(Libbacktrace::Libbacktrace PROPERTIES
    IMPORTED_LOCATION "${Libbacktrace_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${Libbacktrace_INCLUDE_DIR}")
endif()
