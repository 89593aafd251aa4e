# The one place that says how ecomstream targets are made.
#
#   ecomstream_library(NAME SRCS a.cc b.cc DEPS x y)
#   ecomstream_binary(NAME SRCS main.cc DEPS x)          -> build/bin/NAME
#   ecomstream_test(NAME SRCS a_test.cc DEPS x [LABELS pg] [OWN_PG_CLUSTER] [TIMEOUT s] [TEST_PREFIX p.]
#                   [COST n])
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

# Every test has exactly one label, which `ctest -L <label>` selects and ctest's label time
# summary reports: unit (the default), pg (needs PostgreSQL), e2e (the real binaries against
# PostgreSQL), deploy, containers.
#
# A unit binary is ONE ctest test named TEST_PREFIX + NAME (e.g. processor.processor_test): its
# tests take milliseconds each, and a process per test cost ten times the tests themselves. Run
# one of its tests with the binary and --gtest_filter. pg and e2e binaries are split into one
# ctest test per gtest test (gtest_discover_tests, named TEST_PREFIX + Suite.Test), so `ctest -j`
# runs them side by side.
#
# pg and e2e tests require the pg_cluster fixture (tests/CMakeLists.txt): one PostgreSQL cluster per
# ctest run, described to them by ECOMSTREAM_TEST_PG. OWN_PG_CLUSTER (tests that stop or restart
# PostgreSQL) leaves that variable out, so SharedPgCluster() starts a cluster of the test's own,
# from a copy of the run cluster's initdb output (ECOMSTREAM_TEST_PG_INITDB, same fixture).
# Every test gets ECOMSTREAM_BIN_DIR (where the service binaries are).
#
# COST orders a run without earlier timings (a fresh clone): ctest starts the costliest first, so
# a long test does not run alone at the end. Give about the seconds the test (unit: the binary)
# takes on a quiet machine; the default is 1 for unit, 2 for pg and 10 for e2e.
set(ECOMSTREAM_TEST_LABELS unit pg e2e deploy containers)
set(ECOMSTREAM_TEST_PG_INFO ${CMAKE_BINARY_DIR}/tests/pg_cluster.info)

function(ecomstream_test name)
  cmake_parse_arguments(ARG "OWN_PG_CLUSTER" "TIMEOUT;TEST_PREFIX;LABELS;COST" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} ecomstream_testing GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_options(${name} PRIVATE ${ECOMSTREAM_WARNINGS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(NOT ARG_LABELS IN_LIST ECOMSTREAM_TEST_LABELS)
    message(FATAL_ERROR "ecomstream_test(${name}): LABELS ${ARG_LABELS} is not one of ${ECOMSTREAM_TEST_LABELS}")
  endif()
  set(env "ECOMSTREAM_BIN_DIR=${CMAKE_BINARY_DIR}/bin")
  set(fixture "")
  set(cost 1)
  if(ARG_LABELS STREQUAL "e2e")
    set(cost 10)
  elseif(ARG_LABELS STREQUAL "pg")
    set(cost 2)
  endif()
  if(ARG_COST)
    set(cost ${ARG_COST})
  endif()
  if(ARG_LABELS MATCHES "^(pg|e2e)$" AND NOT ARG_OWN_PG_CLUSTER)
    list(APPEND env "ECOMSTREAM_TEST_PG=${ECOMSTREAM_TEST_PG_INFO}")
    set(fixture pg_cluster)
  elseif(ARG_OWN_PG_CLUSTER)
    # Not attached, but its own cluster is a copy of the run's fresh initdb output (faster).
    list(APPEND env "ECOMSTREAM_TEST_PG_INITDB=${ECOMSTREAM_TEST_PG_INFO}")
    set(fixture pg_cluster)
  endif()
  if(ARG_LABELS STREQUAL "unit")
    set(test_name "${ARG_TEST_PREFIX}${name}")
    add_test(NAME ${test_name} COMMAND ${name})
    set_tests_properties(${test_name} PROPERTIES
      LABELS unit
      TIMEOUT ${ARG_TIMEOUT}
      COST ${cost}
      ENVIRONMENT "${env}")
    return()
  endif()
  # TEST_PREFIX (optional) prefixes every discovered test name, e.g. so `ctest -R writer` selects a suite.
  gtest_discover_tests(${name}
    TEST_PREFIX "${ARG_TEST_PREFIX}"
    DISCOVERY_TIMEOUT 60)
  # gtest_discover_tests (CMake 3.25) flattens its PROPERTIES into one list, which breaks list
  # values (two environment variables). Instead, a file ctest includes after the discovered tests
  # sets the properties on each of them (${name}_TESTS lists them).
  set(props_file ${CMAKE_CURRENT_BINARY_DIR}/${name}_properties.cmake)
  file(GENERATE OUTPUT ${props_file} CONTENT "foreach(test IN LISTS ${name}_TESTS)
  set_tests_properties(\"\${test}\" PROPERTIES
    LABELS \"${ARG_LABELS}\"
    TIMEOUT ${ARG_TIMEOUT}
    COST ${cost}
    ENVIRONMENT \"${env}\"
    FIXTURES_REQUIRED \"${fixture}\")
endforeach()
")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${props_file})
endfunction()

# gRPC, protobuf and Abseil are linked from their static archives (Debian ships both forms): with
# their ~60 shared libraries a binary spent about half its start in the dynamic loader (mapping
# them, ~16k symbol relocations, copy-on-write faults): `ecomstream-processor --help` took 34 ms of
# CPU, 18 ms linked this way, a cost every processor --once run pays. Only libraries that no other
# shared library here depends on are switched; glibc, libstdc++, OpenSSL, zlib, libpq, libpqxx,
# cpp-httplib and GoogleTest stay shared (other shared libraries use them too: one copy of each in
# a process). Configure with -DECOMSTREAM_STATIC_DEPS=OFF to link everything shared.
option(ECOMSTREAM_STATIC_DEPS "Link gRPC, protobuf and Abseil from their static archives" ON)

# The static archive for a shared library's path (or a -lNAME), "" when there is none.
function(_ecomstream_static_archive path out)
  set(${out} "" PARENT_SCOPE)
  if(path MATCHES "^(.*)\\.so(\\.[0-9.]+)?$")
    if(EXISTS "${CMAKE_MATCH_1}.a")
      set(${out} "${CMAKE_MATCH_1}.a" PARENT_SCOPE)
    endif()
  elseif(path MATCHES "^-l([A-Za-z0-9_+-]+)$")
    find_library(ECOMSTREAM_ARCHIVE_${CMAKE_MATCH_1} NAMES lib${CMAKE_MATCH_1}.a)
    if(ECOMSTREAM_ARCHIVE_${CMAKE_MATCH_1})
      set(${out} "${ECOMSTREAM_ARCHIVE_${CMAKE_MATCH_1}}" PARENT_SCOPE)
    endif()
  endif()
endfunction()

# Points every imported library target named absl::*, gRPC::*, protobuf::*, re2::* or c-ares::* at
# its static archive, where one exists next to the shared library. Targets keep their names and
# dependencies, so CMake still orders the archives on the link line.
function(ecomstream_prefer_static_archives)
  if(NOT ECOMSTREAM_STATIC_DEPS)
    return()
  endif()
  get_property(targets DIRECTORY ${PROJECT_SOURCE_DIR} PROPERTY IMPORTED_TARGETS)
  set(switched 0)
  foreach(target IN LISTS targets)
    if(NOT target MATCHES "^(absl|gRPC|protobuf|re2|c-ares)::")
      continue()
    endif()
    get_target_property(type ${target} TYPE)
    if(type STREQUAL "INTERFACE_LIBRARY")
      # re2::re2 comes from pkg-config: its archive path is in the link libraries.
      get_target_property(libs ${target} INTERFACE_LINK_LIBRARIES)
      if(libs)
        set(new_libs "")
        foreach(lib IN LISTS libs)
          _ecomstream_static_archive("${lib}" archive)
          if(archive)
            set(lib "${archive}")
            math(EXPR switched "${switched} + 1")
          endif()
          list(APPEND new_libs "${lib}")
        endforeach()
        set_target_properties(${target} PROPERTIES INTERFACE_LINK_LIBRARIES "${new_libs}")
      endif()
      continue()
    endif()
    if(NOT type MATCHES "^(SHARED|UNKNOWN|STATIC)_LIBRARY$")
      continue()
    endif()
    get_target_property(configs ${target} IMPORTED_CONFIGURATIONS)
    set(properties IMPORTED_LOCATION)
    foreach(config IN LISTS configs)
      if(config)
        string(TOUPPER "${config}" config)
        list(APPEND properties IMPORTED_LOCATION_${config})
      endif()
    endforeach()
    foreach(property IN LISTS properties)
      get_target_property(location ${target} ${property})
      if(location)
        _ecomstream_static_archive("${location}" archive)
        if(archive)
          set_target_properties(${target} PROPERTIES ${property} "${archive}")
          math(EXPR switched "${switched} + 1")
        endif()
      endif()
    endforeach()
  endforeach()
  message(STATUS "Static archives for gRPC, protobuf and Abseil: ${switched} libraries")
endfunction()
