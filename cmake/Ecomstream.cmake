# The one place that says how ecomstream targets are made.
#
#   ecomstream_library(NAME SRCS a.cc b.cc DEPS x y)
#   ecomstream_binary(NAME SRCS main.cc DEPS x)          -> build/bin/NAME
#   ecomstream_test(NAME SRCS a_test.cc DEPS x [LABELS pg] [TIMEOUT s] [TEST_PREFIX p.])
#
# Every dependency is a namespaced target; no global include directories.

set(ECOMSTREAM_WARNINGS -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers)

function(ecomstream_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SRCS})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  target_compile_options(${name} PRIVATE ${ECOMSTREAM_WARNINGS})
endfunction()

function(ecomstream_binary name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  target_compile_options(${name} PRIVATE ${ECOMSTREAM_WARNINGS})
endfunction()

# Tests labelled "pg" need a PostgreSQL server; tests/pg_fixture starts one per test process.
# Each test gets ECOMSTREAM_BIN_DIR (where the service binaries are).
function(ecomstream_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT;TEST_PREFIX" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_options(${name} PRIVATE ${ECOMSTREAM_WARNINGS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  # gtest_discover_tests (CMake 3.25) flattens PROPERTIES into one list, so a list-valued
  # property loses all but its first item and shifts the rest into keys: give each test exactly
  # one environment variable and at most one label.
  set(env "ECOMSTREAM_BIN_DIR=${CMAKE_BINARY_DIR}/bin")
  list(LENGTH ARG_LABELS label_count)
  if(label_count GREATER 1)
    message(FATAL_ERROR "ecomstream_test(${name}): give at most one label")
  endif()
  # An empty LABELS value would be dropped by gtest_discover_tests and shift every following
  # key/value pair (TIMEOUT and ENVIRONMENT were lost for unlabelled tests): only pass it when set.
  set(props TIMEOUT ${ARG_TIMEOUT} ENVIRONMENT "${env}")
  if(ARG_LABELS)
    set(props LABELS "${ARG_LABELS}" ${props})
  endif()
  # TEST_PREFIX (optional) prefixes every discovered test name, e.g. so `ctest -R generator` selects a suite.
  gtest_discover_tests(${name}
    TEST_PREFIX "${ARG_TEST_PREFIX}"
    DISCOVERY_TIMEOUT 60
    PROPERTIES ${props})
endfunction()
