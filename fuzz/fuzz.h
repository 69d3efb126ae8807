/* Shared by the fuzz targets: the libFuzzer entry point, and CHECK, which turns a broken
 * invariant into a crash libFuzzer reports (and keeps the input of). */
#ifndef EI_FUZZ_FUZZ_H
#define EI_FUZZ_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                    \
        }                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
