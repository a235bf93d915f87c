# loom_add_plugin(NAME src1 [src2 ...] [LINK_LIBRARIES lib ...] [OUTPUT_DIRECTORY dir])
#
# Builds a Loom operator plugin: a MODULE library lib<NAME>.so compiled as C++20
# against the Loom SDK, with hidden visibility and a linker version script so that
# only `loom_plugin_entry` is exported. Load it by putting it on the plugin path
# (LOOM_PLUGIN_PATH, --plugin-path) or by naming it under `plugins:` in a graph.
function(loom_add_plugin name)
  set(_LOOM_PLUGIN_MAP "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/loom_plugin.map")
  cmake_parse_arguments(ARG "" "OUTPUT_DIRECTORY" "LINK_LIBRARIES" ${ARGN})
  if(NOT ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "loom_add_plugin(${name}): no source files given")
  endif()
  add_library(${name} MODULE ${ARG_UNPARSED_ARGUMENTS})
  target_link_libraries(${name} PRIVATE Loom::sdk ${ARG_LINK_LIBRARIES})
  target_compile_features(${name} PRIVATE cxx_std_20)
  set_target_properties(${name} PROPERTIES
    PREFIX "lib"
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LINK_DEPENDS "${_LOOM_PLUGIN_MAP}")
  target_link_options(${name} PRIVATE "LINKER:--version-script=${_LOOM_PLUGIN_MAP}")
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${ARG_OUTPUT_DIRECTORY}")
  endif()
endfunction()
