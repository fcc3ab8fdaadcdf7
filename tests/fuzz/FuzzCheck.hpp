#pragma once

// Invariant checks for fuzz targets: a broken invariant prints what and where, then aborts, so
// libFuzzer records the input as a crash (with -fno-sanitize-recover it is the same exit path as
// an ASan or UBSan finding).
#include <cstdio>
#include <cstdlib>

#define RELAY_FUZZ_CHECK(cond)                                                               \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (false)
