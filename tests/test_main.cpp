// The one Catch2 main for the whole suite (each TEST_CASE is its own ctest test; see CMakeLists.txt).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
